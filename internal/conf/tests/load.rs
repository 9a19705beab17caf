//! Loading configuration from files, directories and environment overrides.

use std::{fs, path::Path, time::Duration};

use streamhub_conf::{ConfError, Config, LogFormat};

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, yaml).expect("write config");
    path
}

fn error_of(path: &Path, env: Vec<(String, String)>) -> String {
    Config::load(path, env)
        .expect_err("the configuration must be rejected")
        .to_string()
}

#[test]
fn the_shipped_config_documents_exactly_the_defaults() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/config.yaml");
    let loaded = Config::load(&shipped, no_env()).expect("configs/config.yaml loads");
    assert_eq!(format!("{loaded:?}"), format!("{:?}", Config::default()));
}

/// configs/config.yaml is the config reference, so a key left out of it is a key nobody can
/// look up; the test above cannot see that, as a missing key loads as its default.
#[test]
fn the_shipped_config_lists_every_key() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/config.yaml");
    let text = fs::read_to_string(&shipped).expect("configs/config.yaml is readable");
    let tree = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Yaml))
        .build()
        .and_then(config::Config::try_deserialize::<config::Map<String, config::Value>>)
        .expect("configs/config.yaml parses");
    let mut listed = Vec::new();
    yaml_keys(tree, "", &mut listed);
    let keys = debug_keys(&format!("{:#?}", Config::default()));
    let missing: Vec<_> = keys.iter().filter(|key| !listed.contains(key)).collect();
    let extra: Vec<_> = listed.iter().filter(|key| !keys.contains(key)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "configs/config.yaml lacks {missing:?} and lists {extra:?}, which Config does not have"
    );
}

/// The dotted paths of a parsed YAML tree's leaves; an empty mapping (`tokens: {}`) is a leaf.
fn yaml_keys(tree: config::Map<String, config::Value>, prefix: &str, keys: &mut Vec<String>) {
    for (key, value) in tree {
        let path = format!("{prefix}{key}");
        match value.into_table() {
            Ok(table) if !table.is_empty() => yaml_keys(table, &format!("{path}."), keys),
            _ => keys.push(path),
        }
    }
}

/// The dotted paths of the leaves in the pretty `Debug` of a config struct: a line
/// `name: Type {` opens a section, `}` closes it, any other `name: value` is a key.
fn debug_keys(debug: &str) -> Vec<String> {
    let mut sections: Vec<&str> = Vec::new();
    let mut keys = Vec::new();
    for line in debug.lines().skip(1).map(str::trim) {
        if line.starts_with('}') {
            sections.pop();
            continue;
        }
        let Some((name, value)) = line.split_once(": ") else {
            panic!("unexpected line in the Debug of Config: {line:?}");
        };
        if value.ends_with('{') {
            sections.push(name);
            continue;
        }
        let path = sections
            .iter()
            .chain(std::iter::once(&name))
            .copied()
            .collect::<Vec<_>>()
            .join(".");
        // AuthConf's Debug redacts the tokens and adds the users they stand for, which is
        // not a key of its own.
        if path != "auth.users" {
            keys.push(path);
        }
    }
    keys
}

#[test]
fn a_directory_merges_its_yaml_files_in_name_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "10-base.yaml",
        "server:\n  grpc:\n    addr: 127.0.0.1:1000\nlog:\n  level: debug\n",
    );
    write(
        dir.path(),
        "20-site.yaml",
        "server:\n  grpc:\n    addr: 127.0.0.1:2000\n",
    );
    write(dir.path(), "notes.txt", "not: [yaml");
    let config = Config::load(dir.path(), no_env()).expect("directory loads");
    assert_eq!(config.server.grpc.addr.to_string(), "127.0.0.1:2000");
    assert_eq!(config.log.level, "debug");
}

#[test]
fn environment_overrides_the_file_for_the_fixed_key_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "config.yaml",
        "server:\n  grpc:\n    addr: 0.0.0.0:9000\n    shutdown_grace: 3s\nlog:\n  format: json\n",
    );
    let config = Config::load(
        &file,
        env(&[
            ("STREAMHUB__SERVER__GRPC__ADDR", "127.0.0.1:9100"),
            ("STREAMHUB__DATA__DATABASE__SOURCE", "sqlite:///tmp/x.db"),
            ("STREAMHUB__DATA__STORAGE__ROOT", "/var/lib/streamhub/files"),
            ("STREAMHUB__SERVER__GRPC__MAX_CONCURRENT_STREAMS", "7"),
            ("UNRELATED", "ignored"),
        ]),
    )
    .expect("loads");
    assert_eq!(config.server.grpc.addr.to_string(), "127.0.0.1:9100");
    assert_eq!(config.data.database.source, "sqlite:///tmp/x.db");
    assert_eq!(
        config.data.storage.root,
        Path::new("/var/lib/streamhub/files")
    );
    assert_eq!(config.server.grpc.max_concurrent_streams, 7);
    // Keys the environment does not touch keep the file's values.
    assert_eq!(config.server.grpc.shutdown_grace, Duration::from_secs(3));
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn unknown_keys_are_rejected_naming_the_section() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "config.yaml", "server:\n  grpc:\n    adr: x\n");
    let message = error_of(&file, no_env());
    assert!(
        message.contains("`adr`") && message.contains("server.grpc"),
        "{message}"
    );

    let file = write(dir.path(), "config.yaml", "{}\n");
    let message = error_of(&file, env(&[("STREAMHUB__SERVER__GRPC__PORT", "1")]));
    assert!(message.contains("`port`"), "{message}");
}

