//! `CollaborativeEdit`: protobuf <-> the edit hub, and the per-stream loop.
//!
//! Each stream gets one task that reads the client's operations and forwards the document's
//! updates at the same time. Its output queue is small and the task waits on it, which is
//! this client's own back-pressure: while it waits, the document keeps going and, if the
//! client stays slow, the hub cuts the stream off with `RESOURCE_EXHAUSTED`.
//!
//! The output queue holds the hub's shared updates, not protobuf messages: an update becomes
//! a `pb::DocumentUpdate` (prost needs its own `String` of the text) only when tonic pulls it
//! to encode, and then lets go of its place in the stream's byte budget. So a stream holds
//! at most one copy of the text of its own, however far behind it is.

use futures_util::StreamExt as _;
use streamhub_api::streaming as pb;
use streamhub_biz::{
    auth::Caller,
    edit::{
        AppliedEdit, Delivery, DocumentUpdate, EditHub, EditKind, EditRequest, EditSession,
        ot::TextOp,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown, caller_of,
    stream::{ResponseStream, until_stopped},
    stream_identity::{IdField, IdentityRule, Ids},
    timestamp, to_status,
};

/// One document and one user per stream.
const DOCUMENT_STREAM: IdentityRule = IdentityRule {
    scope: IdField {
        name: "document_id",
        noun: "document",
    },
    user: IdField {
        name: "user_id",
        noun: "user",
    },
    default_scope: None,
};

/// Updates buffered between the stream task and tonic; they still count against the stream's
/// byte budget in the hub (`edit.subscriber_queue_bytes`).
const OUTBOUND_QUEUE: usize = 32;

/// An update on its way to the encoder.
#[derive(Debug)]
enum Outgoing {
    /// A join's snapshot (not queued in the hub, so counted nowhere).
    Snapshot(std::sync::Arc<DocumentUpdate>),
    /// A queued update; dropping it releases its bytes.
    Update(Delivery),
}

impl Outgoing {
    fn update(&self) -> &DocumentUpdate {
        match self {
            Self::Snapshot(update) => update,
            Self::Update(delivery) => delivery,
        }
    }
}

/// The CollaborativeEdit handler: the open documents plus the shutdown that ends every
/// editor's stream.
#[derive(Debug, Clone)]
pub(crate) struct EditHandlers {
    edits: EditHub,
    shutdown: Shutdown,
}

impl EditHandlers {
    pub(crate) fn new(edits: EditHub, shutdown: &Shutdown) -> Self {
        Self {
            edits,
            shutdown: shutdown.clone(),
        }
    }

    /// Starts serving one editor: its first message joins (or edits) a document.
    pub(crate) fn collaborative_edit(
        &self,
        request: Request<Streaming<pb::EditOperation>>,
    ) -> Result<Response<ResponseStream<pb::DocumentUpdate>>, Status> {
        let (outbound, updates) = mpsc::channel(OUTBOUND_QUEUE);
        let stream = EditStream {
            hub: self.edits.clone(),
            caller: caller_of(&request),
            stopping: self.shutdown.stopping.clone(),
            outbound,
        };
        // Ends when the client goes away (sends fail), when the client half-closes, or at
        // shutdown; tracked by the hub, so shutdown waits for it.
        self.edits.spawn_stream(stream.serve(request.into_inner()));
        // Converted as tonic pulls each item to encode it; the `Outgoing` (and its share of
        // the budget) is dropped as soon as its message exists.
        let messages =
            ReceiverStream::new(updates).map(|item| item.map(|out| update_to_pb(out.update())));
        Ok(Response::new(until_stopped(
            messages,
            self.shutdown.stopping.clone(),
        )))
    }
}

/// What one inbound message asks for, validated for shape (its identity is the stream's
/// rule, checked before).
#[derive(Debug)]
enum Incoming {
    Join,
    Edit(EditRequest),
}

fn non_negative(field: &str, value: i64) -> Result<usize, Status> {
    usize::try_from(value).map_err(|_| {
        Status::invalid_argument(format!("{field} must not be negative (got {value})"))
    })
}

impl TryFrom<pb::EditOperation> for Incoming {
    type Error = Status;

    fn try_from(op: pb::EditOperation) -> Result<Self, Status> {
        let position = non_negative("position", op.position.into())?;
        let length = non_negative("length", op.length.into())?;
        if let Some(base) = op.base_revision {
            non_negative("base_revision", base)?;
        }
        let kind = match op.operation_type.to_ascii_uppercase().as_str() {
            "JOIN" => {
                return Ok(Self::Join);
            }
            "INSERT" => EditKind::Insert,
            "DELETE" => EditKind::Delete,
            "FORMAT" => EditKind::Format,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown operation_type {other:?}; expected JOIN, INSERT, DELETE or FORMAT"
                )));
            }
        };
        let (text_op, format) = match kind {
            EditKind::Insert if op.content.is_empty() => {
                return Err(Status::invalid_argument("INSERT needs non-empty content"));
            }
            EditKind::Insert => (TextOp::insert(position, op.content), String::new()),
            EditKind::Delete => {
                let count = if length > 0 {
                    length
                } else {
                    op.content.chars().count()
                };
                if count == 0 {
                    return Err(Status::invalid_argument(
                        "DELETE needs length > 0 (or content, whose length is used)",
                    ));
                }
                (TextOp::delete(position, count), String::new())
            }
            EditKind::Format if op.content.is_empty() => {
                return Err(Status::invalid_argument(
                    "FORMAT needs content naming the format",
                ));
            }
            EditKind::Format => (TextOp::Noop, op.content),
        };
        Ok(Self::Edit(EditRequest {
            user_id: op.user_id,
            kind,
            op: text_op,
            format,
            base_revision: op.base_revision,
        }))
    }
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn applied_to_pb(document_id: &str, edit: &AppliedEdit) -> pb::EditOperation {
    let (position, length, content) = match &edit.op {
        TextOp::Insert { at, text } => (to_i32(*at), 0, text.clone()),
        TextOp::Delete { at, len } => (to_i32(*at), to_i32(*len), String::new()),
        TextOp::Noop => (0, 0, edit.format.clone()),
    };
    pb::EditOperation {
        user_id: edit.user_id.clone(),
        document_id: document_id.to_owned(),
        operation_type: edit.kind.as_str().to_owned(),
        position,
        content,
        base_revision: Some(edit.revision - 1),
        length,
    }
}

