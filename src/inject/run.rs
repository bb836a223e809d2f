//! Runs `triage inject`: prints the sidecar template, injects a manifest,
//! or serves the webhook.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::cli::output::{errln, outln};
use crate::inject::InjectArgs;
use crate::inject::manifest;
use crate::inject::patch::{InjectConfig, Scope};
use crate::inject::server;
use crate::inject::template::SidecarTemplate;
use crate::inject::tls::{self, ReloadingCert};

/// Runs the command and returns the process exit code. Errors are printed
/// to stderr.
pub fn run(args: InjectArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            errln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: InjectArgs) -> anyhow::Result<()> {
    let template = match &args.template {
        Some(path) => SidecarTemplate::load(path)?,
        None => SidecarTemplate::built_in()?,
    };
    if args.print_sidecar {
        outln!("{}", template.to_yaml()?.trim_end());
        return Ok(());
    }

    let config = InjectConfig {
        template,
        mode: args.sidecar_mode,
        drain_margin_seconds: args.drain_margin_seconds,
    };
    if let Some(path) = &args.manifest {
        let scope = if args.all {
            Scope::Namespace
        } else {
            Scope::Pod
        };
        return inject_manifest(path, &config, scope);
    }

    init_logging(&args.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, config))
}

fn inject_manifest(path: &Path, config: &InjectConfig, scope: Scope) -> anyhow::Result<()> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("failed to read {}: {err}", path.display()))?
    };

    let injected = manifest::inject(&text, config, scope)?;
    for line in &injected.report {
        errln!("{line}");
    }
    outln!("{}", injected.yaml.trim_end());
    Ok(())
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|err| anyhow::anyhow!("invalid --log-level {filter:?}: {err}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .try_init()
        .map_err(|err| anyhow::anyhow!("failed to set up logging: {err}"))
}

async fn serve(args: InjectArgs, config: InjectConfig) -> anyhow::Result<()> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        anyhow::bail!(
            "the webhook needs --tls-cert and --tls-key (or TRIAGE_INJECT_TLS_CERT and \
             TRIAGE_INJECT_TLS_KEY); use --manifest or --print-sidecar to run without them"
        );
    };
    let cert = Arc::new(ReloadingCert::load(cert, key)?);
    let tls = TlsAcceptor::from(Arc::new(cert.server_config()?));
    tokio::spawn(cert.watch(tls::RELOAD_INTERVAL));

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|err| anyhow::anyhow!("failed to listen on {}: {err}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        sidecar_mode = %config.mode,
        image = config.template.container.image.as_deref().unwrap_or_default(),
        template = %args
            .template
            .as_ref()
            .map_or("(built in)".into(), |path| path.display().to_string()),
        "injection webhook started"
    );

    let delay = Duration::from_secs(args.shutdown_delay_seconds);
    server::serve(listener, tls, Arc::new(config), shutdown_signal(delay)).await;
    tracing::info!("injection webhook stopped");
    Ok(())
}

/// Completes `delay` after SIGTERM (sent by the kubelet) or Ctrl-C.
async fn shutdown_signal(delay: Duration) {
    wait_for_signal().await;
    tracing::info!(
        delay_seconds = delay.as_secs(),
        "shutdown signal received; accepting requests until endpoints are updated"
    );
    tokio::time::sleep(delay).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "failed to listen for SIGTERM; stopping on Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
