//! `streamctl health`: the standard `grpc.health.v1` Check, or Watch with `--watch`.
//!
//! Exits 0 only when the answer is `SERVING`, so `streamctl health` works as a readiness probe.

use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::{Failure, Outcome, connect::Connection, output::Output};

#[derive(clap::Args)]
pub(crate) struct HealthArgs {
    /// The service to ask about (`streaming.StreamingService`); empty = the whole server.
    #[arg(long, default_value = "")]
    service: String,
    /// Keep printing each change of status until interrupted.
    #[arg(long)]
    watch: bool,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: HealthArgs) -> Outcome {
    let mut client = connection.health().await?;
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    if args.watch {
        let mut statuses = client.watch(request).await?.into_inner();
        while let Some(answer) = statuses.message().await? {
            print_status(output, &args.service, answer.status())?;
        }
        return Ok(());
    }
    let status = client.check(request).await?.into_inner().status();
    print_status(output, &args.service, status)?;
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(Failure::Server(tonic::Status::unavailable(format!(
            "{} is {}",
            service_label(&args.service),
            status.as_str_name()
        ))))
    }
}

fn print_status(output: &Output, service: &str, status: ServingStatus) -> Outcome {
    output.record(
        || format!("{}: {}", service_label(service), status.as_str_name()),
        || json!({ "service": service, "status": status.as_str_name() }),
    )
}

fn service_label(service: &str) -> &str {
    if service.is_empty() {
        "server"
    } else {
        service
    }
}
