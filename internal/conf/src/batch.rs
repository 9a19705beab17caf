//! `batch:` the limits of ProcessBatch.

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero};

/// `batch`: how large an item and a batch may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConf {
    /// Largest `data` of one item in bytes; larger items fail with a reason.
    pub max_item_bytes: usize,
    /// Most items one batch may hold (ids are remembered to find duplicates); more →
    /// `RESOURCE_EXHAUSTED`.
    pub max_items: usize,
    /// Most failures listed in `failed_ids` and `errors`; the counts stay exact beyond it. Keeps
    /// the result under the gRPC message size limit.
    pub max_reported_errors: usize,
}

impl Default for BatchConf {
    fn default() -> Self {
        Self {
            max_item_bytes: 1024 * 1024,
            max_items: 1_000_000,
            max_reported_errors: 10_000,
        }
    }
}

impl BatchConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            ("batch.max_item_bytes", self.max_item_bytes),
            ("batch.max_items", self.max_items),
        ])
    }
}
