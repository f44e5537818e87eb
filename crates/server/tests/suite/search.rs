//! The search group (docs/protocol.md §4.1): `search_files` (a fuzzy path finder over a cached,
//! `.gitignore`-honouring index) and `grep_in_files` (content search), on real directories.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::Client;

/// Sends `frame` and returns the answer of type `response`.
async fn ask(client: &mut Client, frame: Value, response: &str) -> Value {
    client.send(frame).await;
    client.recv_until_type(response).await.pop().expect("the answer")
}

/// Writes `files` (path, content) under `root`.
fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("test fixture");
        std::fs::write(path, content).expect("test fixture");
    }
}

/// A project under the boot working directory (the data directory): sources, docs, a hidden
/// `.github/ci.yml`, and a `.gitignore` that hides `target/` and `*.log`.
fn project(root: &Path) -> String {
    let project = root.join("project");
    write(
        &project,
        &[
            ("src/main.rs", ""),
            ("src/lib.rs", ""),
            ("crates/x/src/main.rs", ""),
            ("docs/maintenance.md", ""),
            ("README.md", ""),
            (".github/ci.yml", ""),
            ("target/debug/main.rs", ""),
            ("notes.log", ""),
            (".gitignore", "target/\n*.log\n"),
        ],
    );
    project.display().to_string()
}

/// The paths of a `search_files_response`, after checking its shape.
fn paths(answer: &Value) -> Vec<&str> {
    assert_eq!(answer["success"], true, "{answer}");
    answer["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|file| {
            assert_eq!(file["type"], "file");
            file["path"].as_str().expect("a path")
        })
        .collect()
}

/// Sends the command `kind` with `query` and the fields of `extra`, and returns its answer.
async fn command(client: &mut Client, kind: &str, request_id: &str, query: &str, extra: Value) -> Value {
    let mut frame = json!({"type": kind, "request_id": request_id, "query": query});
    let fields = extra.as_object().cloned().unwrap_or_default();
    frame.as_object_mut().expect("object").extend(fields);
    ask(client, frame, &format!("{kind}_response")).await
}

async fn search(client: &mut Client, query: &str, extra: Value) -> Value {
    command(client, "search_files", "sf", query, extra).await
}

#[tokio::test]
async fn search_files_ranks_fuzzy_matches_and_honours_gitignore() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let mut client = server.client().await;

    let answer = search(&mut client, "main.rs", json!({"cwd": root})).await;
    assert_eq!(
        answer,
        json!({"type": "search_files_response", "request_id": "sf", "success": true,
            "files": [{"path": "src/main.rs", "type": "file"}, {"path": "crates/x/src/main.rs", "type": "file"}]})
    );
    // Characters in order, not a substring; the shortest path first among equals.
    let fuzzy = search(&mut client, "srcmain", json!({"cwd": root})).await;
    assert_eq!(paths(&fuzzy), ["src/main.rs", "crates/x/src/main.rs"]);
    // Hidden files are found; ignored ones are not.
    assert_eq!(
        paths(&search(&mut client, "ci.yml", json!({"cwd": root})).await),
        [".github/ci.yml"]
    );
    assert!(paths(&search(&mut client, "notes.log", json!({"cwd": root})).await).is_empty());
    assert!(paths(&search(&mut client, "debug", json!({"cwd": root})).await).is_empty());
    // fzf syntax: every word must match; `!` excludes.
    let words = search(&mut client, "main.rs !crates", json!({"cwd": root})).await;
    assert_eq!(paths(&words), ["src/main.rs"]);
    // `max_results` (default 5) is clamped to 1..=200, as real Letta does.
    assert_eq!(
        paths(&search(&mut client, "main.rs", json!({"cwd": root, "max_results": 1})).await),
        ["src/main.rs"]
    );
    assert_eq!(
        paths(&search(&mut client, "main.rs", json!({"cwd": root, "max_results": 0})).await).len(),
        1
    );
    let huge = search(&mut client, "", json!({"cwd": root, "max_results": u64::MAX})).await;
    assert_eq!(paths(&huge).len(), 7);
    assert_eq!(paths(&search(&mut client, "", json!({"cwd": root})).await).len(), 5);

    // A relative cwd, and no cwd: the boot working directory (here the data directory).
    assert_eq!(
        paths(&search(&mut client, "main.rs", json!({"cwd": "project/src"})).await),
        ["main.rs"]
    );
    let from_boot = search(&mut client, "project/src/main.rs", json!({})).await;
    assert_eq!(paths(&from_boot)[0], "project/src/main.rs");
}

