//! [`EditHub`]: the open documents, one actor task each.
//!
//! An actor owns its document's text, revision, operation log and subscribers, so edits to one
//! document are serialised without a global lock while different documents proceed in
//! parallel. The hub's map (a std mutex, never held across an await) only finds or starts
//! actors. An actor loads its document on start, persists every edit before broadcasting it,
//! and stops when its last subscriber leaves, when a write fails (so the next join reloads
//! what is durable), or when the server shuts down.
//!
//! Stopping: an actor closes its queue and then receives until the queue is drained, so a
//! command whose sender got in just before the close (a join that found the actor in the map
//! just as it stopped for lack of members) is still seen. Its reply is dropped, which tells
//! the joiner to start over on a fresh actor; the editors of a document that stops for any
//! other reason learn why from [`EditSession`] (shutting down, or the document not saved).
//!
//! Queues: each actor's command queue is bounded and its senders wait (they are the editing
//! streams themselves, so a busy document slows its own editors only). Each subscriber's update
//! queue is bounded twice and never awaited: in updates (`subscriber_queue`, how far behind a
//! stream may fall) and in bytes (`subscriber_queue_bytes`, what it may pin, counted until the
//! stream hands an update to its encoder: see [`Delivery`]). A subscriber over either bound is
//! cut off, so that one slow reader never holds up the document nor holds more than its
//! budget. Updates share their text (`Arc<str>`) between subscribers: a queued update costs a
//! subscriber its size, but the memory of a revision's text exists once.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::SystemTime,
};

use tokio::sync::{mpsc, oneshot};

use super::{
    document::{AppliedEdit, Document, DocumentLimits, EditRequest, PreparedEdit},
    repo::DocumentRepo,
    size::UpdateShape,
};
use crate::{Error, Lifecycle, Result};

/// Bounds of collaborative editing, from the `edit` config section.
#[derive(Debug, Clone, Copy)]
pub struct EditLimits {
    pub document: DocumentLimits,
    /// Documents open at once (`edit.max_open_documents`).
    pub max_open_documents: usize,
    /// Updates queued per subscriber before it is cut off (`edit.subscriber_queue`).
    pub subscriber_queue: usize,
    /// Bytes of updates (by their size on the wire) a subscriber may have waiting before it is
    /// cut off (`edit.subscriber_queue_bytes`). A subscriber with nothing waiting always takes
    /// the next update, however large, so this never cuts off a stream that keeps up.
    pub subscriber_queue_bytes: usize,
    /// Largest update that can be sent (`server.grpc.max_encoding_message_size`): an edit or
    /// a join whose update would be larger is refused before anything changes.
    pub max_update_bytes: usize,
}

/// What a subscriber receives: the document after a change, or after presence changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUpdate {
    pub document_id: String,
    /// Who caused the update (the editor, or the user who joined or left).
    pub user_id: String,
    pub content: Arc<str>,
    /// Sorted, without duplicates.
    pub active_users: Vec<String>,
    pub revision: i64,
    /// The edit as applied; `None` for snapshots and presence changes.
    pub edit: Option<AppliedEdit>,
    pub timestamp: SystemTime,
}

impl DocumentUpdate {
    /// An upper bound on its encoded size: what it costs the queue it waits in.
    pub fn wire_bytes(&self) -> usize {
        UpdateShape {
            document_id: &self.document_id,
            user_id: self.user_id.len(),
            text: self.content.len(),
            active_users: self.active_users.iter().map(String::as_str),
            edit: self
                .edit
                .as_ref()
                .map(|edit| (edit.user_id.len(), edit.op_text_bytes())),
        }
        .wire_bytes()
    }
}

/// An update taken from a session's queue. It keeps counting against the session's byte
/// budget until dropped, so a stream should drop it when the update has been handed to the
/// encoder, not when it was merely moved to another queue.
#[derive(Debug)]
pub struct Delivery {
    update: Arc<DocumentUpdate>,
    bytes: usize,
    queued: Arc<AtomicUsize>,
}

impl Delivery {
    pub fn update(&self) -> &Arc<DocumentUpdate> {
        &self.update
    }
}

impl std::ops::Deref for Delivery {
    type Target = DocumentUpdate;

