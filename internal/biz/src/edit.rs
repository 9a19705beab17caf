//! Collaborative editing: operational transformation, the document model, the document
//! actors, and the storage trait they persist through.

#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod document;
mod hub;
#[cfg(test)]
mod hub_tests;
#[cfg(test)]
mod memory;
pub mod ot;
mod repo;
pub mod size;

pub use document::{
    AppliedEdit, Document, DocumentLimits, EditKind, EditRequest, LoggedOp, PreparedEdit,
};
pub use hub::{Delivery, DocumentUpdate, EditHub, EditLimits, EditSession};
pub use repo::{DocumentRepo, StoredDocument};
