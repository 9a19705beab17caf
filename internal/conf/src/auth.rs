//! `auth`: bearer tokens. Kept apart from the rest because it holds secrets: its `Debug`
//! shows how many tokens there are and for whom, never a token.

use std::{collections::BTreeMap, fmt};

use serde::Deserialize;

use crate::load::{ConfError, bad};

/// Longest user id a token may stand for, in bytes (user ids appear in every chat message).
const MAX_USER_ID_BYTES: usize = 256;

/// `auth`: who may call.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConf {
    /// Bearer token → user id. Empty (the default) turns authentication off; otherwise every
    /// call but health and reflection needs `authorization: Bearer <token>`.
    pub tokens: BTreeMap<String, String>,
}

impl AuthConf {
    /// True when calls must present a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        for (token, user) in &self.tokens {
            // Messages name the user, never the token: config errors end up in logs.
            if user.is_empty() {
                return Err(bad("auth.tokens", "a token maps to an empty user id"));
            }
            if user.len() > MAX_USER_ID_BYTES {
                return Err(bad(
                    "auth.tokens",
                    format!("a user id is longer than {MAX_USER_ID_BYTES} bytes"),
                ));
            }
            if token.is_empty() {
                return Err(bad(
                    "auth.tokens",
                    format!("the token of user {user:?} is empty"),
                ));
            }
            if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
                return Err(bad(
                    "auth.tokens",
                    format!(
                        "the token of user {user:?} must be printable ASCII without spaces, as an HTTP header carries it"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for AuthConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&String> = self.tokens.values().collect();
        f.debug_struct("AuthConf")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .field("users", &users)
            .finish()
    }
}
