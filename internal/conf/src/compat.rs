//! `compat`: the seeds' other services (chat, `proto.StreamService`, Chatify, helloworld),
//! served beside `StreamingService` so clients written against the seeds work unchanged.

use std::time::Duration;

use serde::Deserialize;

use crate::ConfError;

/// `compat`: whether the seeds' small services are served, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatConf {
    /// Serve `chat.ChatService`, `proto.StreamService`, `service.v1.Service` and the three
    /// `helloworld` services. When false they answer `UNIMPLEMENTED` and are absent from
    /// health and reflection.
    pub enabled: bool,
    /// Pause between the messages a compat server stream generates by itself (List,
    /// ServerStream, AllStream). The seeds sleep 1s there for demonstration; 0s sends at once.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub pace: Duration,
    /// Messages queued per `chat.ChatService` client; a client that falls this far behind is
    /// cut off with `RESOURCE_EXHAUSTED` so the others never wait for it.
    pub chat_queue: usize,
}

impl Default for CompatConf {
    fn default() -> Self {
        Self {
            enabled: true,
            pace: Duration::ZERO,
            chat_queue: 256,
        }
    }
}

impl CompatConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        if self.chat_queue == 0 {
            return Err(ConfError::BadValue {
                key: "compat.chat_queue",
                reason: "must be greater than 0".to_owned(),
            });
        }
        Ok(())
    }
}
