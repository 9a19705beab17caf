//! `grpc.health.v1.Health`, following the spec where tonic-health does not.
//!
//! tonic-health answers Watch of an unknown service with `NOT_FOUND` and never ends a Watch by
//! itself, which keeps shutdown waiting. Here Watch of an unknown service sends
//! `SERVICE_UNKNOWN` and stays open, and every Watch ends with `UNAVAILABLE` once shutdown
//! starts, right after it has delivered the `NOT_SERVING` that shutdown publishes. The
//! generated types of tonic-health are reused; only the behaviour is ours.

use std::{collections::HashMap, pin::Pin, sync::Arc};

use futures_util::{Stream, stream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::Health,
};

/// Serving status of `""` (the whole server) and of each served service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HealthService {
    statuses: Arc<HashMap<String, watch::Sender<ServingStatus>>>,
    stopping: CancellationToken,
}

impl HealthService {
    /// Registers `""` and `services`, all `SERVING`. Watch streams end when `stopping` fires.
    pub fn new<'a>(
        services: impl IntoIterator<Item = &'a str>,
        stopping: CancellationToken,
    ) -> Self {
        let statuses = std::iter::once("")
            .chain(services)
            .map(|name| (name.to_owned(), watch::channel(ServingStatus::Serving).0))
            .collect();
        Self {
            statuses: Arc::new(statuses),
            stopping,
        }
    }

    /// Sets every registered name to `status`, waking every Watch.
    pub fn set_all(&self, status: ServingStatus) {
        for sender in self.statuses.values() {
            sender.send_replace(status);
        }
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

/// What a Watch stream does next.
enum WatchStep {
    /// Send the receiver's current status, then wait for changes.
    SendCurrent(watch::Receiver<ServingStatus>),
    /// Wait for a change or for shutdown.
    Wait(watch::Receiver<ServingStatus>),
    /// The stream is over.
    Done,
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let name = request.into_inner().service;
        match self.statuses.get(&name) {
            Some(sender) => Ok(Response::new(response(*sender.borrow()))),
            None => Err(Status::not_found(format!("unknown service {name:?}"))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let name = request.into_inner().service;
        // An unknown name gets a channel of its own that stays SERVICE_UNKNOWN: the set of
        // served services is fixed at start-up, so it never becomes known later.
        let receiver = match self.statuses.get(&name) {
            Some(sender) => sender.subscribe(),
            None => watch::channel(ServingStatus::ServiceUnknown).1,
        };
        let stopping = self.stopping.clone();
        let updates = stream::unfold(WatchStep::SendCurrent(receiver), move |step| {
            let stopping = stopping.clone();
            async move {
                match step {
                    WatchStep::SendCurrent(mut receiver) => {
                        let status = *receiver.borrow_and_update();
                        Some((Ok(response(status)), WatchStep::Wait(receiver)))
                    }
                    WatchStep::Wait(mut receiver) => {
                        tokio::select! {
                            // Biased so that the NOT_SERVING published just before the
                            // shutdown signal is delivered before the stream ends.
                            biased;
                            Ok(()) = receiver.changed() => {
                                let status = *receiver.borrow_and_update();
                                Some((Ok(response(status)), WatchStep::Wait(receiver)))
                            }
                            () = stopping.cancelled() => Some((
                                Err(Status::unavailable("server is shutting down")),
                                WatchStep::Done,
                            )),
                        }
                    }
                    WatchStep::Done => None,
                }
            }
        });
        Ok(Response::new(Box::pin(updates)))
    }
}
