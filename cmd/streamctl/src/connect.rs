//! Where and how to reach the server: `--addr`, `--token`, `--tls-ca` (with `--tls-cert` and
//! `--tls-key` for mutual TLS), `--timeout`.
//!
//! Every call goes through [`CallMetadata`], an interceptor that adds the bearer token and the
//! deadline, so no subcommand can forget them. A connection is made per command (and anew on
//! each reconnect), so a follower never waits on a channel that still points at a dead server.

use std::{fmt, path::PathBuf, time::Duration};

use streamhub_api::streaming::streaming_service_client::StreamingServiceClient;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::health_client::HealthClient;

use crate::Failure;

/// The connection flags, accepted before or after the subcommand.
#[derive(clap::Args)]
pub(crate) struct ConnectArgs {
    /// Server address (`http://HOST:PORT`; `HOST:PORT` means http).
    #[arg(
        long,
        global = true,
        env = "STREAMCTL_ADDR",
        default_value = "http://localhost:9000"
    )]
    addr: String,
    /// Bearer token, sent as `authorization: Bearer TOKEN` on every call.
    #[arg(long, global = true, env = "STREAMCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    #[arg(long, global = true, value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// PEM file of this client's certificate, for a server that requires mutual TLS (needs
    /// --tls-key and --tls-ca).
    #[arg(long, global = true, value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// PEM file of the private key of --tls-cert.
    #[arg(long, global = true, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Deadline of connecting and of each call (`5s`, `500ms`); a follower's whole stream is
    /// one call.
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// A streaming client whose calls carry the token and deadline.
pub(crate) type StreamingClient = StreamingServiceClient<InterceptedService<Channel, CallMetadata>>;

/// A health client whose calls carry the token and deadline.
pub(crate) type HealthCheckClient = HealthClient<InterceptedService<Channel, CallMetadata>>;

impl ConnectArgs {
    /// Checks the flags; every problem is a usage error naming the flag.
    pub(crate) fn connection(&self) -> Result<Connection, Failure> {
        // With --tls-ca the connection is TLS whatever scheme was typed; https:// without it
        // cannot be verified, since no system root certificates are built in.
        let (scheme, rest) = self
            .addr
            .split_once("://")
            .unwrap_or(("http", self.addr.as_str()));
        let tls = match (&self.tls_ca, scheme) {
            (Some(ca), _) => {
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read_pem("--tls-ca", ca)?));
                Some(match (&self.tls_cert, &self.tls_key) {
                    (Some(cert), Some(key)) => tls.identity(Identity::from_pem(
                        read_pem("--tls-cert", cert)?,
                        read_pem("--tls-key", key)?,
                    )),
                    // clap makes the two flags come together.
                    _ => tls,
                })
            }
            (None, "https") => {
                return Err(Failure::Usage(format!(
                    "--addr {}: an https:// address needs --tls-ca PEM (the CA that signed the \
                     server's certificate)",
                    self.addr
                )));
            }
            (None, _) => None,
        };
        let addr = format!("{}://{rest}", if tls.is_some() { "https" } else { scheme });
        let mut endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|err| Failure::Usage(format!("--addr {}: {err}", self.addr)))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|err| Failure::Usage(format!("TLS settings: {}", causes(&err))))?;
        }
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        let authorization = self
            .token
            .as_ref()
            .map(|token| {
                MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    Failure::Usage(
                        "--token: a token must be printable ASCII without line breaks".to_owned(),
                    )
                })
            })
            .transpose()?;
        Ok(Connection {
            addr,
            endpoint,
            metadata: CallMetadata {
                authorization,
                timeout: self.timeout,
            },
        })
    }
}

/// The contents of the PEM file that `flag` names; a file that cannot be read is a usage error.
fn read_pem(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|err| Failure::Usage(format!("{flag} {}: {err}", path.display())))
}

/// A checked server address plus what every call carries.
#[derive(Debug)]
pub(crate) struct Connection {
    addr: String,
    endpoint: Endpoint,
    metadata: CallMetadata,
}

impl Connection {
    /// Connects anew. A refused or timed-out connection is `UNAVAILABLE`, which followers
    /// retry, naming the address so a typo is obvious.
    async fn channel(&self) -> Result<Channel, Status> {
        self.endpoint.connect().await.map_err(|err| {
            Status::unavailable(format!("cannot connect to {}: {}", self.addr, causes(&err)))
        })
    }

    pub(crate) async fn streaming(&self) -> Result<StreamingClient, Status> {
        let channel = self.channel().await?;
        Ok(StreamingServiceClient::with_interceptor(
            channel,
            self.metadata.clone(),
        ))
    }

    pub(crate) async fn health(&self) -> Result<HealthCheckClient, Status> {
        let channel = self.channel().await?;
        Ok(HealthClient::with_interceptor(
            channel,
            self.metadata.clone(),
        ))
    }
}

/// `error: cause: root cause`, since tonic's transport error alone says only "transport error".
fn causes(err: &dyn std::error::Error) -> String {
    with_causes(err.to_string(), err.source())
}

/// `text` followed by each cause in `source`'s chain (a cause that repeats the words before
/// it is left out: hyper and tonic wrap some errors twice).
pub(crate) fn with_causes(
    mut text: String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    let mut last = text.clone();
    while let Some(cause) = source {
        let said = cause.to_string();
        if said != last {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        source = cause.source();
    }
    text
}

/// Adds `authorization` and `grpc-timeout` to every call.
#[derive(Clone)]
pub(crate) struct CallMetadata {
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Option<Duration>,
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        Ok(request)
    }
}

/// The token is a secret: Debug output says only whether there is one.
impl fmt::Debug for CallMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMetadata")
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}
