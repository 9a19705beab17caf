//! `--tls-ca`: streamctl verifies a TLS server against the given CA, and `--tls-cert` with
//! `--tls-key` give it a certificate for mutual TLS; certificates are made at test time.

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use streamhub_testkit::spawn_app_with;

use crate::streamctl::run;

#[tokio::test]
async fn tls_ca_verifies_the_server_and_a_foreign_ca_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    let (ca_pem, issuer) = certificate_authority();
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    std::fs::write(path("ca.pem"), ca_pem).expect("write");
    std::fs::write(path("server.pem"), server_cert.pem()).expect("write");
    std::fs::write(path("server.key"), server_key.serialize_pem()).expect("write");
    std::fs::write(path("other-ca.pem"), certificate_authority().0).expect("write");

    let (cert, key) = (path("server.pem"), path("server.key"));
    let app = spawn_app_with(move |config| {
        config.server.grpc.tls.cert = cert;
        config.server.grpc.tls.key = key;
    })
    .await;
    let url = format!("https://localhost:{}", app.addr.port());
    let ca = path("ca.pem").display().to_string();
    let verified = run(&url, &["--tls-ca", &ca, "health"], "").await;
    assert_eq!(verified.success(), ["server: SERVING"]);

    // The same address without the scheme: --tls-ca alone turns TLS on.
    let bare = format!("localhost:{}", app.addr.port());
    let verified = run(&bare, &["--tls-ca", &ca, "health"], "").await;
    assert_eq!(verified.success(), ["server: SERVING"]);

    let other = path("other-ca.pem").display().to_string();
    let refused = run(&url, &["--tls-ca", &other, "health"], "").await;
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    assert!(refused.stderr.contains("cannot connect"), "{refused:?}");
}

#[tokio::test]
async fn tls_cert_and_key_get_through_mutual_tls_and_a_client_without_them_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (ca_pem, issuer) = certificate_authority();
    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("alice", ExtendedKeyUsagePurpose::ClientAuth);
    for (name, pem) in [
        ("ca.pem", &ca_pem),
        ("server.pem", &server_cert),
        ("server.key", &server_key),
        ("client.pem", &client_cert),
        ("client.key", &client_key),
    ] {
        std::fs::write(dir.path().join(name), pem).expect("write PEM");
    }
    let (cert, key, client_ca) = (
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("ca.pem"),
    );
    let app = spawn_app_with(move |config| {
        config.server.grpc.tls.cert = cert;
        config.server.grpc.tls.key = key;
        config.server.grpc.tls.client_ca = client_ca;
    })
    .await;
    let url = format!("https://localhost:{}", app.addr.port());
    let ca = path("ca.pem");
    let (cert, key) = (path("client.pem"), path("client.key"));

    let admitted = run(
        &url,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "health",
        ],
        "",
    )
    .await;
    assert_eq!(admitted.success(), ["server: SERVING"]);

    let refused = run(&url, &["--tls-ca", &ca, "health"], "").await;
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    // What the client sees depends on timing (the server's TLS alert CertificateRequired, a
    // broken pipe, or a closed connection), so only the failure itself is asserted.
    assert!(refused.stderr.starts_with("streamctl: "), "{refused:?}");

    // A certificate without its key, or a key without a CA, is a usage error.
    let half = run(&url, &["--tls-ca", &ca, "--tls-cert", &cert, "health"], "").await;
    assert_eq!(half.code(), Some(2), "{half:?}");
    assert!(half.stderr.contains("--tls-key"), "{half:?}");
    let no_ca = run(
        &url,
        &["--tls-cert", &cert, "--tls-key", &key, "health"],
        "",
    )
    .await;
    assert_eq!(no_ca.code(), Some(2), "{no_ca:?}");
    assert!(no_ca.stderr.contains("--tls-ca"), "{no_ca:?}");
}

/// A fresh self-signed CA: its PEM and the issuer that signs with it.
fn certificate_authority() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}
