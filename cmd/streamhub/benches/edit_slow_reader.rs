//! CollaborativeEdit: what one reader that never reads costs the server in memory.
//!
//! A writer builds a large document (`TEXT_CHARS` ASCII chars) and then makes `EDITS` one-char
//! edits, each of which broadcasts the whole text; a second stream on the same document never
//! reads. The server must cut that stream off before it pins more than its budget of updates.
//! Both clients run in a child process (this executable again, with `CLIENT_ENV` set), so the
//! printed figures are the server's own: resident memory before, and its peak (VmHWM) once the
//! writer is done.
//!
//! Run with `cargo bench -p streamhub --bench edit_slow_reader` (add `--profile dev` for a
//! quick build; the memory figures hardly depend on optimisation).

mod support;

use std::time::{Duration, Instant};

use streamhub_api::streaming::{DocumentUpdate, EditOperation};
use streamhub_testkit::{bounded, connect, open_edit, spawn_app};
use support::{ChildClients, Memory, hold_until_parent_stops};
use tokio::sync::mpsc;
use tonic::{Streaming, transport::Channel};

/// The document's size: every update carries about this many bytes of text. The edits that
/// follow grow it to `edit.max_document_chars` (1,000,000), not beyond.
const TEXT_CHARS: usize = 1_000_000 - EDITS;
/// One-char edits after the document is built; more than `edit.subscriber_queue` (1024), so
/// that the count bound alone would also have cut the sleeper off by the end.
const EDITS: usize = 1_200;
/// Edits the writer keeps unacknowledged.
const WINDOW: usize = 8;
const DOC: &str = "big";

/// Any step that takes longer means the bench is broken, not slow.
const STEP_LIMIT: Duration = Duration::from_secs(600);

/// Set (to the server's endpoint) in the child process that plays the clients.
const CLIENT_ENV: &str = "STREAMHUB_BENCH_SLOW_READER";

#[tokio::main]
async fn main() {
    if let Ok(endpoint) = std::env::var(CLIENT_ENV) {
        clients(&endpoint).await;
        return;
    }
    let server = spawn_app().await;
    let before = Memory::now();
    let started = Instant::now();
    // "ready REVISION CUT_OFF" once the writer saw its last edit.
    let (child, ready) = ChildClients::start(CLIENT_ENV, &server.url(), STEP_LIMIT).await;
    let after = Memory::now();
    println!(
        "edit: one reader that never reads, a {TEXT_CHARS}-char ASCII document, {EDITS} one-char \
         edits ({:.1} s; writer reports: {})",
        started.elapsed().as_secs_f64(),
        ready.trim()
    );
    println!(
        "  server VmRSS before {:.1} MiB, after {:.1} MiB, peak (VmHWM) {:.1} MiB",
        before.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0,
        after.hwm_kib as f64 / 1024.0,
    );
    child.stop(STEP_LIMIT).await;
    server.stop().await;
}

fn operation(user: &str, kind: &str) -> EditOperation {
    EditOperation {
        user_id: user.to_owned(),
        document_id: DOC.to_owned(),
        operation_type: kind.to_owned(),
        ..EditOperation::default()
    }
}

/// Opens a stream on the document as `user` and returns it after the snapshot.
async fn join(
    channel: Channel,
    user: &str,
) -> (mpsc::Sender<EditOperation>, Streaming<DocumentUpdate>) {
    let (outbound, mut inbound) = open_edit(channel, operation(user, "JOIN"), WINDOW * 2).await;
    next(&mut inbound).await;
    (outbound, inbound)
}

async fn next(inbound: &mut Streaming<DocumentUpdate>) -> DocumentUpdate {
    bounded(STEP_LIMIT, "an update", inbound.message())
        .await
        .expect("no error on the writer's stream")
        .expect("the writer's stream stays open")
}

/// The child: the sleeper joins first and never reads; the writer builds the document and
/// edits it, waiting for each edit's own update (at most `WINDOW` outstanding).
async fn clients(endpoint: &str) {
    // Separate connections: the sleeper's full windows must not slow the writer's.
    let sleeper = join(connect(endpoint).await, "sleeper").await;
    let (writer, mut updates) = join(connect(endpoint).await, "writer").await;
    let mut build = operation("writer", "INSERT");
    build.content = "x".repeat(TEXT_CHARS);
    writer.send(build).await.expect("send");
    let mut revision = 0;
    while revision < 1 {
        revision = next(&mut updates).await.revision;
    }
    let mut sent = 0;
    let mut cut_off_at = None;
    let target = 1 + EDITS as i64;
    while revision < target {
        while sent < EDITS && (sent as i64) < revision - 1 + WINDOW as i64 {
            let mut op = operation("writer", "INSERT");
            op.content = "y".to_owned();
            writer.send(op).await.expect("send");
            sent += 1;
        }
        let update = next(&mut updates).await;
        revision = update.revision;
        if cut_off_at.is_none() && update.operation.is_none() && update.active_users == ["writer"] {
            cut_off_at = Some(revision);
        }
    }
    let report = match cut_off_at {
        Some(at) => format!("last revision {revision}, sleeper cut off at revision {at}"),
        None => format!("last revision {revision}, sleeper still joined"),
    };
    hold_until_parent_stops(&report, (sleeper, writer, updates)).await;
}