    fn deref(&self) -> &DocumentUpdate {
        &self.update
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An update in a subscriber's queue with the size it was counted at.
type Queued = (Arc<DocumentUpdate>, usize);

/// The answer to an edit: applied and persisted, or why not.
type Reply = oneshot::Sender<Result<()>>;

/// Most queued edits committed in one transaction.
const GROUP_COMMIT: usize = 64;

/// Commands to a document actor; each waits for its answer.
#[derive(Debug)]
enum Command {
    Join {
        user_id: String,
        reply: oneshot::Sender<Result<Joined>>,
    },
    Submit {
        request: EditRequest,
        reply: Reply,
    },
    Leave {
        subscriber: u64,
    },
}

#[derive(Debug)]
struct Joined {
    subscriber: u64,
    snapshot: Arc<DocumentUpdate>,
    updates: mpsc::Receiver<Queued>,
    queued_bytes: Arc<AtomicUsize>,
    ended: Arc<OnceLock<Ended>>,
}

/// Why the document ended a subscription, set before its update queue closes. Unset when the
/// queue closes means the server is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The subscriber fell too far behind.
    CutOff,
    /// A write failed; the document was closed so the next join reloads what is durable.
    /// `store_unavailable`: the store could not be reached, so a later try may succeed.
    NotSaved { store_unavailable: bool },
}

/// A running actor as the hub's map knows it.
#[derive(Debug, Clone)]
struct ActorHandle {
    generation: u64,
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
struct HubInner {
    actors: Mutex<HashMap<String, ActorHandle>>,
    next_generation: AtomicU64,
    /// Subscribers cut off as slow consumers since start.
    cut_offs: AtomicU64,
    repo: Arc<dyn DocumentRepo>,
    limits: EditLimits,
    lifecycle: Lifecycle,
}

/// The open documents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EditHub {
    inner: Arc<HubInner>,
}

/// Capacity of an actor's command queue.
const COMMAND_QUEUE: usize = 256;

/// How often `join` starts over when it meets an actor that was just stopping. Each miss
/// means an actor stopped meanwhile, so running out takes a document that keeps closing.
const JOIN_ATTEMPTS: usize = 64;

impl EditHub {
    /// A hub whose actors (and streams) run on `lifecycle` and stop when shutdown starts.
    pub fn new(repo: Arc<dyn DocumentRepo>, limits: EditLimits, lifecycle: &Lifecycle) -> Self {
        Self {
            inner: Arc::new(HubInner {
                actors: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(0),
                cut_offs: AtomicU64::new(0),
                repo,
                limits,
                lifecycle: lifecycle.clone(),
            }),
        }
    }

    /// Runs `task`, which serves one stream of this hub's documents, on the hub's task
    /// tracker: shutdown waits for it like for the hub's own tasks.
    pub fn spawn_stream<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.lifecycle.spawn(task);
    }

    /// Number of documents open now.
    pub fn open_documents(&self) -> usize {
        self.inner.actors().len()
    }

    /// Subscribers cut off for reading too slowly since start, for metrics.
    pub fn slow_consumers_cut_off(&self) -> u64 {
        self.inner.cut_offs.load(Ordering::Relaxed)
    }

    /// Subscribes `user_id` to `document_id` (creating the document if it does not exist).
    pub async fn join(&self, document_id: &str, user_id: &str) -> Result<EditSession> {
        for _ in 0..JOIN_ATTEMPTS {
            let actor = self.actor_for(document_id)?;
            let (reply, answer) = oneshot::channel();
            let command = Command::Join {
                user_id: user_id.to_owned(),
                reply,
            };
            if actor.commands.send(command).await.is_err() {
                // The actor stopped between lookup and send; start a fresh one.
                self.inner.forget(document_id, actor.generation);
                continue;
            }
            let Ok(joined) = answer.await else {
                // The actor stopped with our command still queued (for lack of members, or
                // after a failed write): start over on a fresh one, which loads the document
                // as stored, unless the server is shutting down (`actor_for` says so).
                self.inner.forget(document_id, actor.generation);
                continue;
            };
            let joined = joined?;
            return Ok(EditSession {
                document_id: document_id.to_owned(),
                user_id: user_id.to_owned(),
                subscriber: joined.subscriber,
                commands: actor.commands,
                snapshot: joined.snapshot,
                updates: joined.updates,
                queued_bytes: joined.queued_bytes,
                ended: joined.ended,
                lifecycle: self.inner.lifecycle.clone(),
            });
        }
        if self.inner.lifecycle.is_stopping() {
            return Err(Error::ShuttingDown);
        }
        Err(Error::DocumentKeptClosing {
            document_id: document_id.to_owned(),
        })
    }

    /// The running actor of `document_id`, started if there is none.
    fn actor_for(&self, document_id: &str) -> Result<ActorHandle> {
        if self.inner.lifecycle.is_stopping() {
            return Err(Error::ShuttingDown);
        }
        let mut actors = self.inner.actors();
        if let Some(actor) = actors.get(document_id) {
            return Ok(actor.clone());
        }
        let limit = self.inner.limits.max_open_documents;
        if actors.len() >= limit {
            return Err(Error::TooManyDocuments { limit });
        }
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let actor = ActorHandle {
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
            commands,
        };
        actors.insert(document_id.to_owned(), actor.clone());
        drop(actors);
        let inner = Arc::clone(&self.inner);
        let id = document_id.to_owned();
        let generation = actor.generation;
        self.inner
            .lifecycle
            .spawn(async move { run_actor(inner, id, generation, queue).await });
        Ok(actor)
    }
}

