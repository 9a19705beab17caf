//! Plain-text operational transformation over Unicode scalar values.
//!
//! An operation is a single insert, a single delete, or nothing. [`transform`]`(a, b)` rewrites
//! `a` so that it applies after `b` when both were made against the same text, such that
//! `apply(apply(s, a), transform(b, a)) == apply(apply(s, b), transform(a, b))` (TP1), which is
//! what makes every client converge.
//!
//! Two choices keep the result a single operation, as the wire format needs:
//! - inserts at the same position are ordered by their text (the smaller first), a tie-break
//!   both sides compute alike without knowing who is who;
//! - a delete that covers an insert's position swallows the insert ("delete wins"): the insert
//!   becomes a no-op and the delete grows to include the inserted text. Splitting the delete
//!   around the insert would need two operations.

use std::cmp::{max, min};

/// One edit of a text. Positions and lengths count `char`s, never bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextOp {
    /// Insert `text` before the char at `at`.
    Insert { at: usize, text: String },
    /// Delete `len` chars starting at `at`.
    Delete { at: usize, len: usize },
    /// Change nothing (an operation whose effect was cancelled by a concurrent one).
    Noop,
}

/// Why an operation does not fit a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtError {
    #[error("position {at} is beyond the end of the text ({len} chars)")]
    PositionOutOfRange { at: usize, len: usize },
    #[error("deleting {count} chars at {at} runs past the end of the text ({len} chars)")]
    DeleteOutOfRange { at: usize, count: usize, len: usize },
}

