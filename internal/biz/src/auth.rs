//! Who is calling: the identity the server's authentication layer established for a call,
//! and the one rule that goes with it.
//!
//! Chat, game sessions and collaborative editing name their user inside every message
//! (`user_id`, `player_id`). With authentication on, those names are claims to check against
//! the token's user: a client must not speak for someone else. With it off (the local-dev
//! default) nobody is authenticated and every claim stands.

use std::fmt;

use crate::{Error, Result};

/// The caller of one RPC, as established by its bearer token.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Caller {
    /// Authentication is off: the caller is whoever its messages say.
    #[default]
    Anonymous,
    /// The user id configured for the token the call presented.
    User(String),
}

impl Caller {
    /// Accepts a message field (`field`) that names `claimed` as its author when the caller is
    /// anonymous or is that user; anything else is [`Error::NotTheCaller`].
    pub fn check_claim(&self, field: &'static str, claimed: &str) -> Result<()> {
        match self {
            Self::User(user) if user != claimed => Err(Error::NotTheCaller {
                field,
                claimed: claimed.to_owned(),
                caller: user.clone(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user id, never the token: the token is not kept here at all.
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::User(user) => f.debug_tuple("User").field(user).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anonymous_caller_may_claim_anyone() {
        assert!(Caller::Anonymous.check_claim("user_id", "ann").is_ok());
    }

    #[test]
    fn an_authenticated_caller_may_claim_only_itself() {
        let ann = Caller::User("ann".to_owned());
        assert!(ann.check_claim("user_id", "ann").is_ok());
        let err = ann
            .check_claim("player_id", "bob")
            .expect_err("ann cannot act as bob");
        assert!(
            matches!(&err, Error::NotTheCaller { field: "player_id", claimed, caller } if claimed == "bob" && caller == "ann"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "player_id \"bob\" is not the authenticated user \"ann\""
        );
    }
}
