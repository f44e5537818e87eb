//! `letta-app-server-tools diff` as a CI gate: exit codes, `--json` and `--from-git`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

/// A bundle whose one server frame `job_done` has `status`, and whose one client frame `job` has
/// `id` (required) and the optional fields named.
fn bundle(status: Value, optional: &[&str]) -> String {
    let mut properties = json!({"type": {"const": "job"}, "id": {"type": "string"}});
    for name in optional {
        properties[*name] = json!({"type": "string"});
    }
    json!({"definitions": {
        "ClientFrame": {"oneOf": [{"type": "object", "properties": properties, "required": ["type", "id"]}]},
        "ServerFrame": {"oneOf": [{"type": "object", "required": ["type", "status"], "properties": {
            "type": {"const": "job_done"},
            "status": status,
        }}]},
    }})
    .to_string()
}

fn tools(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_letta-app-server-tools"))
        .current_dir(dir)
        .args(["diff"])
        .args(args)
        .output()
        .expect("the tool runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn exit_codes_make_a_ci_gate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("written");
    write("old.json", bundle(json!({"enum": ["ok", "failed"]}), &[]));
    write("compatible.json", bundle(json!({"enum": ["ok", "failed"]}), &["note"]));
    write(
        "breaking.json",
        bundle(json!({"enum": ["ok", "failed", "cancelled"]}), &["note"]),
    );

    let same = tools(dir.path(), &["old.json", "old.json"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert_eq!(
        stdout(&same),
        "old.json -> old.json\n0 changes: 0 breaks-both, 0 breaks-clients, 0 breaks-servers, 0 compatible\n"
    );

    // An optional field added to a command: compatible.
    let compatible = tools(dir.path(), &["old.json", "compatible.json"]);
    assert_eq!(compatible.status.code(), Some(0));
    assert!(stdout(&compatible).contains("compatible      ClientFrame[job].note: optional field added\n"));

    // A value added to an inline (closed) enum of a server frame breaks old clients.
    let breaking = tools(dir.path(), &["old.json", "breaking.json"]);
    assert_eq!(breaking.status.code(), Some(1));
    let report = stdout(&breaking);
    assert!(
        report.starts_with(
            "old.json -> breaking.json\nbreaks-clients  ServerFrame[job_done].status: value \"cancelled\" added\n"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("2 changes: 0 breaks-both, 1 breaks-clients, 0 breaks-servers, 1 compatible\n"),
        "{report}"
    );
    assert_eq!(
        tools(dir.path(), &["--fail-on", "client", "old.json", "breaking.json"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        tools(dir.path(), &["--fail-on", "server", "old.json", "breaking.json"])
            .status
            .code(),
        Some(0)
    );

    // Usage and input errors.
    let missing = tools(dir.path(), &["old.json", "nowhere.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("reading nowhere.json"),
        "{}",
        stderr(&missing)
    );
    write("not-a-bundle.json", "{}".to_owned());
    let invalid = tools(dir.path(), &["old.json", "not-a-bundle.json"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(
        stderr(&invalid).contains("not-a-bundle.json: not a frames schema bundle"),
        "{}",
        stderr(&invalid)
    );
    assert_eq!(tools(dir.path(), &["old.json"]).status.code(), Some(2));
    assert_eq!(
        tools(dir.path(), &["--fail-on", "nobody", "old.json", "old.json"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn json_output() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("old.json"),
        bundle(json!({"type": "string"}), &["note"]),
    )
    .expect("written");
    std::fs::write(
        dir.path().join("new.json"),
        bundle(json!({"type": ["string", "null"]}), &[]),
    )
    .expect("written");
    let output = tools(dir.path(), &["--json", "old.json", "new.json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        report,
        json!({
            "old": "old.json",
            "new": "new.json",
            "changes": [
                {"path": "ClientFrame[job].note", "direction": "client", "kind": "field_removed", "required": false,
                 "class": "compatible", "description": "optional field removed"},
                {"path": "ServerFrame[job_done].status", "direction": "server", "kind": "made_nullable",
                 "class": "breaks-clients", "description": "null now allowed"},
            ],
            "summary": {"breaks-both": 0, "breaks-clients": 1, "breaks-servers": 0, "compatible": 1},
        })
    );
}

#[test]
fn from_git_reads_the_old_bundle_at_a_revision() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(dir.path())
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    };
    git(&["init", "--quiet"]);
    std::fs::write(dir.path().join("README"), "a repository without a schema yet\n").expect("written");
    git(&["add", "README"]);
    git(&["commit", "--quiet", "-m", "first"]);
    let schema = dir.path().join("schema/frames.schema.json");
    std::fs::create_dir_all(schema.parent().expect("a parent")).expect("created");
    std::fs::write(&schema, bundle(json!({"enum": ["ok"]}), &[])).expect("written");
    git(&["add", "schema"]);
    git(&["commit", "--quiet", "-m", "schema"]);

    // The working tree's file is NEW: unchanged, then with a required field the client must send.
    let unchanged = tools(dir.path(), &["--from-git", "HEAD"]);
    assert_eq!(unchanged.status.code(), Some(0), "{}", stderr(&unchanged));
    assert!(stdout(&unchanged).starts_with(&format!("HEAD:schema/frames.schema.json -> {}\n", schema.display())));
    let mut changed: Value = serde_json::from_str(&bundle(json!({"enum": ["ok"]}), &["owner"])).expect("JSON");
    changed["definitions"]["ClientFrame"]["oneOf"][0]["required"] = json!(["type", "id", "owner"]);
    std::fs::write(&schema, changed.to_string()).expect("written");
    let breaking = tools(dir.path(), &["--from-git", "HEAD", "--fail-on", "client"]);
    assert_eq!(breaking.status.code(), Some(1));
    assert!(stdout(&breaking).contains("breaks-clients  ClientFrame[job].owner: required field added\n"));
    // From a subdirectory, and with NEW named.
    let from_below = tools(
        &dir.path().join("schema"),
        &["--from-git", "HEAD", "--fail-on", "server", "frames.schema.json"],
    );
    assert_eq!(from_below.status.code(), Some(0), "{}", stderr(&from_below));

    let unknown = tools(dir.path(), &["--from-git", "no-such-branch"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unknown revision `no-such-branch`"),
        "{}",
        stderr(&unknown)
    );
    let absent = tools(dir.path(), &["--from-git", "HEAD~1"]);
    assert_eq!(absent.status.code(), Some(2));
    assert!(
        stderr(&absent).contains("schema/frames.schema.json does not exist at `HEAD~1`"),
        "{}",
        stderr(&absent)
    );
    assert_eq!(
        tools(dir.path(), &["--from-git", "HEAD", "a.json", "b.json"])
            .status
            .code(),
        Some(2)
    );

    let outside = tempfile::tempdir().expect("a temporary directory");
    let no_repository = tools(outside.path(), &["--from-git", "HEAD"]);
    assert_eq!(no_repository.status.code(), Some(2));
    assert!(
        stderr(&no_repository).contains("is not in a git repository"),
        "{}",
        stderr(&no_repository)
    );
}