impl HubInner {
    fn actors(&self) -> MutexGuard<'_, HashMap<String, ActorHandle>> {
        // A panic while holding this lock cannot leave the map half-updated: every critical
        // section is a single insert, remove or lookup.
        crate::mutex::lock(&self.actors)
    }

    /// Removes `id`'s entry if it still belongs to actor `generation`.
    fn forget(&self, id: &str, generation: u64) {
        let mut actors = self.actors();
        if actors.get(id).is_some_and(|a| a.generation == generation) {
            actors.remove(id);
        }
    }
}

/// One stream's membership of a document.
#[derive(Debug)]
pub struct EditSession {
    document_id: String,
    user_id: String,
    subscriber: u64,
    commands: mpsc::Sender<Command>,
    snapshot: Arc<DocumentUpdate>,
    updates: mpsc::Receiver<Queued>,
    /// Bytes of updates this session holds: queued, or taken and not yet dropped.
    queued_bytes: Arc<AtomicUsize>,
    ended: Arc<OnceLock<Ended>>,
    /// Owns the task that delivers a leave the busy actor could not take at once.
    lifecycle: Lifecycle,
}

impl EditSession {
    pub fn document_id(&self) -> &str {
        &self.document_id
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The document as it was when this session joined.
    pub fn snapshot(&self) -> Arc<DocumentUpdate> {
        Arc::clone(&self.snapshot)
    }

    /// Applies `request` and returns once it is persisted and broadcast (the session's own
    /// copy arrives through [`EditSession::next_update`]).
    pub async fn submit(&self, request: EditRequest) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let sent = self.commands.send(Command::Submit { request, reply }).await;
        match sent {
            Ok(()) => answer.await.map_err(|_| self.gone())?,
            Err(_) => Err(self.gone()),
        }
    }

    /// Why the document no longer answers this session.
    fn gone(&self) -> Error {
        match self.ended.get() {
            Some(Ended::CutOff) => Error::EditorTooSlow,
            Some(Ended::NotSaved { store_unavailable }) => Error::DocumentNotSaved {
                document_id: self.document_id.clone(),
                store_unavailable: *store_unavailable,
            },
            None => Error::ShuttingDown,
        }
    }

    /// An update already queued, without waiting.
    pub fn try_next_update(&mut self) -> Option<Delivery> {
        let queued = self.updates.try_recv().ok()?;
        Some(self.delivery(queued))
    }

    fn delivery(&self, (update, bytes): Queued) -> Delivery {
        Delivery {
            update,
            bytes,
            queued: Arc::clone(&self.queued_bytes),
        }
    }

    /// The next update, or why there is none: [`Error::EditorTooSlow`] when this session was
    /// cut off, [`Error::DocumentNotSaved`] when a write failed and the document closed,
    /// [`Error::ShuttingDown`] when the server is stopping.
    pub async fn next_update(&mut self) -> Result<Delivery> {
        match self.updates.recv().await {
            Some(queued) => Ok(self.delivery(queued)),
            None => Err(self.gone()),
        }
    }
}

impl Drop for EditSession {
    fn drop(&mut self) {
        let leave = Command::Leave {
            subscriber: self.subscriber,
        };
        if let Err(mpsc::error::TrySendError::Full(leave)) = self.commands.try_send(leave) {
            // The actor is busy: hand the leave to a task so presence is still updated.
            let commands = self.commands.clone();
            let stopping = self.lifecycle.stopping().clone();
            self.lifecycle.spawn(async move {
                tokio::select! {
                    _ = commands.send(leave) => {}
                    () = stopping.cancelled() => {}
                }
            });
        }
    }
}

/// A subscriber as the actor keeps it.
#[derive(Debug)]
struct Subscriber {
    user_id: String,
    updates: mpsc::Sender<Queued>,
    /// Shared with the session, which subtracts what it has let go of.
    queued_bytes: Arc<AtomicUsize>,
    ended: Arc<OnceLock<Ended>>,
}

/// The state an actor owns.
#[derive(Debug)]
struct Actor {
    id: String,
    document: Document,
    /// The text and revision subscribers have been told about. During a group commit the
    /// document runs ahead of them; each broadcast must pair an edit with the text and
    /// revision right after it, or clients would base their next edit on a wrong pair.
    content: Arc<str>,
    revision: i64,
    subscribers: BTreeMap<u64, Subscriber>,
    next_subscriber: u64,
    inner: Arc<HubInner>,
}