fn update_to_pb(update: &DocumentUpdate) -> pb::DocumentUpdate {
    pb::DocumentUpdate {
        document_id: update.document_id.clone(),
        user_id: update.user_id.clone(),
        content: update.content.to_string(),
        active_users: update.active_users.clone(),
        timestamp: Some(timestamp(update.timestamp)),
        revision: update.revision,
        operation: update
            .edit
            .as_ref()
            .map(|edit| applied_to_pb(&update.document_id, edit)),
    }
}

struct EditStream {
    hub: EditHub,
    /// Who the call authenticated as; the stream's user_id must be that user.
    caller: Caller,
    stopping: CancellationToken,
    outbound: mpsc::Sender<Result<Outgoing, Status>>,
}

impl EditStream {
    async fn serve(self, inbound: Streaming<pb::EditOperation>) {
        if let Err(status) = self.drive(inbound).await {
            let _ = self.outbound.send(Err(status)).await;
        }
    }

    async fn send(&self, update: Outgoing) -> Result<(), Status> {
        self.outbound
            .send(Ok(update))
            .await
            .map_err(|_| Status::cancelled("client went away"))
    }

    async fn drive(&self, mut inbound: Streaming<pb::EditOperation>) -> Result<(), Status> {
        let first = tokio::select! {
            message = inbound.message() => message?,
            () = self.stopping.cancelled() => return Err(to_status(streamhub_biz::Error::ShuttingDown)),
        };
        let Some(first) = first else {
            return Ok(());
        };
        // Identity before shape: a message that names no document is refused for that first.
        let ids = DOCUMENT_STREAM.first(
            &self.caller,
            Ids {
                scope: &first.document_id,
                user: &first.user_id,
            },
        )?;
        let (document_id, user_id) = (ids.scope.to_owned(), ids.user.to_owned());
        let first = Incoming::try_from(first)?;
        let mut session = self
            .hub
            .join(&document_id, &user_id)
            .await
            .map_err(to_status)?;
        if let Incoming::Edit(mut request) = first {
            user_id.clone_into(&mut request.user_id);
            session.submit(request).await.map_err(to_status)?;
        } else {
            self.send(Outgoing::Snapshot(session.snapshot())).await?;
        }
        loop {
            tokio::select! {
                // Updates first: a stream's own edits then never outrun its own reading, so
                // only a client that stops reading is cut off, not one that types fast.
                biased;
                () = self.stopping.cancelled() => {
                    return Err(to_status(streamhub_biz::Error::ShuttingDown));
                }
                update = session.next_update() => {
                    let update = update.map_err(to_status)?;
                    self.send(Outgoing::Update(update)).await?;
                }
                message = inbound.message() => {
                    let Some(message) = message? else {
                        // Half-close: deliver what is already queued, then leave with OK.
                        while let Some(update) = session.try_next_update() {
                            self.send(Outgoing::Update(update)).await?;
                        }
                        return Ok(());
                    };
                    DOCUMENT_STREAM.later(
                        &self.caller,
                        Ids {
                            scope: session.document_id(),
                            user: session.user_id(),
                        },
                        Ids {
                            scope: &message.document_id,
                            user: &message.user_id,
                        },
                    )?;
                    let mut incoming = Incoming::try_from(message)?;
                    if let Incoming::Edit(request) = &mut incoming {
                        // A later message may leave its user_id empty: it is the stream's.
                        session.user_id().clone_into(&mut request.user_id);
                    }
                    self.handle(&mut session, incoming).await?;
                }
            }
        }
    }

