//! Config parsing: any bytes as YAML either load or give a one-line error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub_conf::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::from_yaml(text) {
        assert_eq!(error.to_string().lines().count(), 1, "{error}");
    }
});