#[tokio::test]
async fn an_empty_query_lists_the_most_recently_modified_files() {
    let server = TestServer::start().await;
    let root = server.data.path().join("recent");
    write(
        &root,
        &[("old.txt", ""), ("new.txt", ""), ("mid/dle.txt", ""), ("older.txt", "")],
    );
    for (name, age) in [
        ("old.txt", 300),
        ("new.txt", 10),
        ("mid/dle.txt", 100),
        ("older.txt", 400),
    ] {
        let file = std::fs::File::options()
            .write(true)
            .open(root.join(name))
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(age))
            .expect("mtime");
    }
    let mut client = server.client().await;
    let recent = search(&mut client, "  ", json!({"cwd": root, "max_results": 3})).await;
    assert_eq!(paths(&recent), ["new.txt", "mid/dle.txt", "old.txt"]);
}

#[tokio::test]
async fn the_index_is_refreshed_in_the_background() {
    let server = TestServer::start().await;
    let root = server.data.path().join("growing");
    write(&root, &[("first.rs", "")]);
    let mut client = server.client().await;
    assert_eq!(
        paths(&search(&mut client, "second", json!({"cwd": root})).await),
        Vec::<&str>::new()
    );
    write(&root, &[("second.rs", "")]);
    // Fresh for 2 s: the cached index is served as it is.
    assert!(paths(&search(&mut client, "second", json!({"cwd": root})).await).is_empty());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Then a search starts a rebuild, and a later one sees the new file.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if paths(&search(&mut client, "second", json!({"cwd": root})).await) == ["second.rs"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the index was never refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn search_files_fails_on_a_cwd_that_is_not_a_directory() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let mut client = server.client().await;
    let missing = search(&mut client, "x", json!({"cwd": "/does/not/exist"})).await;
    assert_eq!(
        missing,
        json!({"type": "search_files_response", "request_id": "sf", "success": false, "files": [],
            "error": "ENOENT: no such file or directory, scandir '/does/not/exist'"})
    );
    let file = format!("{root}/README.md");
    let not_a_directory = search(&mut client, "x", json!({"cwd": file})).await;
    assert_eq!(not_a_directory["success"], false);
    assert_eq!(
        not_a_directory["error"],
        format!("ENOTDIR: not a directory, scandir '{file}'")
    );
    // A query longer than a path is refused whole.
    client
        .send(json!({"type": "search_files", "request_id": "long", "query": "x".repeat(5000)}))
        .await;
    let refused = client.recv_until_type("error").await.pop().expect("an error");
    assert_eq!(refused["code"], "limit_exceeded");
    assert_eq!(refused["request_id"], "long");
}

/// Files for `grep_in_files`.
fn sources(root: &Path) -> String {
    let project = root.join("grep");
    write(
        &project,
        &[
            ("a.txt", "zero\nHello world\ntwo\nthree hello\nfour\nfive\nsix\n"),
            ("src/b.rs", "fn hello() {}\nfn othello() {}\n"),
            ("src/c.rs", "😀 héllo hello\n"),
            ("ignored.log", "hello\n"),
            (".hidden/d.txt", "hello\n"),
            (".gitignore", "*.log\n"),
        ],
    );
    project.display().to_string()
}

async fn grep(client: &mut Client, query: &str, extra: Value) -> Value {
    command(client, "grep_in_files", "gf", query, extra).await
}

/// `path:line:column-column_end` of each match.
fn hits(answer: &Value) -> Vec<String> {
    assert_eq!(answer["success"], true, "{answer}");
    answer["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| {
            format!(
                "{}:{}:{}-{}",
                m["path"].as_str().expect("path"),
                m["line"],
                m["column"],
                m["column_end"]
            )
        })
        .collect()
}

