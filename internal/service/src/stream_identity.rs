//! The identity rule of the bidirectional streams (Chat, GameSession, CollaborativeEdit),
//! written once: the first message names the stream's scope (room, session, document) and its
//! user; a later message may repeat them or leave them empty, never change them; an id is at
//! most [`MAX_ID_BYTES`], since it is kept in memory (and some are stored) as long as its scope
//! lives. Naming a user other than the authenticated caller is an authorization matter before
//! a shape one, so the claim is checked before the mismatch.

use streamhub_biz::auth::Caller;
use tonic::Status;

use crate::to_status;

/// Longest scope or user id, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 256;

/// One identity field of a stream's messages: its protobuf name and what it names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdField {
    pub(crate) name: &'static str,
    pub(crate) noun: &'static str,
}

/// The rule of one kind of stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentityRule {
    pub(crate) scope: IdField,
    pub(crate) user: IdField,
    /// The scope of a first message that names none; `None` when the scope is required.
    pub(crate) default_scope: Option<&'static str>,
}

/// The scope and user one message names (or the stream settled on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids<'a> {
    pub(crate) scope: &'a str,
    pub(crate) user: &'a str,
}

impl IdentityRule {
    /// The stream's identity from its first message, the default scope applied.
    pub(crate) fn first<'a>(&self, caller: &Caller, named: Ids<'a>) -> Result<Ids<'a>, Status> {
        let scope = match (named.scope.is_empty(), self.default_scope) {
            (false, _) => named.scope,
            (true, Some(default)) => default,
            (true, None) => return Err(self.missing(self.scope)),
        };
        if named.user.is_empty() {
            return Err(self.missing(self.user));
        }
        for (field, value) in [(self.scope, scope), (self.user, named.user)] {
            if value.len() > MAX_ID_BYTES {
                return Err(Status::invalid_argument(format!(
                    "{} is {} bytes; the limit is {MAX_ID_BYTES} bytes",
                    field.name,
                    value.len()
                )));
            }
        }
        caller
            .check_claim(self.user.name, named.user)
            .map_err(to_status)?;
        Ok(Ids {
            scope,
            user: named.user,
        })
    }

    /// Checks a later message against the stream's identity: an empty field means "the
    /// stream's"; another value is refused.
    pub(crate) fn later(
        &self,
        caller: &Caller,
        stream: Ids<'_>,
        named: Ids<'_>,
    ) -> Result<(), Status> {
        if !named.scope.is_empty() && named.scope != stream.scope {
            return Err(self.differs(self.scope, named.scope, stream.scope));
        }
        if !named.user.is_empty() {
            caller
                .check_claim(self.user.name, named.user)
                .map_err(to_status)?;
            if named.user != stream.user {
                return Err(self.differs(self.user, named.user, stream.user));
            }
        }
        Ok(())
    }

    fn missing(&self, field: IdField) -> Status {
        Status::invalid_argument(format!(
            "{} must not be empty: the first message names the {}",
            field.name, field.noun
        ))
    }

    fn differs(&self, field: IdField, named: &str, stream: &str) -> Status {
        Status::invalid_argument(format!(
            "{} {named:?} differs from this stream's {} {stream:?}: one {} per stream",
            field.name, field.noun, field.noun
        ))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    const ROOMS: IdentityRule = IdentityRule {
        scope: IdField {
            name: "room_id",
            noun: "room",
        },
        user: IdField {
            name: "user_id",
            noun: "user",
        },
        default_scope: None,
    };

    const SESSIONS: IdentityRule = IdentityRule {
        scope: IdField {
            name: "session_id",
            noun: "session",
        },
        user: IdField {
            name: "player_id",
            noun: "player",
        },
        default_scope: Some("default"),
    };

    fn ids<'a>(scope: &'a str, user: &'a str) -> Ids<'a> {
        Ids { scope, user }
    }

    fn refused(result: Result<impl std::fmt::Debug, Status>, code: Code, needle: &str) {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }

    #[test]
    fn the_first_message_names_scope_and_user_within_the_size_limit() {
        let anyone = Caller::Anonymous;
        assert_eq!(
            ROOMS.first(&anyone, ids("r", "ann")).expect("valid"),
            ids("r", "ann")
        );
        assert_eq!(
            SESSIONS.first(&anyone, ids("", "ann")).expect("valid"),
            ids("default", "ann")
        );
        refused(
            ROOMS.first(&anyone, ids("", "ann")),
            Code::InvalidArgument,
            "room_id must not be empty",
        );
        refused(
            SESSIONS.first(&anyone, ids("s", "")),
            Code::InvalidArgument,
            "player_id must not be empty",
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        refused(
            ROOMS.first(&anyone, ids(&long, "ann")),
            Code::InvalidArgument,
            "room_id is 257 bytes; the limit is 256 bytes",
        );
        refused(
            ROOMS.first(&anyone, ids("r", &long)),
            Code::InvalidArgument,
            "user_id is 257 bytes",
        );
        assert!(
            ROOMS.first(&anyone, ids(&long[1..], &long[1..])).is_ok(),
            "exactly the limit"
        );
    }

    #[test]
    fn a_later_message_may_repeat_or_omit_the_identity_but_not_change_it() {
        let anyone = Caller::Anonymous;
        let stream = ids("r", "ann");
        assert!(ROOMS.later(&anyone, stream, ids("", "")).is_ok());
        assert!(ROOMS.later(&anyone, stream, ids("r", "ann")).is_ok());
        refused(
            ROOMS.later(&anyone, stream, ids("other", "")),
            Code::InvalidArgument,
            "room_id \"other\" differs from this stream's room \"r\": one room per stream",
        );
        refused(
            ROOMS.later(&anyone, stream, ids("", "bob")),
            Code::InvalidArgument,
            "one user per stream",
        );
    }

    #[test]
    fn naming_another_user_than_the_caller_is_refused_as_an_authorization_matter() {
        let ann = Caller::User("ann".to_owned());
        refused(
            ROOMS.first(&ann, ids("r", "bob")),
            Code::PermissionDenied,
            "user_id",
        );
        refused(
            ROOMS.later(&ann, ids("r", "ann"), ids("", "bob")),
            Code::PermissionDenied,
            "user_id",
        );
    }
}
