//! TLS and mutual TLS (`server.grpc.tls.*`), with certificates made at test time: a CA, a
//! server certificate for `localhost` and a client certificate, all signed by the CA.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use streamhub_testkit::{TestApp, spawn_app, spawn_app_with, within};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// PEM files of a throw-away PKI.
struct Pki {
    dir: TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) = leaf(
            vec!["client".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        let write = |name: &str, pem: &str| {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        };
        write("server.pem", &server_cert);
        write("server.key", &server_key);
        write("ca.pem", &ca_cert.pem());
        Self {
            dir,
            ca_pem: ca_cert.pem(),
            client_cert_pem,
            client_key_pem,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn client_tls(&self, with_certificate: bool) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if with_certificate {
            tls.identity(Identity::from_pem(
                &self.client_cert_pem,
                &self.client_key_pem,
            ))
        } else {
            tls
        }
    }
}

async fn spawn_tls(pki: &Pki, mutual: bool) -> TestApp {
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let client_ca = if mutual {
        pki.path("ca.pem")
    } else {
        Path::new("").to_path_buf()
    };
    spawn_app_with(move |config| {
        config.server.grpc.tls.cert = cert;
        config.server.grpc.tls.key = key;
        config.server.grpc.tls.client_ca = client_ca;
    })
    .await
}

/// A health check over `endpoint`: `Ok` when it connects and the server answers SERVING.
async fn check(endpoint: Endpoint) -> Result<(), String> {
    let channel: Channel = within("the connection attempt", endpoint.connect())
        .await
        .map_err(|err| format!("connect: {err}"))?;
    let status = within(
        "the health check",
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .map_err(|status| format!("check: {status}"))?
    .into_inner()
    .status();
    assert_eq!(status, ServingStatus::Serving);
    Ok(())
}

fn plaintext(app: &TestApp) -> Endpoint {
    Endpoint::from_shared(format!("http://{}", app.addr)).expect("endpoint")
}

fn tls(app: &TestApp, config: ClientTlsConfig) -> Endpoint {
    Endpoint::from_shared(format!("https://{}", app.addr))
        .expect("endpoint")
        .tls_config(config)
        .expect("client TLS config")
}

#[tokio::test]
async fn a_plaintext_server_serves_a_plaintext_client() {
    let app = spawn_app().await;
    check(plaintext(&app))
        .await
        .expect("plaintext to plaintext works");
}

#[tokio::test]
async fn a_tls_server_serves_tls_clients_and_refuses_plaintext() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, false).await;
    check(tls(&app, pki.client_tls(false)))
        .await
        .expect("a TLS client trusting the CA is served");
    let refused = check(plaintext(&app)).await;
    assert!(refused.is_err(), "a plaintext client must not be served");
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let app = spawn_tls(&pki, true).await;
    check(tls(&app, pki.client_tls(true)))
        .await
        .expect("a client with a certificate from the CA is served");
    let refused = check(tls(&app, pki.client_tls(false))).await;
    assert!(
        refused.is_err(),
        "a client without a certificate must be refused"
    );
    let refused = check(plaintext(&app)).await;
    assert!(refused.is_err(), "a plaintext client must be refused");
}

#[test]
fn an_unreadable_certificate_stops_start_up_naming_the_key() {
    use crate::binary::BINARY;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = streamhub_testkit::write_binary_config(
        dir.path(),
        &dir.path().join("data"),
        &format!(
            "server:\n  grpc:\n    tls:\n      cert: {missing}\n      key: {missing}\n",
            missing = dir.path().join("missing.pem").display(),
        ),
    );
    let output = std::process::Command::new(BINARY)
        .arg("-conf")
        .arg(&config)
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.grpc.tls.cert"), "{stderr}");
}
