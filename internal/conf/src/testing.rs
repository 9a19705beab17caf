//! [`Config::for_tests`]: the configuration every test and benchmark starts a server with, so
//! that servers started at once by parallel tests never share a port or a data directory.

use std::{net::SocketAddr, path::Path, time::Duration};

use crate::Config;

impl Config {
    /// The defaults, except: listen on an ephemeral loopback port (`127.0.0.1:0`; ask the
    /// listener which one it got), keep the database (`streamhub.db`) and the file store
    /// (`files/`) under `data_dir`, and give open calls 5 s at shutdown instead of 10 s, so that
    /// a call that outlives the grace fails its test with the server's `UNAVAILABLE` well inside
    /// the 10 s a test waits for a stop, not with the test's own timeout.
    pub fn for_tests(data_dir: &Path) -> Self {
        let mut config = Self::default();
        config.server.grpc.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.grpc.shutdown_grace = Duration::from_secs(5);
        config.data.database.source =
            format!("sqlite://{}", data_dir.join("streamhub.db").display());
        config.data.storage.root = data_dir.join("files");
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_tests_listens_on_an_ephemeral_loopback_port_and_keeps_its_data_in_the_directory() {
        let config = Config::for_tests(Path::new("/tmp/one-test"));
        assert!(config.server.grpc.addr.ip().is_loopback());
        assert_eq!(config.server.grpc.addr.port(), 0);
        assert_eq!(
            config.data.database.source,
            "sqlite:///tmp/one-test/streamhub.db"
        );
        assert_eq!(config.data.storage.root, Path::new("/tmp/one-test/files"));
        assert_eq!(
            config.chat.member_queue,
            Config::default().chat.member_queue,
            "the rest is the defaults"
        );
    }
}
