//! The deterministic rules of ProcessBatch: which items of a batch are valid, and why the
//! others are not.
//!
//! An item is valid when its id is non-empty, at most [`MAX_ID_BYTES`] bytes and not used by an
//! earlier item of the batch; its data is at most `max_item_bytes`; and its type is `json`
//! (data parses as JSON), `text` (data is UTF-8) or `binary` (data non-empty). The type is
//! matched ignoring ASCII case. The first rule an item breaks is its reason. A failing item is
//! counted and listed; it never ends the stream. Ids are remembered to find duplicates, so a
//! batch is capped at `max_items` items to bound that memory.

use std::collections::HashSet;

use crate::{Error, Result};

/// Longest accepted item id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest part of a client's string quoted back in a reason, in bytes.
const MAX_QUOTED_BYTES: usize = 32;
/// Longest parser message quoted in a reason, in bytes.
const MAX_DETAIL_BYTES: usize = 64;

/// The limits of one batch (from the `batch:` config).
#[derive(Debug, Clone)]
pub struct BatchLimits {
    pub max_item_bytes: usize,
    pub max_items: usize,
    /// Most failures listed in the outcome; the counts stay exact beyond it.
    pub max_reported_errors: usize,
}

/// One item as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub data: &'a [u8],
}

/// One failed item: its id and a reason a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The item's id; an id over [`MAX_ID_BYTES`] is cut to that length (ending with `…`).
    pub id: String,
    pub reason: String,
}

/// What a finished batch amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Failures in arrival order, at most `max_reported_errors` of them.
    pub errors: Vec<ItemError>,
}

/// The running state of one batch.
#[derive(Debug)]
pub struct Batch {
    limits: BatchLimits,
    seen: HashSet<String>,
    outcome: BatchOutcome,
}

impl Batch {
    pub fn new(limits: BatchLimits) -> Self {
        Self {
            limits,
            seen: HashSet::new(),
            outcome: BatchOutcome::default(),
        }
    }

