//! `streamctl edit`: typed edits from two users on one document.

use streamhub_testkit::spawn_app;

use crate::streamctl::Session;

#[tokio::test]
async fn typed_inserts_and_deletes_reach_every_editor() {
    let app = spawn_app().await;
    let mut ann = Session::start(
        &app.url(),
        &["--json", "edit", "--doc", "notes", "--user", "ann"],
    );
    let snapshot = ann.json("ann's snapshot").await;
    assert_eq!(snapshot["revision"], 0, "{snapshot}");
    assert_eq!(snapshot["content"], "");
    assert!(snapshot["operation"].is_null(), "a snapshot: {snapshot}");

    ann.type_line("insert 0 héllo world");
    let inserted = ann
        .json_until("ann's insert", |update| update["revision"] == 1)
        .await;
    assert_eq!(inserted["content"], "héllo world");
    assert_eq!(inserted["operation"]["type"], "INSERT");

    let mut bob = Session::start(&app.url(), &["edit", "--doc", "notes", "--user", "bob"]);
    let seen = bob.line_containing("snapshot").await;
    assert_eq!(seen, "rev 1 snapshot [ann, bob]: \"héllo world\"");

    // Positions count characters: deleting 1 at 1 removes the 'é'.
    bob.type_line("delete 1 1");
    let deleted = ann
        .json_until("bob's delete", |update| update["revision"] == 2)
        .await;
    assert_eq!(deleted["content"], "hllo world");
    assert_eq!(deleted["operation"]["user"], "bob");
    let printed = bob.line_containing("rev 2").await;
    assert_eq!(printed, "rev 2 bob DELETE 1 1 [ann, bob]: \"hllo world\"");

    bob.type_line("insert nowhere x");
    bob.stderr_containing("insert position must be a whole number")
        .await;

    bob.close_input();
    bob.finish().await.success();
    ann.type_line("exit");
    ann.finish().await.success();
}

#[tokio::test]
async fn an_edit_out_of_range_ends_with_the_server_s_error() {
    let app = spawn_app().await;
    let mut ann = Session::start(&app.url(), &["edit", "--doc", "d", "--user", "ann"]);
    ann.line_containing("snapshot").await;
    ann.type_line("delete 5 1");
    ann.finish().await.failed_with(1, "INVALID_ARGUMENT");
}
