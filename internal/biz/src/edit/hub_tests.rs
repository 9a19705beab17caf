//! [`EditHub`] over [`MemoryDocumentRepo`], through its public API: group commit and what a
//! failed save does to every editor, slow subscribers cut off by count and by bytes,
//! presence, a reload's op log, and editors converging. The races that need the actor's
//! insides are tested beside it in `hub.rs`; the end-to-end tests
//! (`cmd/streamhub/tests/api/edit.rs`) cover the same promises through gRPC.

use std::{
    collections::VecDeque,
    future::Future,
    pin::{Pin, pin},
    sync::Arc,
    task::Poll,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    DocumentLimits, DocumentRepo, DocumentUpdate, EditHub, EditKind, EditLimits, EditRequest,
    EditSession,
    memory::MemoryDocumentRepo,
    ot::{self, TextOp},
};
use crate::{Error, Lifecycle, SplitMix64};

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

/// The one place these tests make a hub.
fn hub(repo: &Arc<MemoryDocumentRepo>, limits: EditLimits) -> EditHub {
    EditHub::new(
        Arc::clone(repo) as Arc<dyn DocumentRepo>,
        limits,
        &Lifecycle::new(),
    )
}

fn edit(user: &str, op: TextOp, base_revision: Option<i64>) -> EditRequest {
    EditRequest {
        user_id: user.to_owned(),
        kind: match op {
            TextOp::Delete { .. } => EditKind::Delete,
            _ => EditKind::Insert,
        },
        op,
        format: String::new(),
        base_revision,
    }
}

/// `user` inserts `text` at the start of whatever the document holds.
fn prepend(user: &str, text: &str) -> EditRequest {
    edit(user, TextOp::insert(0, text), None)
}

/// Awaits `future`, failing after a generous bound: a hang is a bug these tests catch.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
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

async fn join(hub: &EditHub, user: &str) -> EditSession {
    within("a join", hub.join("d", user))
        .await
        .unwrap_or_else(|err| panic!("{user} joins: {err}"))
}

/// Polls a submit once: its command is then in the actor's queue, waiting for an answer.
async fn queue<F: Future + Unpin>(submit: &mut F) {
    let pending =
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *submit).poll(cx).is_pending())).await;
    assert!(
        pending,
        "the edit was answered before the save it queued behind"
    );
}

/// Takes every update already queued for `session`; returns how many.
fn drain(session: &mut EditSession) -> usize {
    std::iter::from_fn(|| session.try_next_update()).count()
}

fn assert_not_saved(who: &str, result: Result<(), Error>, unavailable: bool) {
    assert!(
        matches!(
            &result,
            Err(Error::DocumentNotSaved { document_id, store_unavailable })
                if document_id == "d" && *store_unavailable == unavailable
        ),
        "{who}: expected DocumentNotSaved {{ store_unavailable: {unavailable} }}, got {result:?}"
    );
}

/// Edits that queue while a save is in flight are applied and saved together, in one
/// append; yet every update pairs its edit with the text and revision right after it.
#[tokio::test]
async fn edits_queued_behind_a_save_share_the_next_one() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(&repo, LIMITS);
    let ann = join(&hub, "ann").await;
    let bob = join(&hub, "bob").await;
    let mut watcher = join(&hub, "watcher").await;
    let gate = repo.gate_appends();
    let mut first = pin!(ann.submit(prepend("ann", "a")));
    queue(&mut first).await;
    within("the first save to start", repo.append_started()).await;
    let mut second = pin!(bob.submit(prepend("bob", "b")));
    let mut third = pin!(ann.submit(prepend("ann", "c")));
    let mut fourth = pin!(bob.submit(prepend("bob", "d")));
    queue(&mut second).await;
    queue(&mut third).await;
    queue(&mut fourth).await;

    gate.add_permits(2);
    let answers = within("the edits to be saved", async {
        tokio::join!(first, second, third, fourth)
    })
    .await;
    for (n, answer) in [answers.0, answers.1, answers.2, answers.3]
        .into_iter()
        .enumerate()
    {
        answer.unwrap_or_else(|err| panic!("edit {}: {err}", n + 1));
    }
    assert_eq!(
        repo.saved_revisions(),
        [vec![1], vec![2, 3, 4]],
        "the three queued edits share one save"
    );
    for (revision, text) in [(1, "a"), (2, "ba"), (3, "cba"), (4, "dcba")] {
        let update = within("the watcher's update", watcher.next_update())
            .await
            .expect("the watcher goes on");
        assert_eq!(
            (
                update.revision,
                update.content.as_ref(),
                update.edit.as_ref().map(|edit| edit.revision)
            ),
            (revision, text, Some(revision)),
            "each edit with the text right after it"
        );
    }
    assert_eq!(
        repo.stored("d")
            .map(|stored| (stored.text, stored.revision)),
        Some(("dcba".to_owned(), 4))
    );
}