    async fn handle(&self, session: &mut EditSession, incoming: Incoming) -> Result<(), Status> {
        match incoming {
            Incoming::Join => {
                // A JOIN on an open stream asks for a fresh snapshot: join anew (the old
                // membership leaves when it is replaced).
                let fresh = self
                    .hub
                    .join(session.document_id(), session.user_id())
                    .await
                    .map_err(to_status)?;
                *session = fresh;
                self.send(Outgoing::Snapshot(session.snapshot())).await
            }
            Incoming::Edit(request) => session.submit(request).await.map_err(to_status),
        }
    }
}

impl std::fmt::Debug for EditStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EditStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use prost::Message as _;
    use streamhub_biz::edit::size::UpdateShape;

    use super::*;
    use crate::stream_identity::MAX_ID_BYTES;

    /// biz refuses updates by a bound on their size; the bound must hold for the real
    /// encoding with every field at its largest.
    #[test]
    fn the_biz_bound_covers_the_encoded_update() {
        let id = "d".repeat(MAX_ID_BYTES);
        let users: Vec<String> = (0..5)
            .map(|i| format!("{i}").repeat(MAX_ID_BYTES))
            .collect();
        let far = SystemTime::UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
        let ops = [
            (
                EditKind::Insert,
                TextOp::insert(usize::MAX, "😀".repeat(300)),
                String::new(),
            ),
            (
                EditKind::Delete,
                TextOp::delete(usize::MAX, usize::MAX),
                String::new(),
            ),
            (EditKind::Format, TextOp::Noop, "bold".repeat(64)),
        ];
        for (kind, op, format) in ops {
            let op_text = match &op {
                TextOp::Insert { text, .. } => text.len(),
                _ => format.len(),
            };
            let update = DocumentUpdate {
                document_id: id.clone(),
                user_id: users[0].clone(),
                content: "世".repeat(1000).into(),
                active_users: users.clone(),
                revision: i64::MAX,
                edit: Some(AppliedEdit {
                    revision: i64::MAX,
                    user_id: users[1].clone(),
                    kind,
                    op,
                    format,
                    applied_at: far,
                }),
                timestamp: far,
            };
            let encoded = update_to_pb(&update).encoded_len();
            let bound = UpdateShape {
                document_id: &id,
                user_id: MAX_ID_BYTES,
                text: update.content.len(),
                active_users: users.iter().map(String::as_str),
                edit: Some((MAX_ID_BYTES, op_text)),
            }
            .wire_bytes();
            assert!(
                encoded <= bound,
                "{kind:?}: encoded {encoded} bytes, bound {bound}"
            );
            // The framing allowance is not wildly generous either.
            assert!(
                bound - encoded < 128,
                "{kind:?}: encoded {encoded}, bound {bound}"
            );
        }
    }
}
