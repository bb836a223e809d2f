//! `triage bench`: a load generator for every transport. It starts the
//! server and the baseline servers in this process, on temporary sockets
//! and loopback ports, then measures in turn in-process decide, frames over
//! UDS, gRPC over UDS and gRPC over TCP, each right after its baseline.
//!
//! Servers and load run on separate runtimes, so the load generator's
//! threads do not run server tasks. Both share the machine's cores.

mod echo;
mod load;
mod prompts;
mod report;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::cli::output::outln;
use crate::proto::{DecideRequest, Decision};
use load::{Budget, Sample, Shape};
use report::{Row, RunInfo, Summary};
use servers::Servers;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Requests per measurement; each transport and each baseline is one
    /// measurement.
    #[arg(long, value_name = "COUNT", default_value_t = 100_000)]
    requests: u64,

    /// Run each measurement for this many seconds instead of a request count.
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<u64>,

    /// Connections per transport.
    #[arg(long, value_name = "COUNT", default_value_t = 1)]
    connections: usize,

    /// Requests in flight on each connection.
    #[arg(long, value_name = "COUNT", default_value_t = 1)]
    in_flight: usize,

    /// JSONL file of prompts, each line with a "prompt" string or a "turns"
    /// list whose first entry is used. Default: a built-in set of 12.
    #[arg(long, value_name = "FILE")]
    prompts: Option<PathBuf>,

    /// Policy file to serve. Default: the embedded policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Requests sent before each measurement and not recorded.
    #[arg(long, value_name = "COUNT", default_value_t = 2_000)]
    warmup: u64,

    /// Worker threads of the server runtime; 0 uses half the CPUs.
    #[arg(long, value_name = "THREADS", default_value_t = 0)]
    server_threads: usize,

    /// Worker threads of the load generator's runtime; 0 uses half the CPUs.
    #[arg(long, value_name = "THREADS", default_value_t = 0)]
    client_threads: usize,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if self.connections == 0 || self.in_flight == 0 {
            anyhow::bail!("invalid --connections or --in-flight 0: use 1 or more");
        }
        if self.requests == 0 && self.seconds.is_none() {
            anyhow::bail!("invalid --requests 0: use 1 or more, or set --seconds");
        }
        if self.seconds == Some(0) {
            anyhow::bail!("invalid --seconds 0: use 1 or more");
        }
        Ok(())
    }

    fn budget(&self) -> Arc<Budget> {
        match self.seconds {
            Some(seconds) => Budget::seconds(Duration::from_secs(seconds)),
            None => Budget::requests(self.requests),
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            connections: self.connections,
            in_flight: self.in_flight,
        }
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = if threads == 0 {
        half_the_cpus()
    } else {
        threads
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start a runtime")
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn half_the_cpus() -> usize {
    (cpus() / 2).max(1)
}

/// Runs every measurement and prints the report.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let prompts = prompts::load(args.prompts.as_deref())?;
    let requests: Arc<[DecideRequest]> = prompts::requests(&prompts).into();
    let server_runtime = runtime(args.server_threads)?;
    let client_runtime = runtime(args.client_threads)?;
    let dir = tempfile::tempdir().context("cannot create a directory for the sockets")?;
    let servers = server_runtime.block_on(Servers::start(
        dir.path(),
        args.policy.clone(),
        &requests[0],
    ))?;

    let rows = measure_all(args, &servers, &requests, &client_runtime);
    server_runtime.block_on(servers.stop());
    let rows = rows?;

    let info = RunInfo {
        cpus: cpus(),
        connections: args.connections,
        in_flight: args.in_flight,
        requests: args.seconds.is_none().then_some(args.requests),
        seconds: args.seconds,
        prompts: prompts.len(),
        server_threads: if args.server_threads == 0 {
            half_the_cpus()
        } else {
            args.server_threads
        },
        client_threads: if args.client_threads == 0 {
            half_the_cpus()
        } else {
            args.client_threads
        },
    };
    if args.json {
        outln!("{}", report::json(&info, &rows)?);
    } else {
        outln!("{}", report::table(&info, &rows).trim_end());
    }
    let failed = rows.iter().any(|row| row.errors > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn measure_all(
    args: &BenchArgs,
    servers: &Servers,
    requests: &Arc<[DecideRequest]>,
    client: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = vec![in_process(args, servers, requests)?];
    let payloads = load::payloads(requests);
    let frames = |path: PathBuf| {
        let payloads = payloads.clone();
        move |budget| {
            let path = path.clone();
            let payloads = payloads.clone();
            async move { load::frames(&path, payloads, args.shape(), budget).await }
        }
    };
    let real = client.block_on(measure(
        args,
        frames(
            servers
                .real
                .frame_socket
                .clone()
                .context("no frame socket")?,
        ),
    ));
    let echo = client.block_on(measure(args, frames(servers.echo_frames.clone())));
    rows.push(Row::new("frames_uds", "echo_frames", real?, echo?));

    let grpc_socket = servers.real.grpc_socket.clone().context("no gRPC socket")?;
    let grpc_addr = servers.real.grpc_addr.context("no gRPC address")?;
    let targets = [
        (
            "grpc_uds",
            "echo_grpc_uds",
            Target::Unix(grpc_socket),
            Target::Unix(servers.echo_grpc_socket.clone()),
        ),
        (
            "grpc_tcp",
            "echo_grpc_tcp",
            Target::Tcp(grpc_addr.to_string()),
            Target::Tcp(servers.echo_grpc_addr.to_string()),
        ),
    ];
    for (name, baseline, real, echo) in targets {
        let real = client.block_on(measure(args, grpc(args, requests, real)));
        let echo = client.block_on(measure(args, grpc(args, requests, echo)));
        rows.push(Row::new(name, baseline, real?, echo?));
    }
    Ok(rows)
}

/// Runs a warm-up with `drive`, then the measurement.
async fn measure<F, Fut>(args: &BenchArgs, drive: F) -> anyhow::Result<Summary>
where
    F: Fn(Arc<Budget>) -> Fut,
    Fut: Future<Output = anyhow::Result<Sample>>,
{
    if args.warmup > 0 {
        drive(Budget::requests(args.warmup)).await?;
    }
    Ok(Summary::of(&drive(args.budget()).await?))
}

fn in_process(
    args: &BenchArgs,
    servers: &Servers,
    requests: &[DecideRequest],
) -> anyhow::Result<Row> {
    let state = &servers.real.state;
    let decide = |request: &DecideRequest| state.decide(request).is_ok();
    load::in_process(decide, requests, &Budget::requests(args.warmup))?;
    let real = load::in_process(decide, requests, &args.budget())?;

    // The baseline builds a response of the same size without deciding.
    let canned: Decision = state
        .decide(&requests[0])
        .map_err(|err| anyhow::anyhow!("the first prompt cannot be decided: {err}"))?;
    let clone = |_: &DecideRequest| !Decision::clone(&canned).model.is_empty();
    load::in_process(clone, requests, &Budget::requests(args.warmup))?;
    let baseline = load::in_process(clone, requests, &args.budget())?;
    Ok(Row::new(
        "in_process",
        "clone_decision",
        Summary::of(&real),
        Summary::of(&baseline),
    ))
}

enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// Builds a driver for gRPC load on `target`, with a new set of connections for
/// each run.
fn grpc<'a>(
    args: &'a BenchArgs,
    requests: &'a Arc<[DecideRequest]>,
    target: Target,
) -> impl Fn(Arc<Budget>) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<Sample>> + 'a>> + 'a
{
    let target = Arc::new(target);
    move |budget| {
        let target = target.clone();
        Box::pin(async move {
            let mut channels = Vec::with_capacity(args.connections);
            for _ in 0..args.connections {
                channels.push(connect(&target).await?);
            }
            load::grpc(channels, requests.clone(), args.in_flight, budget).await
        })
    }
}

async fn connect(target: &Target) -> anyhow::Result<Channel> {
    let channel = match target {
        Target::Unix(path) => {
            let path = path.clone();
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { UnixStream::connect(path).await.map(TokioIo::new) }
                }))
                .await
        }
        Target::Tcp(addr) => {
            Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await
        }
    };
    channel.context("cannot connect a gRPC channel")
}