/// When the save of a group fails, every edit of the group and every editor of the document
/// learn it as DocumentNotSaved, saying whether the store was unavailable (a retry may work)
/// or refused the write; the next join loads what was saved.
#[tokio::test]
async fn a_group_whose_save_fails_ends_every_editor_with_document_not_saved() {
    for unavailable in [true, false] {
        let repo = MemoryDocumentRepo::new();
        repo.fail_as_unavailable(unavailable);
        let hub = hub(&repo, LIMITS);
        let ann = join(&hub, "ann").await;
        let bob = join(&hub, "bob").await;
        let mut watcher = join(&hub, "watcher").await;
        let gate = repo.gate_appends();
        let mut first = pin!(ann.submit(prepend("ann", "a")));
        queue(&mut first).await;
        within("the first save to start", repo.append_started()).await;
        let mut second = pin!(bob.submit(prepend("bob", "b")));
        let mut third = pin!(ann.submit(prepend("ann", "c")));
        queue(&mut second).await;
        queue(&mut third).await;
        gate.add_permits(1);
        within("the first edit", first)
            .await
            .expect("the first save succeeds");
        within("the group's save to start", repo.append_started()).await;
        repo.fail_appends(true);
        gate.add_permits(1);

        let (second, third) =
            within("the group's answers", async { tokio::join!(second, third) }).await;
        assert_not_saved("bob's edit", second, unavailable);
        assert_not_saved("ann's edit", third, unavailable);
        let saved = within("the watcher's update", watcher.next_update())
            .await
            .expect("the saved edit");
        assert_eq!(saved.revision, 1);
        let ended = within("the watcher's end", watcher.next_update()).await;
        assert_not_saved("the watcher", ended.map(drop), unavailable);
        assert_eq!(repo.saved_revisions(), [vec![1]]);

        repo.fail_appends(false);
        let carl = join(&hub, "carl").await;
        let snapshot = carl.snapshot();
        assert_eq!(
            (snapshot.content.as_ref(), snapshot.revision),
            ("a", 1),
            "the next join loads what was saved"
        );
    }
}

#[tokio::test]
async fn a_document_that_cannot_be_loaded_refuses_the_join_until_it_can() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(&repo, LIMITS);
    repo.fail_loads(true);
    let refused = within("the join", hub.join("d", "ann")).await;
    assert!(
        matches!(refused, Err(Error::StorageUnavailable(_))),
        "{refused:?}"
    );
    assert_eq!(hub.open_documents(), 0, "the failed actor is forgotten");
    repo.fail_loads(false);
    let ann = join(&hub, "ann").await;
    assert_eq!(ann.snapshot().active_users, ["ann"]);
}

/// A subscriber whose queue holds `subscriber_queue` updates is cut off by the next one; the
/// document and its other editors go on and hear that it left.
#[tokio::test]
async fn a_subscriber_a_full_queue_behind_is_cut_off_and_the_others_go_on() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(
        &repo,
        EditLimits {
            subscriber_queue: 4,
            ..LIMITS
        },
    );
    let mut sleepy = join(&hub, "sleepy").await;
    // Sleepy's queue: the writer joining, then an update per edit.
    let mut writer = join(&hub, "writer").await;
    for revision in 1..=3 {
        writer
            .submit(prepend("writer", "x"))
            .await
            .expect("an edit");
        assert_eq!(drain(&mut writer), 1, "the writer reads its own update");
        assert_eq!(
            hub.slow_consumers_cut_off(),
            0,
            "sleepy holds {} of 4 updates",
            revision + 1
        );
    }
    writer
        .submit(prepend("writer", "x"))
        .await
        .expect("the writer is never held up");
    assert_eq!(hub.slow_consumers_cut_off(), 1);
    let mut updates = Vec::new();
    while let Some(update) = writer.try_next_update() {
        updates.push((update.user_id.clone(), update.active_users.clone()));
    }
    let members = |names: &[&str]| {
        names
            .iter()
            .map(|&name| name.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        updates,
        [
            ("writer".to_owned(), members(&["sleepy", "writer"])),
            ("sleepy".to_owned(), members(&["writer"])),
        ],
        "the writer's edit (made while sleepy was a member), then sleepy leaving"
    );

    let mut got = Vec::new();
    let ended = loop {
        match within("sleepy's queue", sleepy.next_update()).await {
            Ok(update) => got.push(update.revision),
            Err(err) => break err,
        }
    };
    assert_eq!(got, [0, 1, 2, 3], "what was queued, in order");
    assert!(matches!(ended, Error::EditorTooSlow), "{ended:?}");
    writer
        .submit(prepend("writer", "y"))
        .await
        .expect("the document goes on");
}

