//! Golden tests for the injection webhook, called over HTTPS on 127.0.0.1
//! the way the API server calls it: a POST of an AdmissionReview, checked
//! against a certificate signed by a test CA.
//!
//! Each case sends `tests/fixtures/inject/<review>.review.json` and compares
//! the response review, with its base64 patch decoded, to
//! `<case>.expected.json`. Set `TRIAGE_UPDATE_GOLDEN=1` to rewrite the
//! expected files after a deliberate change, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use triage::inject::SidecarMode;
use triage::inject::patch::InjectConfig;
use triage::inject::server;
use triage::inject::template::SidecarTemplate;
use triage::inject::tls::ReloadingCert;

/// (expected file, review fixture, webhook path)
const CASES: [(&str, &str, &str); 10] = [
    ("plain-pod", "plain-pod", "/mutate/pod"),
    ("multi-container", "multi-container", "/mutate/namespace"),
    ("not-requested", "multi-container", "/mutate/pod"),
    ("opted-out", "opted-out", "/mutate/namespace"),
    ("already-injected", "already-injected", "/mutate/pod"),
    ("overrides", "overrides", "/mutate/pod"),
    ("invalid-annotation", "invalid-annotation", "/mutate/pod"),
    ("not-a-pod", "not-a-pod", "/mutate/pod"),
    ("malformed", "malformed", "/mutate/pod"),
    ("plain-pod-in-namespace", "plain-pod", "/mutate/namespace"),
];

struct TestPki {
    ca_pem: String,
    _dir: tempfile::TempDir,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// A CA and a server certificate it signed, as PEM.
struct IssuedPair {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn issue_pair(ca_name: &str) -> IssuedPair {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![
        SanType::DnsName("triage-webhook.triage-system.svc".try_into().unwrap()),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    let cert = params.signed_by(&key, &issuer).unwrap();
    IssuedPair {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn makepki() -> TestPki {
    let pair = issue_pair("triage test CA");
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, &pair.cert_pem).unwrap();
    std::fs::write(&key_path, &pair.key_pem).unwrap();
    TestPki {
        ca_pem: pair.ca_pem,
        _dir: dir,
        cert_path,
        key_path,
    }
}

struct Webhook {
    addr: SocketAddr,
    cert: Arc<ReloadingCert>,
    connector: TlsConnector,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pki: TestPki,
}

async fn start_webhook() -> Webhook {
    let pki = makepki();
    let cert = Arc::new(ReloadingCert::load(&pki.cert_path, &pki.key_path).unwrap());
    let acceptor = TlsAcceptor::from(Arc::new(cert.server_config().unwrap()));
    let reloader = cert.clone();
    let config = InjectConfig {
        template: SidecarTemplate::built_in().unwrap(),
        mode: SidecarMode::Native,
        drain_margin_seconds: 5,
    };

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, acceptor, Arc::new(config), async {
        let _ = stopped.await;
    }));

    Webhook {
        addr,
        cert: reloader,
        connector: client_connector(&pki.ca_pem),
        stop: Some(stop),
        task,
        pki,
    }
}

fn client_connector(ca_pem: &str) -> TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

struct HttpResponse {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Webhook {
    /// Sends one HTTP/1.1 request over a new TLS connection and reads the
    /// response until the server closes it.
    async fn request(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        self.request_with(&self.connector, method, path, body)
            .await
            .unwrap()
    }

