//! Property: whatever YAML arrives, parsing never panics, and a refusal is one line that
//! says where the problem is (a key, or the YAML position).
//!
//! proptest prints the failing input and persists its seed when a case fails.

use proptest::prelude::*;
use streamhub_conf::{ConfError, Config};

/// Keys that exist, so that generated documents reach validation, not only the parser.
const KNOWN: [&str; 24] = [
    "server",
    "grpc",
    "limits",
    "tls",
    "addr",
    "max_decoding_message_size",
    "max_concurrent_streams",
    "keepalive_interval",
    "max_streams_per_method",
    "cert",
    "key",
    "client_ca",
    "chat",
    "history",
    "max_messages_per_second",
    "auth",
    "tokens",
    "logs",
    "retention",
    "live_buffer",
    "edit",
    "op_log",
    "market",
    "min_interval",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("10s".to_owned()),
        Just("0s".to_owned()),
        Just("1e400".to_owned()),
        Just("true".to_owned()),
        Just("~".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"\"".to_owned()),
        "[a-z0-9 .:/_-]{0,12}",
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KNOWN.as_slice()).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ]
}

/// A YAML mapping, nested up to three levels, as text.
fn document() -> impl Strategy<Value = String> {
    let leaf = (key(), scalar()).prop_map(|(k, v)| format!("{k}: {v}"));
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        (key(), prop::collection::vec(inner, 1..4)).prop_map(|(k, children)| {
            let body: String = children
                .iter()
                .flat_map(|child| child.lines().map(|line| format!("  {line}\n")))
                .collect();
            format!("{k}:\n{body}")
        })
    });
    prop::collection::vec(tree, 0..5).prop_map(|items| items.join("\n"))
}

fn assert_one_line(error: &ConfError) {
    let message = error.to_string();
    assert_eq!(message.lines().count(), 1, "not one line: {message:?}");
    assert!(message.starts_with("config"), "{message:?}");
    if let ConfError::BadValue { key, .. } = error {
        assert!(
            key.contains('.') && message.contains(key),
            "{message:?} names its key"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn structured_yaml_parses_or_gives_one_line(text in document()) {
        if let Err(error) = Config::from_yaml(&text) {
            assert_one_line(&error);
        }
    }

    #[test]
    fn any_text_parses_or_gives_one_line(text in "\\PC{0,200}") {
        if let Err(error) = Config::from_yaml(&text) {
            assert_one_line(&error);
        }
    }
}

#[test]
fn an_empty_document_is_the_defaults() {
    let config = Config::from_yaml("").expect("empty YAML is all defaults");
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
}