/// Two subscribers that fall behind on the same update are two cut-offs, whatever order
/// their leaving is told in.
#[tokio::test]
async fn subscribers_cut_off_by_one_update_are_counted_once_each() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(
        &repo,
        EditLimits {
            // Room for the writer's own edit and two leaves in one step.
            subscriber_queue: 3,
            ..LIMITS
        },
    );
    let mut first = join(&hub, "first").await;
    let mut second = join(&hub, "second").await;
    let mut writer = join(&hub, "writer").await;
    assert_eq!(drain(&mut first), 2, "second and the writer joining");
    assert_eq!(drain(&mut second), 1, "the writer joining");
    // From here on neither reads: the same edits fill both queues, the same one overflows both.
    for text in ["a", "b", "c"] {
        writer
            .submit(prepend("writer", text))
            .await
            .expect("an edit");
        drain(&mut writer);
    }
    assert_eq!(hub.slow_consumers_cut_off(), 0, "both queues are full");
    writer
        .submit(prepend("writer", "d"))
        .await
        .expect("the writer goes on");
    assert_eq!(
        hub.slow_consumers_cut_off(),
        2,
        "two subscribers, two cut-offs"
    );
    let mut left = Vec::new();
    while let Some(update) = writer.try_next_update() {
        if update.edit.is_none() {
            left.push(update.user_id.clone());
        }
    }
    left.sort();
    assert_eq!(left, ["first", "second"], "each leaving told once");
}

/// Edits `flood` makes once `sleepy` has joined.
const FLOOD_EDITS: usize = 6;

/// What `sleepy`, never reading, is sent while `writer` edits a 200-byte text, with `budget`
/// bytes: the sizes of the updates it got, and whether it was cut off. The edits keep the
/// text's length, so every update is about as large; the writer, who reads, never holds more
/// than its own edit and a presence update.
async fn flood(budget: usize) -> (Vec<usize>, bool) {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(
        &repo,
        EditLimits {
            subscriber_queue: 1_000,
            subscriber_queue_bytes: budget,
            ..LIMITS
        },
    );
    let mut writer = join(&hub, "writer").await;
    writer
        .submit(prepend("writer", &"é".repeat(100)))
        .await
        .expect("the text");
    drain(&mut writer);
    let mut sleepy = join(&hub, "sleepy").await;
    drain(&mut writer);
    for n in 0..FLOOD_EDITS {
        let op = if n % 2 == 0 {
            TextOp::delete(0, 1)
        } else {
            TextOp::insert(0, "é")
        };
        writer
            .submit(edit("writer", op, None))
            .await
            .expect("an edit");
        drain(&mut writer);
    }
    let mut sizes = Vec::new();
    while sizes.len() < FLOOD_EDITS {
        match within("sleepy's queue", sleepy.next_update()).await {
            // Taken and dropped at once: each counts only while queued.
            Ok(update) => sizes.push(update.wire_bytes()),
            Err(Error::EditorTooSlow) => return (sizes, true),
            Err(err) => panic!("sleepy ended with {err:?}"),
        }
    }
    (sizes, false)
}

/// The byte budget admits exactly what fits: updates that add up to the budget are queued,
/// one byte less cuts the last of them off.
#[tokio::test]
async fn the_byte_budget_admits_exactly_the_updates_that_fit() {
    let (sizes, cut_off) = flood(usize::MAX).await;
    assert!(!cut_off);
    assert_eq!(sizes.len(), FLOOD_EDITS);
    let three: usize = sizes[..3].iter().sum();
    assert_eq!(flood(three).await, (sizes[..3].to_vec(), true));
    assert_eq!(flood(three - 1).await, (sizes[..2].to_vec(), true));
}

