//! One document's authoritative state: text, revision and the recent operations that late
//! edits are transformed against. Plain synchronous code; the document actor owns one.

use std::{collections::VecDeque, time::SystemTime};

use super::ot::{self, TextOp};
use crate::{Error, Result};

/// What kind of edit a client asked for; kept on the applied edit even when the text change
/// transformed into nothing, so the author recognises its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    Insert,
    Delete,
    Format,
}

impl EditKind {
    /// The wire name (`operation_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Delete => "DELETE",
            Self::Format => "FORMAT",
        }
    }
}

/// An edit as a client sent it, validated for shape but not yet against the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRequest {
    pub user_id: String,
    pub kind: EditKind,
    /// The text change against the client's `base_revision` ([`TextOp::Noop`] for FORMAT).
    pub op: TextOp,
    /// FORMAT's format name; empty otherwise.
    pub format: String,
    /// The revision the client had seen; `None` applies to the current text as is.
    pub base_revision: Option<i64>,
}

/// An edit as applied: transformed to the current text, with the revision it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedEdit {
    pub revision: i64,
    pub user_id: String,
    pub kind: EditKind,
    pub op: TextOp,
    pub format: String,
    pub applied_at: SystemTime,
}

/// Bounds on one document.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Operations kept for transforming late edits (`edit.op_log`).
    pub op_log: usize,
    /// Largest text, in chars (`edit.max_document_chars`).
    pub max_chars: usize,
}

impl AppliedEdit {
    /// The bytes of the operation's own text on the wire (the inserted text, or the format).
    pub fn op_text_bytes(&self) -> usize {
        op_text_bytes(&self.op, &self.format)
    }
}

fn op_text_bytes(op: &TextOp, format: &str) -> usize {
    match op {
        TextOp::Insert { text, .. } => text.len(),
        TextOp::Delete { .. } => 0,
        TextOp::Noop => format.len(),
    }
}

/// A logged operation: the revision it produced and its text change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOp {
    pub revision: i64,
    pub op: TextOp,
}

/// The state of one document.
#[derive(Debug)]
pub struct Document {
    text: String,
    chars: usize,
    revision: i64,
    log: VecDeque<LoggedOp>,
    limits: DocumentLimits,
}

impl Document {
    /// A document at `revision` whose last operations were `recent` (oldest first).
    pub fn new(text: String, revision: i64, recent: Vec<LoggedOp>, limits: DocumentLimits) -> Self {
        let chars = text.chars().count();
        let mut log: VecDeque<LoggedOp> = recent.into();
        while log.len() > limits.op_log {
            log.pop_front();
        }
        Self {
            text,
            chars,
            revision,
            log,
            limits,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Transforms `request` against the operations its author had not seen, applies it and
    /// advances the revision (also when it transformed into nothing, or is a FORMAT).
    pub fn submit(&mut self, request: EditRequest, now: SystemTime) -> Result<AppliedEdit> {
        let prepared = self.prepare(request)?;
        Ok(self.apply(prepared, now))
    }

    /// Checks `request` and transforms it to the current text, changing nothing: the caller
    /// can still refuse it (for instance because its update would be too large to send).
    pub fn prepare(&self, request: EditRequest) -> Result<PreparedEdit> {
        let base = request.base_revision.unwrap_or(self.revision);
        if base > self.revision {
            return Err(Error::RevisionAhead {
                base,
                current: self.revision,
            });
        }
        // Revisions base+1..=current must all still be in the log.
        let oldest_base = self
            .log
            .front()
            .map_or(self.revision, |first| first.revision - 1);
        if base < oldest_base {
            return Err(Error::RevisionTooOld {
                base,
                oldest: oldest_base,
            });
        }
        let unseen = || self.log.iter().filter(move |logged| logged.revision > base);

        let delta_since_base: i64 = unseen().map(|logged| logged.op.len_delta()).sum();
        let chars_at_base = usize::try_from(to_i64(self.chars) - delta_since_base)
            .map_err(|_| Error::Storage("document log inconsistent with its text".to_owned()))?;
        request
            .op
            .check(chars_at_base)
            .map_err(Error::EditOutOfRange)?;

        let op = unseen().fold(request.op, |op, logged| ot::transform(&op, &logged.op));
        let chars = usize::try_from(to_i64(self.chars) + op.len_delta()).unwrap_or(usize::MAX);
        if chars > self.limits.max_chars {
            return Err(Error::DocumentTooLarge {
                chars,
                limit: self.limits.max_chars,
            });
        }
        op.check(self.chars).map_err(Error::EditOutOfRange)?;
        Ok(PreparedEdit {
            text_bytes: ot::utf8_len_after(&self.text, &op),
            chars,
            op,
            user_id: request.user_id,
            kind: request.kind,
            format: request.format,
        })
    }

    /// Applies an edit [`Document::prepare`] made against the current revision.
    pub fn apply(&mut self, prepared: PreparedEdit, now: SystemTime) -> AppliedEdit {
        let PreparedEdit {
            op,
            chars,
            user_id,
            kind,
            format,
            ..
        } = prepared;
        // `prepare` checked the operation against this very text.
        let applied = ot::apply(&mut self.text, self.chars, &op);
        debug_assert!(
            applied.is_ok(),
            "a prepared edit no longer fits: {applied:?}"
        );
        self.chars = chars;
        self.revision += 1;
        self.log.push_back(LoggedOp {
            revision: self.revision,
            op: op.clone(),
        });
        if self.log.len() > self.limits.op_log {
            self.log.pop_front();
        }
        AppliedEdit {
            revision: self.revision,
            user_id,
            kind,
            op,
            format,
            applied_at: now,
        }
    }
}

/// An edit transformed to the current text and checked, not yet applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEdit {
    /// The operation as it will apply.
    pub op: TextOp,
    /// The text's length in chars once applied.
    pub chars: usize,
    /// The text's length in bytes once applied.
    pub text_bytes: usize,
    pub user_id: String,
    pub kind: EditKind,
    pub format: String,
}

impl PreparedEdit {
    /// The bytes of the operation's own text on the wire (the inserted text, or the format).
    pub fn op_text_bytes(&self) -> usize {
        op_text_bytes(&self.op, &self.format)
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        op_log: 3,
        max_chars: 20,
    };