#[tokio::test]
async fn grep_in_files_answers_lines_with_columns_and_context() {
    let server = TestServer::start().await;
    let root = sources(server.data.path());
    let mut client = server.client().await;

    // Literal and case-insensitive by default, two lines of context; ignored and hidden files
    // are not searched; paths in order, relative to cwd.
    let answer = grep(&mut client, "hello", json!({"cwd": root})).await;
    assert_eq!(
        hits(&answer),
        [
            "a.txt:2:1-6",
            "a.txt:4:7-12",
            "src/b.rs:1:4-9",
            "src/b.rs:2:6-11",
            "src/c.rs:1:10-15"
        ]
    );
    assert_eq!(answer["total_matches"], 5);
    assert_eq!(answer["total_files"], 3);
    assert_eq!(answer["truncated"], false);
    // The lines directly around each match, matching or not.
    assert_eq!(
        answer["matches"][0],
        json!({"path": "a.txt", "line": 2, "column": 1, "column_end": 6, "text": "Hello world",
            "before": ["zero"], "after": ["two", "three hello"]})
    );
    assert_eq!(answer["matches"][1]["before"], json!(["Hello world", "two"]));
    assert_eq!(answer["matches"][1]["after"], json!(["four", "five"]));
    // Columns count UTF-16 code units, as JavaScript does: 😀 is two, é one.
    assert_eq!(answer["matches"][4]["text"], "😀 héllo hello");

    // context_lines 0: no before/after at all.
    let bare = grep(&mut client, "three", json!({"cwd": root, "context_lines": 0})).await;
    assert_eq!(
        bare["matches"],
        json!([{"path": "a.txt", "line": 4, "column": 1, "column_end": 6, "text": "three hello"}])
    );

    // Case, whole words, regular expressions, globs.
    let cased = grep(&mut client, "Hello", json!({"cwd": root, "case_sensitive": true})).await;
    assert_eq!(hits(&cased), ["a.txt:2:1-6"]);
    let words = grep(
        &mut client,
        "hello",
        json!({"cwd": root, "whole_word": true, "glob": "*.rs"}),
    )
    .await;
    assert_eq!(hits(&words), ["src/b.rs:1:4-9", "src/c.rs:1:10-15"]);
    let literal = grep(&mut client, "h.llo", json!({"cwd": root})).await;
    assert!(hits(&literal).is_empty());
    let regex = grep(
        &mut client,
        "h.llo",
        json!({"cwd": root, "is_regex": true, "glob": "src/**"}),
    )
    .await;
    assert_eq!(hits(&regex), ["src/b.rs:1:4-9", "src/b.rs:2:6-11", "src/c.rs:1:4-9"]);
    let excluded = grep(&mut client, "hello", json!({"cwd": root, "glob": "!*.rs"})).await;
    assert_eq!(hits(&excluded), ["a.txt:2:1-6", "a.txt:4:7-12"]);

    // max_results: the totals still count everything.
    let first = grep(&mut client, "hello", json!({"cwd": root, "max_results": 2})).await;
    assert_eq!(hits(&first), ["a.txt:2:1-6", "a.txt:4:7-12"]);
    assert_eq!(
        (first["total_matches"].clone(), first["total_files"].clone()),
        (json!(5), json!(3))
    );
    assert_eq!(first["truncated"], true);
    let none = grep(&mut client, "hello", json!({"cwd": root, "max_results": 0})).await;
    assert_eq!((hits(&none).len(), none["truncated"].clone()), (0, json!(true)));
    let huge = grep(
        &mut client,
        "hello",
        json!({"cwd": root, "max_results": u64::MAX, "context_lines": u64::MAX}),
    )
    .await;
    assert_eq!(hits(&huge).len(), 5);

    // A file as cwd is searched itself, named by its name.
    let one = grep(&mut client, "hello", json!({"cwd": format!("{root}/src/b.rs")})).await;
    assert_eq!(hits(&one), ["b.rs:1:4-9", "b.rs:2:6-11"]);
    // An empty query finds nothing, as on real Letta.
    let empty = grep(&mut client, "", json!({"cwd": root})).await;
    assert_eq!(
        empty,
        json!({"type": "grep_in_files_response", "request_id": "gf", "success": true, "matches": [],
            "total_matches": 0, "total_files": 0, "truncated": false})
    );
}

#[tokio::test]
async fn grep_in_files_fails_on_bad_input() {
    let server = TestServer::start().await;
    let root = sources(server.data.path());
    let mut client = server.client().await;
    let failed = |error: &str| {
        json!({"type": "grep_in_files_response", "request_id": "gf", "success": false, "matches": [],
            "total_matches": 0, "total_files": 0, "truncated": false, "error": error})
    };

    let missing = grep(&mut client, "x", json!({"cwd": "/does/not/exist"})).await;
    assert_eq!(
        missing,
        failed("ENOENT: no such file or directory, scandir '/does/not/exist'")
    );
    let regex = grep(&mut client, "(", json!({"cwd": root, "is_regex": true})).await;
    assert_eq!(regex["success"], false);
    assert!(
        regex["error"].as_str().expect("error").contains("regex parse error"),
        "{regex}"
    );
    // The same text as a literal is fine.
    assert_eq!(grep(&mut client, "(", json!({"cwd": root})).await["success"], true);
    let glob = grep(&mut client, "x", json!({"cwd": root, "glob": "a[b"})).await;
    assert_eq!(glob["success"], false);
    assert!(
        glob["error"].as_str().expect("error").starts_with("Invalid glob"),
        "{glob}"
    );
}

#[tokio::test]
async fn a_long_line_is_cut_and_a_large_answer_stays_bounded() {
    let server = TestServer::start().await;
    let root = server.data.path().join("long");
    let line = format!("{}needle{}\n", "a".repeat(1500), "b".repeat(10));
    write(&root, &[("long.txt", &line)]);
    let mut client = server.client().await;
    let answer = grep(&mut client, "needle", json!({"cwd": root})).await;
    let found = &answer["matches"][0];
    // 1,000 characters of the line; the columns count from the start of the whole line.
    assert_eq!(found["text"].as_str().expect("text").len(), 1000);
    assert_eq!(
        (found["column"].clone(), found["column_end"].clone()),
        (json!(1501), json!(1507))
    );
}