#[tokio::test]
async fn presence_follows_joins_and_leaves_and_the_last_leave_closes_the_document() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(&repo, LIMITS);
    let mut ann = join(&hub, "ann").await;
    let snapshot = ann.snapshot();
    assert_eq!(
        (
            snapshot.user_id.as_str(),
            snapshot.active_users.clone(),
            snapshot.revision,
            snapshot.content.as_ref()
        ),
        ("ann", vec!["ann".to_owned()], 0, "")
    );
    ann.submit(prepend("ann", "hi")).await.expect("an edit");
    assert_eq!(drain(&mut ann), 1);

    let mut bob = join(&hub, "bob").await;
    let snapshot = bob.snapshot();
    assert_eq!(
        (
            snapshot.content.as_ref(),
            snapshot.revision,
            snapshot.edit.clone()
        ),
        ("hi", 1, None),
        "a joiner's snapshot is the document now"
    );
    let presence = |update: &DocumentUpdate| {
        assert_eq!(update.edit, None, "a presence update carries no edit");
        assert_eq!(
            (update.content.as_ref(), update.revision),
            ("hi", 1),
            "presence repeats the current text and revision"
        );
        (update.user_id.clone(), update.active_users.join(","))
    };
    let next = |session: &mut EditSession| {
        let update = session.try_next_update().map(|d| d.update().clone());
        update.unwrap_or_else(|| panic!("{} has no update queued", session.user_id()))
    };
    assert_eq!(presence(&next(&mut ann)), ("bob".into(), "ann,bob".into()));

    let second_ann = join(&hub, "ann").await;
    assert_eq!(
        presence(&next(&mut bob)),
        ("ann".into(), "ann,bob".into()),
        "a user in two streams is listed once"
    );
    assert_eq!(presence(&next(&mut ann)), ("ann".into(), "ann,bob".into()));
    drop(second_ann);
    for session in [&mut bob, &mut ann] {
        let left = within("ann's second stream to leave", session.next_update())
            .await
            .expect("the others go on");
        assert_eq!(
            presence(&left),
            ("ann".into(), "ann,bob".into()),
            "ann is still there in her first stream"
        );
    }
    drop(bob);
    let left = within("ann to hear bob leave", ann.next_update())
        .await
        .expect("ann goes on");
    assert_eq!(presence(&left), ("bob".into(), "ann".into()));
    assert_eq!(hub.open_documents(), 1);

    drop(ann);
    until("the empty document to close", || hub.open_documents() == 0).await;
    let carl = join(&hub, "carl").await;
    let snapshot = carl.snapshot();
    assert_eq!(
        (snapshot.content.as_ref(), snapshot.revision),
        ("hi", 1),
        "loaded again from the store"
    );
}

/// A document closed and loaded again transforms a late edit against the operations it
/// loaded: an editor who saw revision 1 before the reload still lands where it meant.
#[tokio::test]
async fn an_edit_made_before_a_reload_is_transformed_against_the_stored_log() {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(&repo, LIMITS);
    let ann = join(&hub, "ann").await;
    ann.submit(prepend("ann", "hello")).await.expect("rev 1");
    ann.submit(prepend("ann", ">> ")).await.expect("rev 2");
    drop(ann);
    until("the document to close", || hub.open_documents() == 0).await;

    let mut bob = join(&hub, "bob").await;
    assert_eq!(bob.snapshot().content.as_ref(), ">> hello");
    bob.submit(edit("bob", TextOp::insert(5, "!"), Some(1)))
        .await
        .expect("an edit based on revision 1");
    let update = within("bob's update", bob.next_update())
        .await
        .expect("bob's own update");
    assert_eq!(update.content.as_ref(), ">> hello!");
    assert_eq!(
        update
            .edit
            .as_ref()
            .map(|edit| (edit.revision, edit.op.clone())),
        Some((3, TextOp::insert(8, "!"))),
        "shifted past the prepend it had not seen"
    );
}

const EDITORS: usize = 3;
const EDITS_PER_EDITOR: usize = 40;

/// What one editor has seen: the document's history as its updates tell it.
struct View {
    seed: u64,
    user: String,
    revision: i64,
    text: String,
    /// The base revisions of this editor's edits not yet seen back, oldest first.
    bases: VecDeque<i64>,
    /// Edits of this editor that another edit overtook (applied after a revision their
    /// author had not seen).
    crossed: usize,
}