    fn edit(op: TextOp, base: Option<i64>) -> EditRequest {
        let kind = match op {
            TextOp::Delete { .. } => EditKind::Delete,
            _ => EditKind::Insert,
        };
        EditRequest {
            user_id: "ann".to_owned(),
            kind,
            op,
            format: String::new(),
            base_revision: base,
        }
    }

    fn doc(text: &str) -> Document {
        Document::new(text.to_owned(), 0, Vec::new(), LIMITS)
    }

    #[test]
    fn a_late_edit_is_transformed_against_what_its_author_missed() {
        let mut document = doc("hello");
        document
            .submit(
                edit(TextOp::insert(0, "¡"), Some(0)),
                SystemTime::UNIX_EPOCH,
            )
            .expect("first edit");
        // Made against revision 0, where "o" was at 4.
        let applied = document
            .submit(edit(TextOp::delete(4, 1), Some(0)), SystemTime::UNIX_EPOCH)
            .expect("late edit");
        assert_eq!(applied.op, TextOp::delete(5, 1));
        assert_eq!(applied.revision, 2);
        assert_eq!(document.text(), "¡hell");
    }

    #[test]
    fn positions_are_checked_against_the_base_revision() {
        let mut document = doc("abc");
        document
            .submit(edit(TextOp::delete(0, 3), None), SystemTime::UNIX_EPOCH)
            .expect("clear");
        // Valid at revision 0 (3 chars) although the text is empty now: transforms to nothing.
        let applied = document
            .submit(
                edit(TextOp::insert(2, "x"), Some(0)),
                SystemTime::UNIX_EPOCH,
            )
            .expect("fits revision 0");
        assert_eq!(applied.op, TextOp::Noop);
        assert_eq!(applied.revision, 2, "a no-op still advances the revision");
        let err = document
            .submit(edit(TextOp::insert(1, "x"), None), SystemTime::UNIX_EPOCH)
            .expect_err("beyond the current text");
        assert!(matches!(err, Error::EditOutOfRange(_)), "{err}");
    }

    #[test]
    fn revisions_ahead_or_too_old_are_refused() {
        let mut document = doc("");
        let err = document
            .submit(
                edit(TextOp::insert(0, "x"), Some(1)),
                SystemTime::UNIX_EPOCH,
            )
            .expect_err("ahead");
        assert!(
            matches!(
                err,
                Error::RevisionAhead {
                    base: 1,
                    current: 0
                }
            ),
            "{err}"
        );
        for _ in 0..5 {
            document
                .submit(edit(TextOp::insert(0, "x"), None), SystemTime::UNIX_EPOCH)
                .expect("append");
        }
        // The log keeps 3 operations: revisions 3, 4, 5; base 2 is the oldest usable.
        document
            .submit(
                edit(TextOp::insert(0, "y"), Some(2)),
                SystemTime::UNIX_EPOCH,
            )
            .expect("base 2 is still transformable");
        let err = document
            .submit(
                edit(TextOp::insert(0, "y"), Some(2)),
                SystemTime::UNIX_EPOCH,
            )
            .expect_err("base 2 fell out of the log");
        assert!(
            matches!(err, Error::RevisionTooOld { base: 2, oldest: 3 }),
            "{err}"
        );
    }

    #[test]
    fn the_size_limit_is_enforced_in_chars() {
        let mut document = doc("");
        document
            .submit(
                edit(TextOp::insert(0, "世".repeat(20)), None),
                SystemTime::UNIX_EPOCH,
            )
            .expect("exactly at the limit");
        let err = document
            .submit(edit(TextOp::insert(0, "a"), None), SystemTime::UNIX_EPOCH)
            .expect_err("over the limit");
        assert!(
            matches!(
                err,
                Error::DocumentTooLarge {
                    chars: 21,
                    limit: 20
                }
            ),
            "{err}"
        );
        assert_eq!(document.revision(), 1, "a refused edit changes nothing");
    }
}
