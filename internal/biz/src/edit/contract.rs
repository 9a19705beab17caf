//! The contract of [`DocumentRepo`]: what every implementation must do, as tests.
//!
//! Each test is a function over a fresh, empty repository. [`document_repo_contract!`] turns
//! the whole list into `#[tokio::test]`s for one implementation, so a test added here runs
//! against every repository: the in-memory one the hub is tested with (biz's own tests) and
//! SQLite (`streamhub-data`'s `tests/contract.rs`).
//!
//! [`document_repo_contract!`]: crate::document_repo_contract

use std::time::{Duration, SystemTime};

use super::{AppliedEdit, DocumentRepo, EditKind, LoggedOp, StoredDocument, ot::TextOp};

/// Defines one `#[tokio::test]` per contract test of [`DocumentRepo`]. `$make` names an async
/// function returning a fresh, empty repository as `Arc<dyn DocumentRepo>` and anything that
/// must live as long as it (a temporary directory).
#[macro_export]
macro_rules! document_repo_contract {
    ($make:path) => {
        $crate::document_repo_contract!(@tests $make;
            a_document_never_saved_loads_as_none,
            saved_edits_reload_with_their_text_revision_and_operations,
            the_log_keeps_the_last_keep_ops_and_a_load_the_last_recent_ops,
            a_group_of_edits_is_saved_at_once,
            documents_are_kept_apart,
            an_empty_group_saves_nothing,
        );
    };
    (@tests $make:path; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let (repo, _keep) = $make().await;
                $crate::edit::contract::$test(&*repo).await;
            }
        )+
    };
}

fn edit(revision: i64, op: TextOp) -> AppliedEdit {
    AppliedEdit {
        revision,
        user_id: "ann".to_owned(),
        kind: match op {
            TextOp::Delete { .. } => EditKind::Delete,
            _ => EditKind::Insert,
        },
        op,
        format: String::new(),
        applied_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

fn logged(revision: i64, op: TextOp) -> LoggedOp {
    LoggedOp { revision, op }
}

/// Saves `ops` one append each, as the texts `texts` they leave.
async fn save_each(repo: &dyn DocumentRepo, id: &str, ops: &[(TextOp, &str)], keep_ops: usize) {
    for (i, (op, text)) in ops.iter().enumerate() {
        let revision = i64::try_from(i).expect("few") + 1;
        repo.append(id, text, &[edit(revision, op.clone())], keep_ops)
            .await
            .expect("append");
    }
}

pub async fn a_document_never_saved_loads_as_none(repo: &dyn DocumentRepo) {
    assert_eq!(repo.load("nothing", 10).await.expect("load"), None);
}

pub async fn saved_edits_reload_with_their_text_revision_and_operations(repo: &dyn DocumentRepo) {
    let ops = [
        (TextOp::insert(0, "héllo 世界"), "héllo 世界"),
        (TextOp::delete(1, 1), "hllo 世界"),
        (TextOp::insert(1, "e"), "hello 世界"),
    ];
    save_each(repo, "doc", &ops, 10).await;
    // A FORMAT changes no text: it is logged as a no-op at its revision.
    let format = AppliedEdit {
        kind: EditKind::Format,
        format: "bold".to_owned(),
        ..edit(4, TextOp::Noop)
    };
    repo.append("doc", "hello 世界", &[format], 10)
        .await
        .expect("append a format");
    let stored = repo.load("doc", 10).await.expect("load");
    assert_eq!(
        stored,
        Some(StoredDocument {
            text: "hello 世界".to_owned(),
            revision: 4,
            recent: vec![
                logged(1, TextOp::insert(0, "héllo 世界")),
                logged(2, TextOp::delete(1, 1)),
                logged(3, TextOp::insert(1, "e")),
                logged(4, TextOp::Noop),
            ],
        }),
        "text, revision and every operation, oldest first"
    );
}

pub async fn the_log_keeps_the_last_keep_ops_and_a_load_the_last_recent_ops(
    repo: &dyn DocumentRepo,
) {
    let ops = [
        (TextOp::insert(0, "a"), "a"),
        (TextOp::insert(1, "b"), "ab"),
        (TextOp::insert(2, "c"), "abc"),
        (TextOp::insert(3, "d"), "abcd"),
    ];
    save_each(repo, "doc", &ops, 2).await;
    let revisions = |stored: Option<StoredDocument>| {
        let stored = stored.expect("saved");
        assert_eq!((stored.text.as_str(), stored.revision), ("abcd", 4));
        stored
            .recent
            .iter()
            .map(|op| op.revision)
            .collect::<Vec<_>>()
    };
    assert_eq!(revisions(repo.load("doc", 10).await.expect("load")), [3, 4]);
    assert_eq!(revisions(repo.load("doc", 1).await.expect("load")), [4]);
    assert!(
        revisions(repo.load("doc", 0).await.expect("load")).is_empty(),
        "no operations asked, none given; the text still is"
    );
}

pub async fn a_group_of_edits_is_saved_at_once(repo: &dyn DocumentRepo) {
    save_each(repo, "doc", &[(TextOp::insert(0, "hell"), "hell")], 10).await;
    let group = [
        edit(2, TextOp::insert(4, "o")),
        edit(3, TextOp::insert(0, "¡")),
        edit(4, TextOp::delete(1, 1)),
    ];
    repo.append("doc", "¡ello", &group, 3)
        .await
        .expect("append a group");
    let stored = repo.load("doc", 10).await.expect("load").expect("saved");
    assert_eq!(
        stored,
        StoredDocument {
            text: "¡ello".to_owned(),
            revision: 4,
            recent: vec![
                logged(2, TextOp::insert(4, "o")),
                logged(3, TextOp::insert(0, "¡")),
                logged(4, TextOp::delete(1, 1)),
            ],
        },
        "the group's last revision, its operations, trimmed to keep_ops"
    );
}

pub async fn documents_are_kept_apart(repo: &dyn DocumentRepo) {
    save_each(repo, "one", &[(TextOp::insert(0, "1"), "1")], 10).await;
    let two = [
        (TextOp::insert(0, "2"), "2"),
        (TextOp::insert(1, "2"), "22"),
    ];
    save_each(repo, "two", &two, 10).await;
    let one = repo.load("one", 10).await.expect("load").expect("saved");
    assert_eq!(
        one,
        StoredDocument {
            text: "1".to_owned(),
            revision: 1,
            recent: vec![logged(1, TextOp::insert(0, "1"))],
        }
    );
    let two = repo.load("two", 10).await.expect("load").expect("saved");
    assert_eq!(
        (two.text.as_str(), two.revision, two.recent.len()),
        ("22", 2, 2)
    );
}

pub async fn an_empty_group_saves_nothing(repo: &dyn DocumentRepo) {
    repo.append("doc", "text", &[], 10)
        .await
        .expect("nothing to save is no error");
    assert_eq!(repo.load("doc", 10).await.expect("load"), None);
}