    async fn request_with(
        &self,
        connector: &TlsConnector,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let mut tls = connector.connect(name, tcp).await?;

        let head = format!(
            "{method} {path}?timeout=5s HTTP/1.1\r\nHost: triage-webhook.triage-system.svc:443\r\n\
             Content-Type: application/json\r\nAccept: application/json, */*\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(body).await?;

        let mut raw = Vec::new();
        tls.read_to_end(&mut raw).await?;
        Ok(parse_response(&raw))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inject")
        .join(name)
}

/// Decodes `response.patch` from base64 into JSON, for readable goldens.
fn decode_patch(mut review: Value) -> Value {
    if let Some(patch) = review.pointer_mut("/response/patch") {
        let encoded = patch.as_str().expect("patch is a base64 string");
        let bytes = BASE64_STANDARD.decode(encoded).unwrap();
        *patch = serde_json::from_slice(&bytes).unwrap();
    }
    review
}

fn check_golden(case: &str, review: &str, path: &str, actual: &Value) {
    let expected_path = fixture(&format!("{case}.expected.json"));
    let actual = serde_json::json!({
        "request": format!("{review}.review.json"),
        "webhookPath": path,
        "review": actual,
    });
    if std::env::var_os("TRIAGE_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(&expected_path, text).unwrap();
        return;
    }

    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|err| panic!("{}: {err}", expected_path.display()));
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        actual,
        expected,
        "{case}: the response differs from {}",
        expected_path.display()
    );
}

#[tokio::test]
async fn golden_reviews_match() {
    let webhook = start_webhook().await;
    for (case, review_name, path) in CASES {
        let body = std::fs::read(fixture(&format!("{review_name}.review.json"))).unwrap();
        let response = webhook.request("POST", path, &body).await;
        assert_eq!(response.status, 200, "{case}");
        assert!(
            response.headers.contains("content-type: application/json"),
            "{case}: {}",
            response.headers
        );

        let review: Value = serde_json::from_slice(&response.body).unwrap();
        check_golden(case, review_name, path, &decode_patch(review));
    }
    webhook.stop().await;
}

#[tokio::test]
async fn response_uid_matches_request() {
    let webhook = start_webhook().await;
    for (case, review, path) in CASES {
        let body = std::fs::read(fixture(&format!("{review}.review.json"))).unwrap();
        let request: Value = serde_json::from_slice(&body).unwrap();
        let response = webhook.request("POST", path, &body).await;
        let response: Value = serde_json::from_slice(&response.body).unwrap();

        assert_eq!(response["apiVersion"], "admission.k8s.io/v1", "{case}");
        assert_eq!(response["kind"], "AdmissionReview", "{case}");
        assert_eq!(
            response["response"]["uid"], request["request"]["uid"],
            "{case}"
        );
    }
    webhook.stop().await;
}

#[tokio::test]
async fn only_invalid_annotation_denied() {
    let webhook = start_webhook().await;
    for (case, review, path) in CASES {
        let body = std::fs::read(fixture(&format!("{review}.review.json"))).unwrap();
        let response = webhook.request("POST", path, &body).await;
        let response: Value = serde_json::from_slice(&response.body).unwrap();
        let allowed = response["response"]["allowed"].as_bool().unwrap();
        assert_eq!(allowed, case != "invalid-annotation", "{case}");
    }
    webhook.stop().await;
}

#[tokio::test]
async fn unparsable_bodies_allowed() {
    let webhook = start_webhook().await;
    let bodies: [&[u8]; 5] = [
        b"",
        b"not json",
        b"{\"kind\":\"AdmissionReview\"",
        b"[1, 2, 3]",
        b"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-1\"}}",
    ];
    for body in bodies {
        let response = webhook.request("POST", "/mutate/pod", body).await;
        assert_eq!(response.status, 200);
        let review: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(review["response"]["allowed"], true, "{body:?}");
        let message = review["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("AdmissionReview"), "{message}");
        assert!(review["response"].get("patch").is_none());
    }
    webhook.stop().await;
}

#[tokio::test]
async fn healthz_and_unknown_paths() {
    let webhook = start_webhook().await;
    assert_eq!(webhook.request("GET", "/healthz", b"").await.status, 200);
    assert_eq!(webhook.request("GET", "/mutate/pod", b"").await.status, 405);
    assert_eq!(webhook.request("POST", "/mutate", b"{}").await.status, 404);
    webhook.stop().await;
}

#[tokio::test]
async fn oversized_body_rejected() {
    let webhook = start_webhook().await;
    let body = vec![b' '; server::MAX_BODY_BYTES + 1];
    let response = webhook.request("POST", "/mutate/pod", &body).await;
    assert_eq!(response.status, 400);
    webhook.stop().await;
}

#[tokio::test]
async fn server_stops_while_client_idle() {
    let webhook = start_webhook().await;
    // A client that connects and never finishes the handshake must not
    // hold up shutdown past the drain timeout.
    let _idle = TcpStream::connect(webhook.addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    webhook.stop().await;
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn rotated_certificate_served() {
    let webhook = start_webhook().await;
    let watcher = tokio::spawn(
        webhook
            .cert
            .clone()
            .watch(std::time::Duration::from_millis(50)),
    );

    let rotated = issue_pair("triage rotated CA");
    let new_client = client_connector(&rotated.ca_pem);
    let before = webhook
        .request_with(&new_client, "GET", "/healthz", b"")
        .await;
    assert!(before.is_err(), "the new CA was trusted before rotation");

    // Write the key first, because a Secret update may land in either
    // order. The mismatched pair is rejected until both files are new.
    std::fs::write(&webhook.pki.key_path, &rotated.key_pem).unwrap();
    std::fs::write(&webhook.pki.cert_path, &rotated.cert_pem).unwrap();

    let mut status = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if let Ok(response) = webhook
            .request_with(&new_client, "GET", "/healthz", b"")
            .await
        {
            status = Some(response.status);
            break;
        }
    }
    assert_eq!(status, Some(200), "the rotated certificate was not served");

    let old_client = webhook
        .request_with(&webhook.connector, "GET", "/healthz", b"")
        .await;
    assert!(old_client.is_err(), "the old certificate is still served");
    watcher.abort();
    webhook.stop().await;
}

#[test]
fn mismatched_key_rejected() {
    let first = issue_pair("first CA");
    let second = issue_pair("second CA");
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, &first.cert_pem).unwrap();
    std::fs::write(&key_path, &second.key_pem).unwrap();

    let err = ReloadingCert::load(&cert_path, &key_path).unwrap_err();
    assert!(err.to_string().contains("tls.key"), "{err}");
}

#[test]
fn missing_certificate_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.crt");
    let err = ReloadingCert::load(&missing, &missing).unwrap_err();
    assert!(err.to_string().contains("absent.crt"), "{err}");
}
