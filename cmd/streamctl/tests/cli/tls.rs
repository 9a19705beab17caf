//! `--tls-ca`: streamctl verifies a TLS server against the given CA; certificates are made
//! at test time.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::{server::spawn_app_with, streamctl::run};

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

/// A fresh self-signed CA: its PEM and the issuer that signs with it.
fn certificate_authority() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}
