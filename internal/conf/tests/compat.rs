//! The `compat` section: defaults, environment overrides and validation.

use std::{fs, time::Duration};

use streamhub_conf::Config;

#[test]
fn compat_is_on_unpaced_by_default() {
    let config = Config::default();
    assert!(config.compat.enabled);
    assert_eq!(config.compat.pace, Duration::ZERO);
    assert_eq!(config.compat.chat_queue, 256);
}

#[test]
fn compat_keys_come_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    fs::write(&file, "compat:\n  pace: 1s\n  chat_queue: 8\n").expect("write config");
    let config = Config::load(
        &file,
        [("STREAMHUB__COMPAT__ENABLED".to_owned(), "false".to_owned())],
    )
    .expect("loads");
    assert!(!config.compat.enabled);
    assert_eq!(config.compat.pace, Duration::from_secs(1));
    assert_eq!(config.compat.chat_queue, 8);
}

#[test]
fn bad_compat_values_are_rejected_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (yaml, key) in [
        ("compat:\n  chat_queue: 0\n", "compat.chat_queue"),
        ("compat:\n  pace: soon\n", "compat.pace"),
        ("compat:\n  enable: true\n", "`enable`"),
    ] {
        let file = dir.path().join("config.yaml");
        fs::write(&file, yaml).expect("write config");
        let message = Config::load(&file, Vec::new())
            .expect_err("the configuration must be rejected")
            .to_string();
        assert!(message.contains(key), "{yaml:?}: {message}");
        assert!(!message.contains('\n'), "{message:?} must be one line");
    }
}
