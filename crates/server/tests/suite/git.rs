//! Git branches (docs/protocol.md §4.12): `search_branches` and `checkout_branch` on real
//! repositories made by the test.

use std::path::Path;
use std::process::Command;

use letta_app_server_protocol::DevicePermissionMode;
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::Client;

/// Runs `git args` in `directory`; its trimmed output.
fn git(directory: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `<data>/origin` with `main` and `feature/terminal` (which adds `terminal.txt`), and
/// `<data>/project`, its clone, on `main`.
fn repositories(data: &Path) {
    let origin = data.join("origin");
    std::fs::create_dir(&origin).expect("a directory");
    git(&origin, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(origin.join("README"), "hello\n").expect("a file");
    git(&origin, &["add", "README"]);
    git(&origin, &["commit", "--quiet", "-m", "first"]);
    git(&origin, &["switch", "--quiet", "--create", "feature/terminal"]);
    std::fs::write(origin.join("terminal.txt"), "a terminal\n").expect("a file");
    git(&origin, &["add", "terminal.txt"]);
    git(&origin, &["commit", "--quiet", "-m", "terminal"]);
    git(&origin, &["switch", "--quiet", "main"]);
    git(data, &["clone", "--quiet", "origin", "project"]);
}

async fn search(client: &mut Client, query: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "search_branches", "request_id": "sb", "query": query, "cwd": "project"});
    frame
        .as_object_mut()
        .expect("an object")
        .extend(extra.as_object().cloned().unwrap_or_default());
    client.send(frame).await;
    client
        .recv_until_type("search_branches_response")
        .await
        .pop()
        .expect("an answer")
}

async fn checkout(client: &mut Client, branch: &str, create: bool) -> Value {
    client
        .send(
            json!({"type": "checkout_branch", "request_id": "cb", "branch": branch, "create": create,
            "cwd": "project"}),
        )
        .await;
    client
        .recv_until_type("checkout_branch_response")
        .await
        .pop()
        .expect("an answer")
}

fn found(name: &str, is_current: bool, is_remote: bool) -> Value {
    json!({"name": name, "is_current": is_current, "is_remote": is_remote})
}

#[tokio::test]
async fn branches_are_searched_created_and_switched_with_the_worktree() {
    let server = TestServer::start().await;
    repositories(server.data.path());
    let project = server.data.path().join("project");
    let mut client = server.client().await;

    // Local branches first, then remote-tracking ones without the remote's HEAD.
    assert_eq!(
        search(&mut client, "", json!({})).await,
        json!({"type": "search_branches_response", "request_id": "sb", "success": true, "branches": [
            found("main", true, false),
            found("origin/feature/terminal", false, true),
            found("origin/main", false, true),
        ]})
    );
    assert_eq!(
        search(&mut client, "FEAT", json!({})).await["branches"],
        json!([found("origin/feature/terminal", false, true)]),
        "a substring, ignoring case"
    );
    assert_eq!(
        search(&mut client, "", json!({"max_results": 1})).await["branches"],
        json!([found("main", true, false)])
    );

    // Create: a new branch at the current commit, checked out.
    assert_eq!(
        checkout(&mut client, "feature/files", true).await,
        json!({"type": "checkout_branch_response", "request_id": "cb", "success": true,
            "branch": "feature/files"})
    );
    assert_eq!(git(&project, &["symbolic-ref", "--short", "HEAD"]), "feature/files");
    assert_eq!(
        search(&mut client, "files", json!({})).await["branches"],
        json!([found("feature/files", true, false)])
    );

    // A remote-tracking branch becomes a local one tracking it; the worktree follows.
    let switched = checkout(&mut client, "origin/feature/terminal", false).await;
    assert_eq!(
        (&switched["success"], &switched["branch"]),
        (&json!(true), &json!("feature/terminal"))
    );
    assert!(project.join("terminal.txt").exists());
    assert_eq!(
        git(&project, &["rev-parse", "--abbrev-ref", "feature/terminal@{upstream}"]),
        "origin/feature/terminal"
    );
    // And again, now that the local branch exists.
    checkout(&mut client, "main", false).await;
    assert!(
        !project.join("terminal.txt").exists(),
        "the worktree follows the switch"
    );
    let again = checkout(&mut client, "origin/feature/terminal", false).await;
    assert_eq!(
        (&again["success"], &again["branch"]),
        (&json!(true), &json!("feature/terminal"))
    );

    // A local change that a switch would overwrite: git refuses, and nothing changes.
    std::fs::write(project.join("terminal.txt"), "edited\n").expect("a file");
    let refused = checkout(&mut client, "main", false).await;
    assert_eq!(
        (&refused["success"], &refused["branch"]),
        (&json!(false), &json!("main"))
    );
    let error = refused["error"].as_str().expect("an error");
    assert!(
        error.starts_with("error: Your local changes to the following files would be overwritten by checkout"),
        "{error}"
    );
    assert_eq!(git(&project, &["symbolic-ref", "--short", "HEAD"]), "feature/terminal");
}

#[tokio::test]
async fn git_refusals_are_answered_with_gits_own_words_whatever_the_mode() {
    // Permission modes govern the model's tools, not the controller's commands.
    let server = TestServer::start_with(|config| config.default_mode = DevicePermissionMode::Strict).await;
    repositories(server.data.path());
    let mut client = server.client().await;
    let created = checkout(&mut client, "strict-mode", true).await;
    assert_eq!(created["success"], true, "{created}");

    for (branch, create, error) in [
        ("nope", false, "fatal: invalid reference: nope"),
        ("main", true, "fatal: a branch named 'main' already exists"),
        ("--force", true, "fatal: '--force' is not a valid branch name"),
        ("bad..name", true, "fatal: 'bad..name' is not a valid branch name"),
    ] {
        assert_eq!(
            checkout(&mut client, branch, create).await,
            json!({"type": "checkout_branch_response", "request_id": "cb", "success": false,
                "branch": branch, "error": error})
        );
    }

    // Not a repository: the boot working directory of this server is none.
    client
        .send(json!({"type": "search_branches", "request_id": "sb", "query": ""}))
        .await;
    let answer = client
        .recv_until_type("search_branches_response")
        .await
        .pop()
        .expect("an answer");
    assert_eq!((&answer["success"], &answer["branches"]), (&json!(false), &json!([])));
    let error = answer["error"].as_str().expect("an error");
    assert!(error.starts_with("fatal: not a git repository"), "{error}");
}
