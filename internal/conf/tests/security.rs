//! The security keys: `auth.tokens`, `server.grpc.tls.*`, `server.limits.*` and
//! `chat.max_messages_per_second`.

use std::{fs, path::Path};

use streamhub_conf::Config;

fn load(yaml: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    fs::write(&path, yaml).expect("write config");
    Config::load(&path, Vec::new()).map_err(|err| err.to_string())
}

#[test]
fn tokens_keep_their_case_and_punctuation_and_debug_hides_them() {
    let config = load("auth:\n  tokens:\n    \"Ab.Cd-eF_9/+=\": alice\n    xyz: bob\n")
        .expect("valid tokens");
    assert_eq!(
        config.auth.tokens.get("Ab.Cd-eF_9/+=").map(String::as_str),
        Some("alice"),
        "{:?}",
        config.auth.tokens.keys().collect::<Vec<_>>()
    );
    assert!(config.auth.enabled());
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("Ab.Cd"),
        "a token leaked into Debug: {debug}"
    );
    assert!(!debug.contains("xyz"), "a token leaked into Debug: {debug}");
    assert!(debug.contains("alice"), "users are shown: {debug}");
}

#[test]
fn auth_is_off_by_default() {
    assert!(!Config::default().auth.enabled());
}

#[test]
fn bad_tokens_are_named_without_showing_the_token() {
    for (yaml, says) in [
        ("auth:\n  tokens:\n    \"has space\": alice\n", "alice"),
        ("auth:\n  tokens:\n    good-token: \"\"\n", "empty user id"),
    ] {
        let err = load(yaml).expect_err(yaml);
        assert!(err.contains("auth.tokens"), "{yaml}: {err}");
        assert!(err.contains(says), "{yaml}: {err}");
        assert!(
            !err.contains("has space") && !err.contains("good-token"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn tls_files_go_together() {
    let err = load("server:\n  grpc:\n    tls:\n      cert: a.pem\n").expect_err("key missing");
    assert!(err.contains("server.grpc.tls.key"), "{err}");
    let err = load("server:\n  grpc:\n    tls:\n      client_ca: ca.pem\n")
        .expect_err("mTLS without a server certificate");
    assert!(err.contains("server.grpc.tls.client_ca"), "{err}");
    let config = load("server:\n  grpc:\n    tls:\n      cert: a.pem\n      key: a.key\n")
        .expect("cert and key");
    assert!(config.server.grpc.tls.enabled());
    assert_eq!(config.server.grpc.tls.cert, Path::new("a.pem"));
}

#[test]
fn zero_limits_are_refused_naming_the_key() {
    for (yaml, key) in [
        (
            "server:\n  limits:\n    max_streams_per_method: 0\n",
            "server.limits.max_streams_per_method",
        ),
        (
            "chat:\n  max_messages_per_second: 0\n",
            "chat.max_messages_per_second",
        ),
    ] {
        let err = load(yaml).expect_err(yaml);
        assert!(err.contains(key), "{yaml}: {err}");
    }
}