    /// Judges `item` and counts it. Fails only with [`Error::BatchTooLarge`] when the batch
    /// already holds `max_items` items.
    pub fn process(&mut self, item: Item<'_>) -> Result<()> {
        if self.outcome.processed >= self.limits.max_items as u64 {
            return Err(Error::BatchTooLarge {
                limit: self.limits.max_items,
            });
        }
        self.outcome.processed += 1;
        match self.judge(item) {
            Ok(()) => self.outcome.succeeded += 1,
            Err(reason) => {
                self.outcome.failed += 1;
                if self.outcome.errors.len() < self.limits.max_reported_errors {
                    self.outcome.errors.push(ItemError {
                        id: cut(item.id, MAX_ID_BYTES),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    fn judge(&mut self, item: Item<'_>) -> Result<(), String> {
        if item.id.is_empty() {
            return Err("id is empty".to_owned());
        }
        if item.id.len() > MAX_ID_BYTES {
            return Err(format!(
                "id is {} bytes, longer than {MAX_ID_BYTES}",
                item.id.len()
            ));
        }
        // Every well-formed id claims its name, even when its item fails later: ids are unique
        // within the batch whatever became of the first one.
        if !self.seen.insert(item.id.to_owned()) {
            return Err("duplicate id".to_owned());
        }
        if item.data.len() > self.limits.max_item_bytes {
            return Err(format!(
                "data is {} bytes, over the limit of {}",
                item.data.len(),
                self.limits.max_item_bytes
            ));
        }
        if item.kind.eq_ignore_ascii_case("json") {
            serde_json::from_slice::<serde::de::IgnoredAny>(item.data).map_err(|err| {
                format!(
                    "data is not valid JSON: {}",
                    cut(&err.to_string(), MAX_DETAIL_BYTES)
                )
            })?;
        } else if item.kind.eq_ignore_ascii_case("text") {
            std::str::from_utf8(item.data).map_err(|err| {
                format!(
                    "data is not valid UTF-8 text: invalid byte at offset {}",
                    err.valid_up_to()
                )
            })?;
        } else if item.kind.eq_ignore_ascii_case("binary") {
            if item.data.is_empty() {
                return Err("binary data is empty".to_owned());
            }
        } else if item.kind.is_empty() {
            return Err("type is empty; use json, text or binary".to_owned());
        } else {
            return Err(format!(
                "unknown type '{}'; use json, text or binary",
                cut(item.kind, MAX_QUOTED_BYTES)
            ));
        }
        Ok(())
    }

    /// The outcome so far.
    pub fn outcome(&self) -> &BatchOutcome {
        &self.outcome
    }

    /// Ends the batch.
    pub fn finish(self) -> BatchOutcome {
        self.outcome
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BatchLimits {
        BatchLimits {
            max_item_bytes: 16,
            max_items: 100,
            max_reported_errors: 100,
        }
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let long_id = "i".repeat(MAX_ID_BYTES + 1);
        let max_id = "m".repeat(MAX_ID_BYTES);
        // (id, type, data, expected reason or None when valid)
        let cases: &[(&str, &str, &[u8], Option<&str>)] = &[
            ("j1", "json", br#"{"a":[1,2]}"#, None),
            ("j2", "JSON", b"42", None),
            (
                "j3",
                "json",
                b"{\"a\":",
                Some("data is not valid JSON: EOF while parsing"),
            ),
            (
                "j4",
                "json",
                b"",
                Some("data is not valid JSON: EOF while parsing"),
            ),
            (
                "j5",
                "json",
                b"[1] x",
                Some("data is not valid JSON: trailing characters"),
            ),
            ("t1", "text", "héllo".as_bytes(), None),
            ("t2", "text", b"", None),
            (
                "t3",
                "text",
                b"ok\xff",
                Some("data is not valid UTF-8 text: invalid byte at offset 2"),
            ),
            ("b1", "binary", b"\x00\x01", None),
            ("b2", "binary", b"", Some("binary data is empty")),
            (
                "x1",
                "xml",
                b"<a/>",
                Some("unknown type 'xml'; use json, text or binary"),
            ),
            (
                "x2",
                "",
                b"a",
                Some("type is empty; use json, text or binary"),
            ),
            ("", "text", b"a", Some("id is empty")),
            (
                &long_id,
                "text",
                b"a",
                Some("id is 129 bytes, longer than 128"),
            ),
            (&max_id, "text", b"a", None),
            ("j1", "text", b"a", Some("duplicate id")),
            ("j3", "text", b"a", Some("duplicate id")),
            (
                "big",
                "binary",
                &[7; 17],
                Some("data is 17 bytes, over the limit of 16"),
            ),
            ("fits", "binary", &[7; 16], None),
        ];
        let mut batch = Batch::new(limits());
        for (id, kind, data, _) in cases {
            batch
                .process(Item { id, kind, data })
                .expect("within the item limit");
        }
        let outcome = batch.finish();
        let expected: Vec<(&str, &str)> = cases
            .iter()
            .filter_map(|(id, _, _, reason)| reason.map(|reason| (*id, reason)))
            .collect();
        assert_eq!(outcome.processed, cases.len() as u64);
        assert_eq!(outcome.failed, expected.len() as u64);
        assert_eq!(outcome.succeeded + outcome.failed, outcome.processed);
        assert_eq!(outcome.errors.len(), expected.len());
        for (error, (id, reason)) in outcome.errors.iter().zip(&expected) {
            if id.len() > MAX_ID_BYTES {
                assert_eq!(error.id, format!("{}…", &id[..MAX_ID_BYTES]));
            } else {
                assert_eq!(error.id, *id);
            }
            assert!(
                error.reason.starts_with(reason),
                "{id}: {:?} should start with {reason:?}",
                error.reason
            );
        }
    }

    #[test]
    fn quoted_client_strings_are_bounded() {
        let mut batch = Batch::new(limits());
        let kind = "é".repeat(100);
        batch
            .process(Item {
                id: "a",
                kind: &kind,
                data: b"x",
            })
            .expect("ok");
        let reason = &batch.outcome().errors[0].reason;
        assert!(reason.len() < 100, "{reason}");
        assert!(reason.contains('…'), "{reason}");
    }

    #[test]
    fn the_item_limit_ends_the_batch_and_the_report_limit_keeps_counts_exact() {
        let mut batch = Batch::new(BatchLimits {
            max_item_bytes: 16,
            max_items: 5,
            max_reported_errors: 2,
        });
        for n in 0..5 {
            batch
                .process(Item {
                    id: &n.to_string(),
                    kind: "nope",
                    data: b"",
                })
                .expect("within the limit");
        }
        let err = batch
            .process(Item {
                id: "6",
                kind: "text",
                data: b"",
            })
            .expect_err("a sixth item");
        assert!(matches!(err, Error::BatchTooLarge { limit: 5 }), "{err}");
        let outcome = batch.finish();
        assert_eq!((outcome.processed, outcome.failed), (5, 5));
        let ids: Vec<&str> = outcome.errors.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["0", "1"]);
    }

    #[test]
    fn the_same_items_always_get_the_same_verdicts() {
        let run = || {
            let mut batch = Batch::new(limits());
            for n in 0..50 {
                let data = if n % 3 == 0 {
                    b"{".as_slice()
                } else {
                    b"{}".as_slice()
                };
                batch
                    .process(Item {
                        id: &(n % 40).to_string(),
                        kind: "json",
                        data,
                    })
                    .expect("ok");
            }
            batch.finish()
        };
        let first = run();
        assert_eq!(first, run());
        assert_eq!(
            first.failed,
            17 + 10 - 3,
            "17 bad JSON, 10 duplicates of which 3 also bad JSON"
        );
    }
}
