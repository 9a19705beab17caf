//! `streamhub -probe ADDR`: the container health check. One `grpc.health.v1.Health/Check` of
//! the whole server (`""`), bounded by a timeout, so an image without a shell or a
//! `grpc_health_probe` binary can still report whether the server is serving.

use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long a probe may take in all (connect and Check); container runtimes time out too,
/// but an answer of our own says why.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The status name a serving server reports.
pub const SERVING: &str = "SERVING";

/// Asks the server at `addr` (`HOST:PORT`, or a full `http://` URL) for its serving status
/// and returns its name (`SERVING`, `NOT_SERVING`, ...). Connection failures, timeouts and
/// error statuses are errors.
pub async fn check(addr: &str, timeout: Duration) -> anyhow::Result<String> {
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(url)
        .with_context(|| format!("{addr:?} is not an address (write HOST:PORT)"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let answer = tokio::time::timeout(timeout, async {
        let channel = endpoint.connect().await.context("cannot connect")?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| {
                anyhow::anyhow!(
                    "health check failed: {:?}: {}",
                    status.code(),
                    status.message()
                )
            })
    })
    .await
    .map_err(|_elapsed| anyhow::anyhow!("no answer within {timeout:?}"))??;
    let status = ServingStatus::try_from(answer.into_inner().status)
        .map_or("UNKNOWN_STATUS", |status| status.as_str_name());
    Ok(status.to_owned())
}
