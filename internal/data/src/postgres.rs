//! The PostgreSQL store: [`PgDatabase`] (a migrated pool) and the repositories on it.
//!
//! One module per backend rather than one per feature: the pool, the migrator and the
//! connection handling are shared by every PostgreSQL repository, and the next step of
//! issue 18 adds the files, documents and chat repositories here beside [`PgLogRepo`] while
//! the SQLite ones stay where they are. Each repository keeps the sequencing rule of
//! SCALEOUT.md: ids come from a counter row locked in the appending transaction.
//!
//! Not wired into [`Data::open`](crate::Data::open) yet; that chooses a backend by URL later.

mod logs;

use std::time::Duration;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use logs::PgLogRepo;

use crate::DataError;

/// Migrations from the workspace's `migrations/postgres/`, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// A migrated PostgreSQL pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    pool: PgPool,
}

impl PgDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`) with at most `max_connections`
    /// connections and applies every pending migration. `acquire_timeout` bounds how long a
    /// query waits for a connection, and this open for its first one: sqlx retries a refused
    /// connection until then. Errors name the URL without its password.
    pub async fn open(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, DataError> {
        let open_error = |reason: String| DataError::Open {
            source_url: without_password(url),
            reason,
        };
        let options: PgConnectOptions = url
            .parse()
            .map_err(|err: sqlx::Error| open_error(err.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|err| open_error(err.to_string()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|err| DataError::Migrate(err.to_string()))?;
        Ok(Self { pool })
    }

    /// The pool, for repositories in this crate.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for every connection to return and closes them.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` with the password in its user part (`user:password@`) replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let hidden = if user.len() == user_info.len() {
                ""
            } else {
                ":***"
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_appears_in_a_reported_url() {
        assert_eq!(
            without_password("postgres://ann:s3cret@db:5432/hub?sslmode=disable"),
            "postgres://ann:***@db:5432/hub?sslmode=disable"
        );
        assert_eq!(
            without_password("postgres://ann@db/hub"),
            "postgres://ann@db/hub"
        );
        assert_eq!(without_password("postgres://db/hub"), "postgres://db/hub");
        assert_eq!(without_password("not a url"), "not a url");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_without_the_password() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let url = "postgres://ann:s3cret@127.0.0.1:1/hub";
        let err = PgDatabase::open(url, 1, Duration::from_millis(200))
            .await
            .expect_err("nothing listens on port 1");
        let message = err.to_string();
        assert!(message.starts_with("data.database.source"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