async fn run_actor(
    inner: Arc<HubInner>,
    id: String,
    generation: u64,
    mut queue: mpsc::Receiver<Command>,
) {
    let limits = inner.limits.document;
    let loaded = inner.repo.load(&id, limits.op_log).await;
    let document = match loaded {
        Ok(Some(stored)) => Document::new(stored.text, stored.revision, stored.recent, limits),
        Ok(None) => Document::new(String::new(), 0, Vec::new(), limits),
        Err(err) => {
            tracing::error!(document = %id, %err, "cannot load document");
            inner.forget(&id, generation);
            queue.close();
            // Answered rather than dropped: a dropped join would retry into the same failure.
            while let Some(command) = queue.recv().await {
                if let Command::Join { reply, .. } = command {
                    let _ = reply.send(Err(err.again()));
                }
            }
            return;
        }
    };
    let mut actor = Actor {
        content: Arc::from(document.text()),
        revision: document.revision(),
        id,
        document,
        subscribers: BTreeMap::new(),
        next_subscriber: 0,
        inner: Arc::clone(&inner),
    };
    loop {
        let command = tokio::select! {
            biased;
            () = inner.lifecycle.stopping().cancelled() => break,
            command = queue.recv() => command,
        };
        let Some(command) = command else { break };
        let handled = match command {
            Command::Submit { request, reply } => {
                let mut edits = vec![(request, reply)];
                let mut next = None;
                while edits.len() < GROUP_COMMIT {
                    match queue.try_recv() {
                        Ok(Command::Submit { request, reply }) => edits.push((request, reply)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                match actor.submit_all(edits).await {
                    Ok(()) => match next {
                        Some(command) => actor.handle(command).await,
                        None => Ok(()),
                    },
                    Err(err) => Err(err),
                }
            }
            other => actor.handle(other).await,
        };
        if let Err(err) = handled {
            // Storage failed after the edit was applied in memory: drop this copy of the
            // document so the next join reloads what is durable, and tell its editors why.
            tracing::error!(document = %actor.id, %err, "closing document after a storage failure");
            let store_unavailable = matches!(err, Error::StorageUnavailable(_));
            for subscriber in actor.subscribers.values() {
                let _ = subscriber.ended.set(Ended::NotSaved { store_unavailable });
            }
            break;
        }
        if actor.subscribers.is_empty() {
            let mut actors = inner.actors();
            // Stop only with nothing queued; a command queued after this check meets a
            // closed queue and its sender retries with a new actor.
            if queue.is_empty() {
                if actors
                    .get(&actor.id)
                    .is_some_and(|a| a.generation == generation)
                {
                    actors.remove(&actor.id);
                }
                queue.close();
                break;
            }
        }
    }
    inner.forget(&actor.id, generation);
    queue.close();
    // Ends every subscription; each session reads why from its `ended`.
    drop(actor);
    // `recv` (unlike `try_recv`) also waits for senders that were admitted before the close
    // and have not pushed yet; a command pushed after the last look would keep its reply
    // pending for as long as its sender lives. Dropping a reply is the answer: a join starts
    // over on a fresh actor, an edit learns from its session why the document ended.
    while let Some(command) = queue.recv().await {
        drop(command);
    }
}

impl Actor {
    /// Handles one command. An error means the actor must stop (storage failed).
    async fn handle(&mut self, command: Command) -> Result<()> {
        match command {
            Command::Join { user_id, reply } => {
                // The joiner's snapshot and everyone's presence update carry the whole text
                // and the members with the joiner among them: both must be sendable.
                let bytes = UpdateShape {
                    document_id: &self.id,
                    user_id: self.longest_user_id(Some(&user_id)),
                    text: self.content.len(),
                    active_users: self.member_ids(Some(&user_id)),
                    edit: None,
                }
                .wire_bytes();
                let limit = self.inner.limits.max_update_bytes;
                if bytes > limit {
                    let _ = reply.send(Err(Error::DocumentTooLargeToSend {
                        document_id: self.id.clone(),
                        bytes,
                        limit,
                    }));
                    return Ok(());
                }
                let (updates, receiver) = mpsc::channel(self.inner.limits.subscriber_queue);
                let ended = Arc::new(OnceLock::new());
                let queued_bytes = Arc::new(AtomicUsize::new(0));
                let subscriber = self.next_subscriber;
                self.next_subscriber += 1;
                self.subscribers.insert(
                    subscriber,
                    Subscriber {
                        user_id: user_id.clone(),
                        updates,
                        queued_bytes: Arc::clone(&queued_bytes),
                        ended: Arc::clone(&ended),
                    },
                );
                let snapshot = self.update(&user_id, None);
                let joined = Joined {
                    subscriber,
                    snapshot: Arc::clone(&snapshot),
                    updates: receiver,
                    queued_bytes,
                    ended,
                };
                if reply.send(Ok(joined)).is_err() {
                    self.subscribers.remove(&subscriber);
                    return Ok(());
                }
                self.broadcast_except(subscriber, snapshot);
                Ok(())
            }
            Command::Submit { request, reply } => self.submit_all(vec![(request, reply)]).await,
            Command::Leave { subscriber } => {
                if let Some(gone) = self.subscribers.remove(&subscriber) {
                    let update = self.update(&gone.user_id, None);
                    self.broadcast_except(u64::MAX, update);
                }
                Ok(())
            }
        }
    }

    /// Applies `edits` in order and persists every accepted one in a single transaction
    /// (group commit: edits that queued up while the last commit ran share the next), then
    /// broadcasts each and answers its author. An error means storage failed.
    async fn submit_all(&mut self, edits: Vec<(EditRequest, Reply)>) -> Result<()> {
        let now = SystemTime::now();
        let mut accepted = Vec::with_capacity(edits.len());
        for (request, reply) in edits {
            let checked = self
                .document
                .prepare(request)
                .and_then(|prepared| self.check_sendable(prepared));
            match checked {
                Ok(prepared) => {
                    let applied = self.document.apply(prepared, now);
                    let content: Arc<str> = Arc::from(self.document.text());
                    accepted.push((applied, content, reply));
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let applied: Vec<AppliedEdit> = accepted.iter().map(|(a, _, _)| a.clone()).collect();
        let keep = self.inner.limits.document.op_log;
        let persisted = self
            .inner
            .repo
            .append(&self.id, self.document.text(), &applied, keep)
            .await;
        if let Err(err) = persisted {
            // The detail goes to the log (by the caller); the authors hear what it means.
            let store_unavailable = matches!(err, Error::StorageUnavailable(_));
            for (_, _, reply) in accepted {
                let _ = reply.send(Err(Error::DocumentNotSaved {
                    document_id: self.id.clone(),
                    store_unavailable,
                }));
            }
            return Err(err);
        }
        for (applied, content, reply) in accepted {
            self.content = content;
            self.revision = applied.revision;
            let user_id = applied.user_id.clone();
            let update = self.update(&user_id, Some(applied));
            self.broadcast_except(u64::MAX, update);
            let _ = reply.send(Ok(()));
        }
        Ok(())
    }

    /// Refuses `prepared` if its update could not be sent. The bound also covers every
    /// presence update that can follow with the text it leaves (a leave's update names one
    /// of these members, among fewer of them), so no later update of this text is too large
    /// either; joins are checked when they come.
    fn check_sendable(&self, prepared: PreparedEdit) -> Result<PreparedEdit> {
        let bytes = UpdateShape {
            document_id: &self.id,
            user_id: self.longest_user_id(Some(&prepared.user_id)),
            text: prepared.text_bytes,
            active_users: self.member_ids(None),
            edit: Some((prepared.user_id.len(), prepared.op_text_bytes())),
        }
        .wire_bytes();
        let limit = self.inner.limits.max_update_bytes;
        if bytes > limit {
            return Err(Error::UpdateTooLarge { bytes, limit });
        }
        Ok(prepared)
    }

    /// The distinct user ids of the members, with `joining` among them.
    fn member_ids<'a>(&'a self, joining: Option<&'a str>) -> BTreeSet<&'a str> {
        self.subscribers
            .values()
            .map(|s| s.user_id.as_str())
            .chain(joining)
            .collect()
    }

    /// The longest user id an update of the current text may name: a member's or `also`.
    fn longest_user_id(&self, also: Option<&str>) -> usize {
        self.subscribers
            .values()
            .map(|s| s.user_id.len())
            .chain(also.map(str::len))
            .max()
            .unwrap_or(0)
    }

    fn update(&self, user_id: &str, edit: Option<AppliedEdit>) -> Arc<DocumentUpdate> {
        let mut active_users: Vec<String> = self
            .subscribers
            .values()
            .map(|s| s.user_id.clone())
            .collect();
        active_users.sort();
        active_users.dedup();
        Arc::new(DocumentUpdate {
            document_id: self.id.clone(),
            user_id: user_id.to_owned(),
            content: Arc::clone(&self.content),
            active_users,
            revision: self.revision,
            timestamp: edit.as_ref().map_or_else(SystemTime::now, |e| e.applied_at),
            edit,
        })
    }

    /// Sends `update` to every subscriber but `skip`, never waiting: a queue full in updates
    /// or over its byte budget cuts its subscriber off, a closed one means it left; either way
    /// the others hear of it.
    fn broadcast_except(&mut self, skip: u64, update: Arc<DocumentUpdate>) {
        let bytes = update.wire_bytes();
        let budget = self.inner.limits.subscriber_queue_bytes;
        let mut gone = Vec::new();
        for (&id, subscriber) in &self.subscribers {
            if id == skip {
                continue;
            }
            // Counted before it is queued, so the session's release never runs first. An
            // empty queue takes any update: a stream that keeps up is never cut off.
            let held = subscriber.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
            let sent = if held > 0 && held.saturating_add(bytes) > budget {
                Err(mpsc::error::TrySendError::Full((
                    Arc::clone(&update),
                    bytes,
                )))
            } else {
                subscriber.updates.try_send((Arc::clone(&update), bytes))
            };
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let _ = subscriber.ended.set(Ended::CutOff);
                    self.inner.cut_offs.fetch_add(1, Ordering::Relaxed);
                    gone.push(id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(id),
            }
        }
        // Every subscriber that went leaves before the rest are told, so that none of them is
        // sent another's leave (and counted as cut off once more when its queue is full).
        let gone: Vec<Subscriber> = gone
            .iter()
            .filter_map(|id| self.subscribers.remove(id))
            .collect();
        for subscriber in gone {
            // Dropping its sender ends the subscriber's stream; tell the rest.
            let update = self.update(&subscriber.user_id, None);
            self.broadcast_except(u64::MAX, update);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::{EditKind, memory::MemoryDocumentRepo, ot::TextOp, size::UpdateShape};

    const LIMITS: EditLimits = EditLimits {
        document: DocumentLimits {
            op_log: 100,
            max_chars: 10_000,
        },
        max_open_documents: 10,
        subscriber_queue: 16,
        subscriber_queue_bytes: 1024 * 1024,
        max_update_bytes: 4 * 1024 * 1024,
    };

    fn hub(repo: Arc<MemoryDocumentRepo>) -> EditHub {
        EditHub::new(repo, LIMITS, &Lifecycle::new())
    }

    fn hub_with(repo: Arc<MemoryDocumentRepo>, limits: EditLimits) -> EditHub {
        EditHub::new(repo, limits, &Lifecycle::new())
    }

    fn insert(user: &str, text: &str) -> EditRequest {
        EditRequest {
            user_id: user.to_owned(),
            kind: EditKind::Insert,
            op: TextOp::insert(0, text),
            format: String::new(),
            base_revision: None,
        }
    }

    /// Awaits `future`, failing after a generous bound: a hang is the bug these tests catch.
    async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(10), future)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Yields until `condition` holds (bounded by [`within`]).
    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        within(what, async {
            while !condition() {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }

    /// Two tasks join and leave one document, which empties (and its actor stops) over and
    /// over; every join must land on a running actor, neither refused as "shutting down"
    /// nor left waiting on a stopped one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn joins_racing_idle_stops_always_succeed() {
        let hub = hub(MemoryDocumentRepo::new());
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..2 {
            let hub = hub.clone();
            tasks.spawn(async move {
                for round in 0..10_000 {
                    let joined = within("a join", hub.join("churn", &format!("user{task}"))).await;
                    let session =
                        joined.unwrap_or_else(|err| panic!("task {task} round {round}: {err}"));
                    drop(session);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a joining task");
        }
    }

    /// The race above, lined up: a join admitted to an actor's queue (a permit taken) just
    /// before the actor stops for lack of members is still answered, with a dropped reply that
    /// sends the joiner to a fresh actor.
    #[tokio::test]
    async fn a_join_admitted_as_its_actor_stops_idle_is_sent_to_a_fresh_actor() {
        let hub = hub(MemoryDocumentRepo::new());
        let first = hub.join("d", "ann").await.expect("ann joins");
        let stale = hub.inner.actors().get("d").cloned().expect("d is open");
        let permit = stale.commands.reserve().await.expect("the actor runs");
        drop(first);
        // The actor stops: it leaves the map, then waits for the admitted command.
        until("the idle actor to leave the map", || {
            !hub.inner.actors().contains_key("d")
        })
        .await;
        let (reply, answer) = oneshot::channel();
        permit.send(Command::Join {
            user_id: "bob".to_owned(),
            reply,
        });
        let answer = within("the stopped actor to answer", answer).await;
        assert!(
            answer.is_err(),
            "a stopping actor must drop the join's reply (start over), got {answer:?}"
        );
        let bob = hub.join("d", "bob").await.expect("bob joins a fresh actor");
        assert_eq!(bob.snapshot().active_users, ["bob"]);
    }

    #[tokio::test]
    async fn a_failed_save_tells_every_editor_and_the_next_join_reloads() {
        let repo = MemoryDocumentRepo::new();
        let hub = hub(Arc::clone(&repo));
        let ann = hub.join("d", "ann").await.expect("ann joins");
        ann.submit(insert("ann", "kept")).await.expect("saved");
        let mut bob = hub.join("d", "bob").await.expect("bob joins");
        repo.fail_appends(true);
        let err = ann
            .submit(insert("ann", "lost "))
            .await
            .expect_err("the write fails");
        let bob_err = within("bob to hear", async {
            loop {
                if let Err(err) = bob.next_update().await {
                    return err;
                }
            }
        })
        .await;
        for (who, err) in [("ann", err), ("bob", bob_err)] {
            assert!(
                matches!(&err, Error::DocumentNotSaved { document_id, .. } if document_id == "d"),
                "{who}: expected DocumentNotSaved for d, got {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("join again"), "{who}: {message}");
            assert!(
                !message.contains(super::super::memory::FAILURE_DETAIL),
                "{who}: the storage detail leaked: {message}"
            );
        }
        repo.fail_appends(false);
        let carl = hub.join("d", "carl").await.expect("carl joins");
        let snapshot = carl.snapshot();
        assert_eq!(
            (snapshot.content.as_ref(), snapshot.revision),
            ("kept", 1),
            "the next join sees what was durable"
        );
    }

    /// A join queued behind an edit whose write fails must not be refused: it joins the
    /// document as stored, on a fresh actor.
    #[tokio::test]
    async fn a_join_queued_behind_a_failed_save_joins_the_stored_document() {
        let repo = MemoryDocumentRepo::new();
        let hub = hub(Arc::clone(&repo));
        let ann = hub.join("d", "ann").await.expect("ann joins");
        let gate = repo.gate_appends();
        let editing = tokio::spawn(async move {
            let result = ann.submit(insert("ann", "lost")).await;
            (ann, result)
        });
        within("the write to start", repo.append_started()).await;
        let actor = hub.inner.actors().get("d").cloned().expect("d is open");
        let joining = tokio::spawn({
            let hub = hub.clone();
            async move { hub.join("d", "bob").await }
        });
        until("bob's join to be queued", || {
            actor.commands.capacity() < COMMAND_QUEUE
        })
        .await;
        repo.fail_appends(true);
        gate.add_permits(1);
        let (_ann, result) = within("ann's edit", editing).await.expect("edit task");
        assert!(
            matches!(result, Err(Error::DocumentNotSaved { .. })),
            "{result:?}"
        );
        let bob = within("bob's join", joining)
            .await
            .expect("join task")
            .unwrap_or_else(|err| panic!("bob's join must start over, got {err}"));
        let snapshot = bob.snapshot();
        assert_eq!((snapshot.content.as_ref(), snapshot.revision), ("", 0));
        assert!(repo.stored("d").is_none(), "nothing was saved");
    }

    /// The bound on the update of `editor` inserting `inserted` into `text` of document "d"
    /// with `members` joined.
    fn edit_bytes(text: &str, inserted: &str, editor: &str, members: &[&str]) -> usize {
        let longest = members.iter().map(|m| m.len()).max().unwrap_or(0);
        UpdateShape {
            document_id: "d",
            user_id: longest.max(editor.len()),
            text: text.len() + inserted.len(),
            active_users: members.iter().copied(),
            edit: Some((editor.len(), inserted.len())),
        }
        .wire_bytes()
    }

    #[tokio::test]
    async fn an_edit_whose_update_would_not_fit_is_refused_for_its_sender_only() {
        for wide in ["世", "😀"] {
            let big = wide.repeat(100);
            let limit = edit_bytes("", &big, "ann", &["ann", "bob"]) - 1;
            let hub = hub_with(
                MemoryDocumentRepo::new(),
                EditLimits {
                    max_update_bytes: limit,
                    ..LIMITS
                },
            );
            let ann = hub.join("d", "ann").await.expect("ann joins");
            let mut bob = hub.join("d", "bob").await.expect("bob joins");
            let err = ann
                .submit(insert("ann", &big))
                .await
                .expect_err("one byte over");
            assert!(
                matches!(err, Error::UpdateTooLarge { bytes, limit: l } if bytes == limit + 1 && l == limit),
                "{wide}: {err:?}"
            );
            assert!(
                err.to_string()
                    .contains("server.grpc.max_encoding_message_size"),
                "{err}"
            );
            // One char less fits exactly; the refused edit changed nothing.
            let fits = wide.repeat(99);
            assert!(edit_bytes("", &fits, "ann", &["ann", "bob"]) <= limit);
            ann.submit(insert("ann", &fits)).await.expect("fits");
            let update = within("bob's update", bob.next_update())
                .await
                .expect("bob goes on");
            assert_eq!(
                (update.revision, update.content.as_ref()),
                (1, fits.as_str())
            );
        }
    }

    /// A one-char edit is refused when the text it would leave is too large to send, and a
    /// join when its snapshot would be.
    #[tokio::test]
    async fn the_text_and_every_snapshot_stay_sendable() {
        // Grown one char at a time, the text reaches the limit while every edit is tiny.
        let limit = edit_bytes(&"😀".repeat(199), "😀", "ann", &["ann"]);
        let hub = hub_with(
            MemoryDocumentRepo::new(),
            EditLimits {
                max_update_bytes: limit,
                ..LIMITS
            },
        );
        let mut ann = hub.join("d", "ann").await.expect("ann joins");
        for char in 0..200 {
            ann.submit(insert("ann", "😀"))
                .await
                .unwrap_or_else(|err| panic!("char {char}: {err}"));
            // Read as a client does, or the queue would cut ann off.
            while ann.try_next_update().is_some() {}
        }
        let err = ann
            .submit(insert("ann", "😀"))
            .await
            .expect_err("the text would outgrow the limit");
        assert!(matches!(err, Error::UpdateTooLarge { .. }), "{err:?}");
        // A snapshot with one more member does not fit either.
        let err = hub
            .join("d", "bobby")
            .await
            .expect_err("bobby's snapshot would be too large");
        assert!(
            matches!(&err, Error::DocumentTooLargeToSend { document_id, .. } if document_id == "d"),
            "{err:?}"
        );
        let again = hub
            .join("d", "ann")
            .await
            .expect("ann's own snapshot still fits");
        assert_eq!(again.snapshot().revision, 200);
    }

    /// Reads `session` until it ends; returns how many updates it got and how it ended.
    async fn drain(session: &mut EditSession) -> (usize, Error) {
        let mut got = 0;
        loop {
            match within("the queue to end", session.next_update()).await {
                Ok(_) => got += 1,
                Err(err) => return (got, err),
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_over_its_byte_budget_is_cut_off_and_the_others_go_on() {
        let text = "😀".repeat(2_500); // 10 kB in every update
        let hub = hub_with(
            MemoryDocumentRepo::new(),
            EditLimits {
                subscriber_queue: 1_000,
                subscriber_queue_bytes: 50_000,
                ..LIMITS
            },
        );
        let mut sleepy = hub.join("d", "sleepy").await.expect("sleepy joins");
        let mut writer = hub.join("d", "writer").await.expect("writer joins");
        writer.submit(insert("writer", &text)).await.expect("text");
        let mut heard_leave = false;
        for edit in 0..20 {
            writer
                .submit(insert("writer", "x"))
                .await
                .unwrap_or_else(|err| panic!("edit {edit}: {err}"));
            // The writer reads and lets go of each update, as its stream does once encoded.
            while let Some(update) = writer.try_next_update() {
                heard_leave |= update.edit.is_none() && update.active_users == ["writer"];
            }
        }
        assert!(heard_leave, "the writer heard that sleepy left");
        assert_eq!(hub.slow_consumers_cut_off(), 1);
        let (got, err) = drain(&mut sleepy).await;
        assert!(matches!(err, Error::EditorTooSlow), "{err:?}");
        // About 10 kB each (20 kB for the one carrying the text as its operation): the budget
        // holds 3 to 4 of them, far fewer than the 1,000 the count bound allows.
        assert!((2..=5).contains(&got), "sleepy held {got} updates");
    }

    /// The stream task holds an update after taking it from the queue; it still counts until
    /// dropped (handed to the encoder), and a stream with nothing held takes any update.
    #[tokio::test]
    async fn an_update_counts_until_it_is_let_go() {
        let big = "x".repeat(5_000);
        let hub = hub_with(
            MemoryDocumentRepo::new(),
            EditLimits {
                subscriber_queue_bytes: 1_000,
                ..LIMITS
            },
        );
        let mut ann = hub.join("d", "ann").await.expect("ann joins");
        // Five times the budget, but nothing else is waiting: taken.
        ann.submit(insert("ann", &big))
            .await
            .expect("fits the message limit");
        let held = ann.next_update().await.expect("ann's own update");
        assert_eq!(held.revision, 1);
        drop(held);
        ann.submit(insert("ann", "y")).await.expect("small edit");
        let held = ann.next_update().await.expect("taken, not yet let go");
        ann.submit(insert("ann", "z"))
            .await
            .expect("the edit itself is applied");
        drop(held);
        let (got, err) = drain(&mut ann).await;
        assert_eq!(got, 0, "the update over the budget was never queued");
        assert!(matches!(err, Error::EditorTooSlow), "{err:?}");
    }
}
