//! How many bytes an update takes on the wire, bounded from above, so that the document actor
//! can refuse an edit (or a join) whose update could not be sent, before anything changes.
//!
//! The update is encoded by the transport (protobuf, outside biz); what matters here is only
//! that every string is carried once with a tag and a length prefix, and that everything else
//! (numbers, the timestamp, nested headers) has a fixed maximum. [`FRAMING_BYTES`] and
//! [`PER_STRING_BYTES`] are those maxima; a service test checks the bound against the real
//! encoding of the largest values every field can take.

/// Field tags, nested message headers and numbers (revision, timestamp, position, length,
/// base revision, the operation type) of one update at their largest: 117 bytes, rounded up.
pub const FRAMING_BYTES: usize = 128;

/// A string field's tag and length prefix at their largest (a 5-byte varint covers 4 GiB).
pub const PER_STRING_BYTES: usize = 6;

/// The strings one update carries, by length in bytes.
#[derive(Debug, Clone, Copy)]
pub struct UpdateShape<'a, U> {
    pub document_id: &'a str,
    /// The update's `user_id`.
    pub user_id: usize,
    /// The full text.
    pub text: usize,
    pub active_users: U,
    /// For an edit: the editor (the operation's `user_id`) and the operation's own text (the
    /// inserted text, or FORMAT's format name).
    pub edit: Option<(usize, usize)>,
}

impl<'a, U> UpdateShape<'a, U>
where
    U: IntoIterator<Item = &'a str>,
{
    /// An upper bound on the encoded size of an update of this shape.
    pub fn wire_bytes(self) -> usize {
        let users: usize = self
            .active_users
            .into_iter()
            .map(|user| PER_STRING_BYTES + user.len())
            .sum();
        // The operation repeats the document id.
        let edit = self
            .edit
            .map_or(0, |(editor, text)| editor + text + self.document_id.len());
        FRAMING_BYTES
            .saturating_add(self.document_id.len())
            .saturating_add(self.user_id)
            .saturating_add(self.text)
            .saturating_add(users)
            .saturating_add(edit)
    }
}
