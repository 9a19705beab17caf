//! The `market`, `sensors` and `batch` sections: defaults, overrides and bad values.

use std::{fs, path::Path, time::Duration};

use streamhub_conf::Config;

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    fs::write(&file, yaml).expect("write config");
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Vec<_>>();
    Config::load(Path::new(&file), env).map_err(|err| err.to_string())
}

#[test]
fn sections_load_from_the_file_and_the_environment() {
    let config = load(
        "market:\n  seed: 7\n  min_interval: 20ms\nsensors:\n  humidity_min: 5\n  humidity_max: 95\nbatch:\n  max_items: 10\n",
        &[
            ("STREAMHUB__SENSORS__TEMPERATURE_MAX", "80"),
            ("STREAMHUB__BATCH__MAX_ITEM_BYTES", "512"),
        ],
    )
    .expect("loads");
    assert_eq!(config.market.seed, 7);
    assert_eq!(config.market.min_interval, Duration::from_millis(20));
    assert_eq!(config.market.default_interval, Duration::from_secs(1));
    assert_eq!(config.sensors.humidity_min, 5.0);
    assert_eq!(config.sensors.humidity_max, 95.0);
    assert_eq!(config.sensors.temperature_min, -100.0);
    assert_eq!(config.sensors.temperature_max, 80.0);
    assert_eq!(config.batch.max_items, 10);
    assert_eq!(config.batch.max_item_bytes, 512);
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("market:\n  min_interval: 0s\n", "market.min_interval"),
        (
            "market:\n  default_interval: 5ms\n",
            "market.default_interval",
        ),
        ("market:\n  max_symbols: 0\n", "market.max_symbols"),
        (
            "market:\n  max_symbols_per_request: 0\n",
            "market.max_symbols_per_request",
        ),
        (
            "sensors:\n  pressure_min: 10\n  pressure_max: 1\n",
            "sensors.pressure_min",
        ),
        ("sensors:\n  max_sensors: 0\n", "sensors.max_sensors"),
        ("batch:\n  max_items: 0\n", "batch.max_items"),
        ("batch:\n  max_item_bytes: 0\n", "batch.max_item_bytes"),
        ("batch:\n  max_itemz: 3\n", "batch"),
    ];
    for (yaml, key) in cases {
        let message = load(yaml, &[]).expect_err("rejected");
        assert!(
            message.contains(key),
            "{yaml:?} gave {message:?}, which does not name {key}"
        );
        assert!(!message.contains('\n'), "{message:?} must be one line");
    }
}