impl TextOp {
    /// An insert, or [`TextOp::Noop`] for empty text.
    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        let text = text.into();
        if text.is_empty() {
            Self::Noop
        } else {
            Self::Insert { at, text }
        }
    }

    /// A delete, or [`TextOp::Noop`] for zero length.
    pub fn delete(at: usize, len: usize) -> Self {
        if len == 0 {
            Self::Noop
        } else {
            Self::Delete { at, len }
        }
    }

    /// How many chars this operation adds to (positive) or removes from (negative) a text.
    pub fn len_delta(&self) -> i64 {
        match self {
            Self::Insert { text, .. } => to_i64(text.chars().count()),
            Self::Delete { len, .. } => -to_i64(*len),
            Self::Noop => 0,
        }
    }

    /// Checks that the operation fits a text of `len` chars.
    pub fn check(&self, len: usize) -> Result<(), OtError> {
        match *self {
            Self::Insert { at, .. } if at > len => Err(OtError::PositionOutOfRange { at, len }),
            Self::Delete { at, len: count }
                if at.checked_add(count).is_none_or(|end| end > len) =>
            {
                Err(OtError::DeleteOutOfRange { at, count, len })
            }
            _ => Ok(()),
        }
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Byte offset of the char at `at` in `text` (its length for `at` == char count).
fn byte_offset(text: &str, at: usize) -> usize {
    text.char_indices()
        .nth(at)
        .map_or(text.len(), |(offset, _)| offset)
}

/// The length in bytes of `text` after `op`, which must fit it ([`TextOp::check`]).
pub fn utf8_len_after(text: &str, op: &TextOp) -> usize {
    match op {
        TextOp::Insert { text: inserted, .. } => text.len() + inserted.len(),
        TextOp::Delete { at, len } => {
            let start = byte_offset(text, *at);
            let end = start + byte_offset(&text[start..], *len);
            text.len() - (end - start)
        }
        TextOp::Noop => text.len(),
    }
}

/// Applies `op` to `text` in place; `text_len` is its length in chars, kept by the caller so
/// that long documents are not recounted on every edit.
pub fn apply(text: &mut String, text_len: usize, op: &TextOp) -> Result<(), OtError> {
    op.check(text_len)?;
    match op {
        TextOp::Insert { at, text: inserted } => {
            let offset = byte_offset(text, *at);
            text.insert_str(offset, inserted);
        }
        TextOp::Delete { at, len } => {
            let start = byte_offset(text, *at);
            let end = start + byte_offset(&text[start..], *len);
            text.replace_range(start..end, "");
        }
        TextOp::Noop => {}
    }
    Ok(())
}

/// Rewrites `a` to apply after `b`, both made against the same text.
pub fn transform(a: &TextOp, b: &TextOp) -> TextOp {
    match (a, b) {
        (TextOp::Noop, _) => TextOp::Noop,
        (_, TextOp::Noop) => a.clone(),
        (
            TextOp::Insert { at, text },
            TextOp::Insert {
                at: other_at,
                text: other_text,
            },
        ) => {
            let goes_first = at < other_at || (at == other_at && text < other_text);
            if goes_first {
                a.clone()
            } else {
                TextOp::insert(at + other_text.chars().count(), text.clone())
            }
        }
        (TextOp::Insert { at, text }, TextOp::Delete { at: start, len }) => {
            let end = start + len;
            if at <= start {
                a.clone()
            } else if *at >= end {
                TextOp::insert(at - len, text.clone())
            } else {
                // The text around the insert is gone: delete wins.
                TextOp::Noop
            }
        }
        (TextOp::Delete { at: start, len }, TextOp::Insert { at, text }) => {
            let inserted = text.chars().count();
            let end = start + len;
            if at <= start {
                TextOp::delete(start + inserted, *len)
            } else if *at >= end {
                a.clone()
            } else {
                // Swallow the insert, matching the insert's transform into nothing.
                TextOp::delete(*start, len + inserted)
            }
        }
        (
            TextOp::Delete { at: start, len },
            TextOp::Delete {
                at: other_start,
                len: other_len,
            },
        ) => {
            let (end, other_end) = (start + len, other_start + other_len);
            if end <= *other_start {
                a.clone()
            } else if *start >= other_end {
                TextOp::delete(start - other_len, *len)
            } else {
                let overlap = min(end, other_end) - max(*start, *other_start);
                TextOp::delete(min(*start, *other_start), len - overlap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn applied(text: &str, op: &TextOp) -> String {
        let mut out = text.to_owned();
        apply(&mut out, text.chars().count(), op).expect("operation fits");
        out
    }

    #[test]
    fn apply_counts_chars_not_bytes() {
        let text = "héllo 世界 👋!";
        assert_eq!(applied(text, &TextOp::insert(7, "大")), "héllo 世大界 👋!");
        assert_eq!(applied(text, &TextOp::delete(1, 1)), "hllo 世界 👋!");
        assert_eq!(applied(text, &TextOp::delete(9, 1)), "héllo 世界 !");
        assert_eq!(applied(text, &TextOp::insert(11, "?")), "héllo 世界 👋!?");
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let mut text = "añb".to_owned();
        assert_eq!(
            apply(&mut text, 3, &TextOp::insert(4, "x")),
            Err(OtError::PositionOutOfRange { at: 4, len: 3 })
        );
        assert_eq!(
            apply(&mut text, 3, &TextOp::delete(2, 2)),
            Err(OtError::DeleteOutOfRange {
                at: 2,
                count: 2,
                len: 3
            })
        );
        assert_eq!(
            apply(&mut text, 3, &TextOp::delete(usize::MAX, 2)),
            Err(OtError::DeleteOutOfRange {
                at: usize::MAX,
                count: 2,
                len: 3
            })
        );
        assert_eq!(text, "añb");
    }

    /// Both orders of applying a concurrent pair give the same text.
    fn converges(s: &str, a: &TextOp, b: &TextOp) -> (String, String) {
        let left = applied(&applied(s, a), &transform(b, a));
        let right = applied(&applied(s, b), &transform(a, b));
        (left, right)
    }

    #[test]
    fn inserts_at_the_same_position_are_ordered_by_text() {
        let (a, b) = (TextOp::insert(1, "b"), TextOp::insert(1, "a"));
        let (left, right) = converges("xy", &a, &b);
        assert_eq!(left, "xaby");
        assert_eq!(right, "xaby");
    }

    #[test]
    fn overlapping_deletes_remove_the_union() {
        let (a, b) = (TextOp::delete(1, 3), TextOp::delete(2, 3));
        let (left, right) = converges("0123456", &a, &b);
        assert_eq!(left, "056");
        assert_eq!(right, "056");
        assert_eq!(
            transform(&TextOp::delete(2, 2), &TextOp::delete(1, 4)),
            TextOp::Noop
        );
    }

    #[test]
    fn a_delete_swallows_an_insert_inside_it() {
        let (a, b) = (TextOp::insert(3, "XY"), TextOp::delete(1, 4));
        assert_eq!(transform(&a, &b), TextOp::Noop);
        assert_eq!(transform(&b, &a), TextOp::delete(1, 6));
        let (left, right) = converges("0123456", &a, &b);
        assert_eq!(left, "056");
        assert_eq!(right, "056");
    }

    #[test]
    fn inserts_at_a_delete_boundary_survive() {
        for at in [1, 5] {
            let (a, b) = (TextOp::insert(at, "X"), TextOp::delete(1, 4));
            let (left, right) = converges("0123456", &a, &b);
            assert_eq!(left, "0X56", "insert at {at}");
            assert_eq!(right, "0X56", "insert at {at}");
        }
    }

    #[test]
    fn noop_is_neutral() {
        let op = TextOp::insert(2, "z");
        assert_eq!(transform(&op, &TextOp::Noop), op);
        assert_eq!(transform(&TextOp::Noop, &op), TextOp::Noop);
        assert_eq!(TextOp::insert(0, ""), TextOp::Noop);
        assert_eq!(TextOp::delete(3, 0), TextOp::Noop);
    }

    /// A document of a few multibyte and ASCII chars, and an operation that fits it.
    fn text_and_op() -> impl Strategy<Value = (String, TextOp, TextOp)> {
        let alphabet = prop::sample::select(vec!['a', 'b', 'é', '世', '👋', ' ']);
        prop::collection::vec(alphabet, 0..24).prop_flat_map(|chars| {
            let text: String = chars.into_iter().collect();
            let len = text.chars().count();
            (Just(text), op_for(len), op_for(len))
        })
    }

    fn op_for(len: usize) -> impl Strategy<Value = TextOp> {
        let insert = (0..=len, "[ab世👋]{0,3}").prop_map(|(at, text)| TextOp::insert(at, text));
        let delete = (0..=len)
            .prop_flat_map(move |at| (Just(at), 0..=len - at))
            .prop_map(|(at, n)| TextOp::delete(at, n));
        prop_oneof![insert, delete, Just(TextOp::Noop)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn transform_satisfies_tp1((text, a, b) in text_and_op()) {
            let (left, right) = converges(&text, &a, &b);
            prop_assert_eq!(left, right, "text {:?}, a {:?}, b {:?}", text, a, b);
        }

        #[test]
        fn transformed_ops_fit_the_text_they_follow((text, a, b) in text_and_op()) {
            let after_b = applied(&text, &b);
            prop_assert!(transform(&a, &b).check(after_b.chars().count()).is_ok());
        }

        #[test]
        fn utf8_len_after_is_the_length_of_the_result((text, a, _b) in text_and_op()) {
            prop_assert_eq!(utf8_len_after(&text, &a), applied(&text, &a).len());
        }
    }
}