#[test]
fn bad_values_are_rejected_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("server:\n  grpc:\n    addr: nowhere\n", "server.grpc.addr"),
        (
            "server:\n  grpc:\n    keepalive_interval: 0s\n",
            "server.grpc.keepalive_interval",
        ),
        (
            "server:\n  grpc:\n    shutdown_grace: later\n",
            "server.grpc.shutdown_grace",
        ),
        (
            "server:\n  grpc:\n    max_decoding_message_size: 0\n",
            "server.grpc.max_decoding_message_size",
        ),
        (
            "data:\n  database:\n    source: postgres://x\n",
            "data.database.source",
        ),
        (
            "data:\n  database:\n    max_connections: -1\n",
            "data.database.max_connections",
        ),
        ("data:\n  storage:\n    root: ''\n", "data.storage.root"),
        (
            "data:\n  storage:\n    max_file_bytes: 0\n",
            "data.storage.max_file_bytes",
        ),
        (
            "data:\n  storage:\n    resume_ttl: 0s\n",
            "data.storage.resume_ttl",
        ),
        (
            "data:\n  storage:\n    sweep_interval: soon\n",
            "data.storage.sweep_interval",
        ),
        ("log:\n  format: xml\n", "log.format"),
        ("logs:\n  live_buffer: 0\n", "logs.live_buffer"),
        ("logs:\n  live_buffer: 2000000\n", "logs.live_buffer"),
        ("logs:\n  max_entries: 0\n", "logs.max_entries"),
        ("logs:\n  retention: 0s\n", "logs.retention"),
        (
            "logs:\n  retention_interval: 0s\n",
            "logs.retention_interval",
        ),
        ("logs:\n  retention: forever\n", "logs.retention"),
        ("chat:\n  member_queue: 0\n", "chat.member_queue"),
        ("chat:\n  max_rooms: 0\n", "chat.max_rooms"),
        ("game:\n  board_width: 0\n", "game.board_width"),
        ("game:\n  max_sessions: -3\n", "game.max_sessions"),
        (
            "server:\n  metrics:\n    addr: port-9090\n",
            "server.metrics.addr",
        ),
        (
            "telemetry:\n  service_name: ' '\n",
            "telemetry.service_name",
        ),
        (
            "telemetry:\n  otlp:\n    endpoint: localhost:4317\n",
            "telemetry.otlp.endpoint",
        ),
        (
            "telemetry:\n  otlp:\n    export_interval: 0s\n",
            "telemetry.otlp.export_interval",
        ),
        (
            "telemetry:\n  otlp:\n    sampling_ratio: 1.5\n",
            "telemetry.otlp.sampling_ratio",
        ),
    ];
    for (yaml, key) in cases {
        let file = write(dir.path(), "config.yaml", yaml);
        let message = error_of(&file, no_env());
        assert!(
            message.contains(key),
            "{yaml:?} gave {message:?}, which does not name {key}"
        );
        assert!(!message.contains('\n'), "{message:?} must be one line");
    }
}

#[test]
fn unreadable_or_unparsable_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.yaml");
    let err = Config::load(&missing, no_env()).expect_err("missing file");
    assert!(matches!(err, ConfError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("missing.yaml"), "{err}");

    let broken = write(dir.path(), "broken.yaml", "server: [\n");
    let message = error_of(&broken, no_env());
    assert!(message.contains("broken.yaml"), "{message}");

    let empty_dir = dir.path().join("empty");
    fs::create_dir(&empty_dir).expect("mkdir");
    let message = error_of(&empty_dir, no_env());
    assert!(message.contains("no *.yaml"), "{message}");
}

#[test]
fn telemetry_is_off_by_default_and_set_by_file_or_environment() {
    let defaults = Config::default();
    assert_eq!(defaults.server.metrics.addr, None);
    assert!(defaults.telemetry.otlp.endpoint.is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "config.yaml",
        "server:\n  metrics:\n    addr: 127.0.0.1:9090\ntelemetry:\n  otlp:\n    sampling_ratio: 0.25\n",
    );
    let config = Config::load(
        &file,
        env(&[(
            "STREAMHUB__TELEMETRY__OTLP__ENDPOINT",
            "http://collector:4317",
        )]),
    )
    .expect("loads");
    assert_eq!(
        config.server.metrics.addr.map(|addr| addr.to_string()),
        Some("127.0.0.1:9090".to_owned())
    );
    assert_eq!(config.telemetry.otlp.endpoint, "http://collector:4317");
    assert!((config.telemetry.otlp.sampling_ratio - 0.25).abs() < f64::EPSILON);

    // An empty override turns the endpoint off again.
    let config =
        Config::load(&file, env(&[("STREAMHUB__SERVER__METRICS__ADDR", "")])).expect("loads");
    assert_eq!(config.server.metrics.addr, None);
}
