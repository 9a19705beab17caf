//! What this crate's integration tests share.

pub(crate) mod postgres;