impl View {
    /// Checks that `update` continues one history, and follows it.
    fn follow(&mut self, update: &DocumentUpdate) {
        let seed = self.seed;
        match &update.edit {
            Some(edit) => {
                assert_eq!(
                    update.revision,
                    self.revision + 1,
                    "seed {seed}: revision step"
                );
                let len = self.text.chars().count();
                ot::apply(&mut self.text, len, &edit.op)
                    .unwrap_or_else(|err| panic!("seed {seed}: {err:?} at {}", update.revision));
                self.revision = update.revision;
                if edit.user_id == self.user {
                    let base = self.bases.pop_front().expect("an edit of this editor");
                    if update.revision > base + 1 {
                        self.crossed += 1;
                    }
                }
            }
            None => assert_eq!(update.revision, self.revision, "seed {seed}: presence"),
        }
        assert_eq!(
            update.content.as_ref(),
            self.text,
            "seed {seed}: content at {}",
            self.revision
        );
    }
}

/// Editor `editor` of seed `seed`: reads what is queued, edits what it has seen (so edits
/// cross in flight), and checks that its updates make one history. Returns the text it ends
/// with and how many of its edits crossed another.
async fn edit_randomly(
    mut session: EditSession,
    seed: u64,
    editor: u64,
    total: i64,
) -> (String, usize) {
    let snapshot = session.snapshot();
    let mut view = View {
        seed,
        user: session.user_id().to_owned(),
        revision: snapshot.revision,
        text: snapshot.content.to_string(),
        bases: VecDeque::new(),
        crossed: 0,
    };
    let mut rng = SplitMix64(seed ^ (editor + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let alphabet = ['a', 'é', '世', '👋', ' '];
    for _ in 0..EDITS_PER_EDITOR {
        while let Some(update) = session.try_next_update() {
            view.follow(&update);
        }
        let len = view.text.chars().count();
        let op = if len == 0 || rng.below(3) > 0 {
            let inserted: String = (0..=rng.below(3))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            TextOp::insert(rng.below(len + 1), inserted)
        } else {
            let at = rng.below(len);
            TextOp::delete(at, 1 + rng.below((len - at).min(4)))
        };
        view.bases.push_back(view.revision);
        session
            .submit(edit(&view.user, op, Some(view.revision)))
            .await
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        tokio::task::yield_now().await;
    }
    while view.revision < total {
        let update = within("every edit", session.next_update())
            .await
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        view.follow(&update);
    }
    (view.text, view.crossed)
}

/// Runs the editors of seed `seed`; returns how many edits crossed another.
async fn converge(seed: u64) -> usize {
    let repo = MemoryDocumentRepo::new();
    let hub = hub(
        &repo,
        EditLimits {
            subscriber_queue: 10_000,
            ..LIMITS
        },
    );
    let total = i64::try_from(EDITORS * EDITS_PER_EDITOR).expect("small");
    let mut sessions = Vec::new();
    for i in 0..EDITORS {
        sessions.push(join(&hub, &format!("user{i}")).await);
    }
    let mut editors = tokio::task::JoinSet::new();
    for (editor, session) in (0..).zip(sessions) {
        editors.spawn(edit_randomly(session, seed, editor, total));
    }
    let mut texts = Vec::new();
    let mut crossed = 0;
    while let Some(done) = within("the editors", editors.join_next()).await {
        let (text, editor_crossed) =
            done.unwrap_or_else(|err| panic!("seed {seed}: an editor failed: {err}"));
        texts.push(text);
        crossed += editor_crossed;
    }
    let stored = repo.stored("d").expect("saved");
    assert_eq!(stored.revision, total, "seed {seed}: one revision per edit");
    for text in texts {
        assert_eq!(text, stored.text, "seed {seed}: an editor diverged");
    }
    crossed
}

/// Editors edit the text as they last saw it, concurrently; every one must end on the text
/// that was saved. Replay a seed with `STREAMHUB_TEST_SEED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_editors_converge_for_many_seeds() {
    let first = std::env::var("STREAMHUB_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        });
    let mut crossed = 0;
    for seed in first..first + 20 {
        println!("edit hub convergence seed {seed} (replay with STREAMHUB_TEST_SEED={seed})");
        crossed += converge(seed).await;
    }
    println!("{crossed} edits crossed another in flight");
    assert!(
        crossed > 0,
        "no edit was ever transformed: the test proved nothing"
    );
}
