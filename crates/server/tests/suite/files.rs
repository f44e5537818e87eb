//! The files group (docs/protocol.md §4.1): `list_in_directory`, `get_tree`, `read_file`,
//! `write_file` and an editor's `file_ops`, on a real directory, with real Letta's error texts.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime};

/// Sends `frame` and returns the answer of type `response`.
async fn ask(client: &mut Client, frame: Value, response: &str) -> Value {
    client.send(frame).await;
    client.recv_until_type(response).await.pop().expect("the answer")
}

/// A project: `src/` (`a.rs`, `deep/b.rs`), `docs/`, `.hidden`, `README.md`, `z.txt`.
fn project(root: &Path) -> String {
    let project = root.join("project");
    std::fs::create_dir_all(project.join("src/deep")).expect("test fixture");
    std::fs::create_dir_all(project.join("docs")).expect("test fixture");
    std::fs::write(project.join("src/a.rs"), "fn a() {}\n").expect("test fixture");
    std::fs::write(project.join("src/deep/b.rs"), "fn b() {}\n").expect("test fixture");
    std::fs::write(project.join(".hidden"), "").expect("test fixture");
    std::fs::write(project.join("README.md"), "# hello\n").expect("test fixture");
    std::fs::write(project.join("z.txt"), "z").expect("test fixture");
    project.display().to_string()
}

#[tokio::test]
async fn list_in_directory_pages_folders_then_files() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let mut client = server.client().await;

    let all = ask(
        &mut client,
        json!({"type": "list_in_directory", "request_id": "ld-1", "path": root, "include_files": true}),
        "list_in_directory_response",
    )
    .await;
    assert_eq!(
        all,
        json!({"type": "list_in_directory_response", "request_id": "ld-1", "success": true, "path": root,
            "folders": ["docs", "src"], "files": [".hidden", "README.md", "z.txt"], "hasMore": false, "total": 5})
    );

    // A window across the folders and the files, as in real Letta's capture.
    let page = ask(
        &mut client,
        json!({"type": "list_in_directory", "request_id": "ld-2", "path": root, "include_files": true,
            "offset": 1, "limit": 2}),
        "list_in_directory_response",
    )
    .await;
    assert_eq!(page["folders"], json!(["src"]));
    assert_eq!(page["files"], json!([".hidden"]));
    assert_eq!(page["hasMore"], true);

    // Folders only; without a request_id the answer comes uncorrelated.
    let folders = ask(
        &mut client,
        json!({"type": "list_in_directory", "path": root}),
        "list_in_directory_response",
    )
    .await;
    assert_eq!(
        folders,
        json!({"type": "list_in_directory_response", "success": true, "path": root,
            "folders": ["docs", "src"], "hasMore": false, "total": 2})
    );

    // Relative to the boot working directory (the data directory here).
    let relative = ask(
        &mut client,
        json!({"type": "list_in_directory", "request_id": "ld-3", "path": "project/src", "include_files": true}),
        "list_in_directory_response",
    )
    .await;
    assert_eq!(relative["folders"], json!(["deep"]));
    assert_eq!(relative["files"], json!(["a.rs"]));

    for (path, error) in [
        (
            format!("{root}/missing"),
            format!("ENOENT: no such file or directory, scandir '{root}/missing'"),
        ),
        (
            format!("{root}/z.txt"),
            format!("ENOTDIR: not a directory, scandir '{root}/z.txt'"),
        ),
    ] {
        let answer = ask(
            &mut client,
            json!({"type": "list_in_directory", "request_id": "ld-x", "path": path}),
            "list_in_directory_response",
        )
        .await;
        assert_eq!(
            answer,
            json!({"type": "list_in_directory_response", "request_id": "ld-x", "success": false, "path": path,
                "folders": [], "hasMore": false, "error": error})
        );
    }
}

#[tokio::test]
async fn get_tree_lists_to_its_depth() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let mut client = server.client().await;

    let shallow = ask(
        &mut client,
        json!({"type": "get_tree", "request_id": "gt-1", "path": format!("{root}/src"), "depth": 1}),
        "get_tree_response",
    )
    .await;
    assert_eq!(
        shallow,
        json!({"type": "get_tree_response", "request_id": "gt-1", "success": true, "path": format!("{root}/src"),
            "entries": [{"path": "a.rs", "type": "file"}, {"path": "deep", "type": "dir"}], "has_more_depth": true})
    );

    let deep = ask(
        &mut client,
        json!({"type": "get_tree", "request_id": "gt-2", "path": format!("{root}/src"), "depth": 2}),
        "get_tree_response",
    )
    .await;
    assert_eq!(
        deep["entries"],
        json!([{"path": "a.rs", "type": "file"}, {"path": "deep", "type": "dir"},
            {"path": "deep/b.rs", "type": "file"}])
    );
    assert_eq!(deep["has_more_depth"], false);

    let missing = ask(
        &mut client,
        json!({"type": "get_tree", "request_id": "gt-3", "path": "/does/not/exist", "depth": 1}),
        "get_tree_response",
    )
    .await;
    assert_eq!(
        missing,
        json!({"type": "get_tree_response", "request_id": "gt-3", "success": false, "path": "/does/not/exist",
            "entries": [], "has_more_depth": false,
            "error": "ENOENT: no such file or directory, scandir '/does/not/exist'"})
    );
}

#[tokio::test]
async fn read_file_answers_text_bytes_and_errors() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let binary = format!("{root}/logo.png");
    std::fs::write(&binary, [0x89, b'P', b'N', b'G', 0xff, 0x00]).expect("test fixture");
    let mut client = server.client().await;

    let text = ask(
        &mut client,
        json!({"type": "read_file", "request_id": "rf-1", "path": format!("{root}/README.md")}),
        "read_file_response",
    )
    .await;
    assert_eq!(
        text,
        json!({"type": "read_file_response", "request_id": "rf-1", "success": true,
            "path": format!("{root}/README.md"), "content": "# hello\n", "encoding": "utf8"})
    );

    let bytes = ask(
        &mut client,
        json!({"type": "read_file", "request_id": "rf-2", "path": binary, "encoding": "base64"}),
        "read_file_response",
    )
    .await;
    assert_eq!(bytes["content"], "iVBOR/8A");
    assert_eq!(bytes["encoding"], "base64");

    // A symbolic link is read through.
    std::os::unix::fs::symlink(format!("{root}/README.md"), format!("{root}/link.md")).expect("test fixture");
    let linked = ask(
        &mut client,
        json!({"type": "read_file", "request_id": "rf-3", "path": format!("{root}/link.md")}),
        "read_file_response",
    )
    .await;
    assert_eq!(linked["content"], "# hello\n");

    let large = format!("{root}/large.bin");
    std::fs::File::create(&large)
        .expect("test fixture")
        .set_len(4 * 1024 * 1024 + 1)
        .expect("test fixture");
    for (path, error) in [
        (
            format!("{root}/missing.txt"),
            format!("ENOENT: no such file or directory, open '{root}/missing.txt'"),
        ),
        (
            format!("{root}/src"),
            "EISDIR: illegal operation on a directory, read".to_owned(),
        ),
        (
            binary.clone(),
            "File is not valid UTF-8 text; read it with encoding \"base64\"".to_owned(),
        ),
        (
            large.clone(),
            "File too large: 4194305 bytes (this server reads at most 4194304)".to_owned(),
        ),
    ] {
        let answer = ask(
            &mut client,
            json!({"type": "read_file", "request_id": "rf-x", "path": path}),
            "read_file_response",
        )
        .await;
        assert_eq!(
            answer,
            json!({"type": "read_file_response", "request_id": "rf-x", "success": false, "path": path,
                "content": null, "error": error})
        );
    }
}

#[tokio::test]
async fn write_file_and_file_ops_overwrite_whatever_the_permission_mode() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let mut client = server.client().await;
    // The controller, not the model, sends these: the strictest permission mode (which asks
    // before any tool of the agent's runs) does not apply to them.
    let runtime = start_runtime(&mut client).await;
    client
        .send(json!({"type": "change_device_state", "runtime": runtime,
            "payload": {"mode": "strict"}}))
        .await;

    let path = format!("{root}/notes.txt");
    let written = ask(
        &mut client,
        json!({"type": "write_file", "request_id": "wf-1", "path": path, "content": "one\n"}),
        "write_file_response",
    )
    .await;
    assert_eq!(
        written,
        json!({"type": "write_file_response", "request_id": "wf-1", "success": true, "path": path})
    );
    assert_eq!(std::fs::read_to_string(&path).expect("test fixture"), "one\n");

    for (target, error) in [
        (
            format!("{root}/no/such/dir.txt"),
            format!("ENOENT: no such file or directory, open '{root}/no/such/dir.txt'"),
        ),
        (
            format!("{root}/src"),
            format!("EISDIR: illegal operation on a directory, open '{root}/src'"),
        ),
    ] {
        let answer = ask(
            &mut client,
            json!({"type": "write_file", "request_id": "wf-x", "path": target, "content": "x"}),
            "write_file_response",
        )
        .await;
        assert_eq!(
            answer,
            json!({"type": "write_file_response", "request_id": "wf-x", "success": false, "path": target,
                "error": error})
        );
    }

    // An editor's operations with the document's content: the file takes it, nothing answers.
    client
        .send(json!({"type": "file_ops", "path": path, "cg_entries": [],
            "ops": [{"type": "ins", "pos": 4, "content": "two\n"}], "source": "window-1",
            "document_content": "one\ntwo\n"}))
        .await;
    let info = ask(
        &mut client,
        json!({"type": "app_server_info", "request_id": "after"}),
        "app_server_info_response",
    )
    .await;
    assert_eq!(info["request_id"], "after");
    assert_eq!(std::fs::read_to_string(&path).expect("test fixture"), "one\ntwo\n");

    // One that cannot be written is reported in an `error` frame.
    client
        .send(
            json!({"type": "file_ops", "path": format!("{root}/src"), "cg_entries": [], "ops": [],
            "source": "window-1", "document_content": "x"}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().expect("the error");
    assert_eq!(
        error,
        json!({"type": "error", "code": "internal", "frame_type": "file_ops",
            "message": format!("EISDIR: illegal operation on a directory, open '{root}/src'")})
    );
}

/// An `edit_file` of `path`, with `extra` fields.
fn edit(request_id: &str, path: &str, old: &str, new: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "edit_file", "request_id": request_id, "file_path": path,
        "old_string": old, "new_string": new});
    frame
        .as_object_mut()
        .expect("an object")
        .extend(extra.as_object().cloned().unwrap_or_default());
    frame
}

#[tokio::test]
async fn edit_file_replaces_once_all_or_the_expected_count() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let path = format!("{root}/code.rs");
    std::fs::write(&path, "let x = 1;\nlet y = x;\nx + x\n").expect("test fixture");
    let mut client = server.client().await;

    // The new content comes first, without envelope, as on real Letta Code.
    client
        .send(edit("ef-1", &path, "let y = x;", "let y = x * 2;", json!({})))
        .await;
    assert_eq!(
        client.recv_until_type("edit_file_response").await,
        [
            json!({"type": "file_ops", "path": path, "cg_entries": [], "ops": [], "source": "agent",
                "document_content": "let x = 1;\nlet y = x * 2;\nx + x\n"}),
            json!({"type": "edit_file_response", "request_id": "ef-1", "success": true, "file_path": path,
                "message": format!("Successfully replaced 1 occurrence in {path}"), "replacements": 1,
                "start_line": 2})
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("test fixture"),
        "let x = 1;\nlet y = x * 2;\nx + x\n"
    );

    let all = ask(
        &mut client,
        edit("ef-2", &path, "x", "value", json!({"replace_all": true})),
        "edit_file_response",
    )
    .await;
    assert_eq!(
        (
            &all["success"],
            &all["replacements"],
            &all["start_line"],
            &all["message"]
        ),
        (
            &json!(true),
            &json!(4),
            &json!(1),
            &json!(format!("Successfully replaced 4 occurrences in {path}"))
        )
    );

    // `expected_replacements` replaces every occurrence when the count is right, and fails the
    // edit, changing nothing, when it is not.
    // (A failed edit sends no `file_ops`.)
    client
        .send(edit("ef-3", &path, "value", "v", json!({"expected_replacements": 3})))
        .await;
    assert_eq!(
        client.recv_until_type("edit_file_response").await,
        [
            json!({"type": "edit_file_response", "request_id": "ef-3", "success": false, "file_path": path,
            "message": null, "replacements": 0,
            "error": "Expected 3 occurrences but found 4. Update old_string to be more specific, or set \
                replace_all/expected_replacements correctly."})
        ]
    );
    let counted = ask(
        &mut client,
        edit("ef-4", &path, "value", "v", json!({"expected_replacements": 4})),
        "edit_file_response",
    )
    .await;
    assert_eq!(
        (&counted["success"], &counted["replacements"]),
        (&json!(true), &json!(4))
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("test fixture"),
        "let v = 1;\nlet y = v * 2;\nv + v\n"
    );
    let zero = ask(
        &mut client,
        edit("ef-5", &path, "v", "w", json!({"expected_replacements": 0})),
        "edit_file_response",
    )
    .await;
    assert_eq!(
        zero["error"],
        "expected_replacements must be a positive integer when provided."
    );

    // Relative to the boot working directory; the message names the file it resolved to.
    let relative = ask(
        &mut client,
        edit("ef-6", "project/code.rs", "let y", "let z", json!({})),
        "edit_file_response",
    )
    .await;
    assert_eq!(
        relative["message"],
        format!(
            "Successfully replaced 1 occurrence in {}",
            Path::new(&server.data.path().join("project/code.rs")).display()
        )
    );
}

#[tokio::test]
async fn edit_file_keeps_crlf_line_endings() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let path = format!("{root}/win.txt");
    std::fs::write(&path, "one\r\ntwo\r\nthree\r\n").expect("test fixture");
    let mut client = server.client().await;
    let answer = ask(
        &mut client,
        edit("ef-1", &path, "two\nthree", "2\n3", json!({})),
        "edit_file_response",
    )
    .await;
    assert_eq!((&answer["success"], &answer["start_line"]), (&json!(true), &json!(2)));
    assert_eq!(
        std::fs::read_to_string(&path).expect("test fixture"),
        "one\r\n2\r\n3\r\n"
    );
}

#[tokio::test]
async fn edit_file_failures_answer_real_lettas_texts_and_change_nothing() {
    let server = TestServer::start().await;
    let root = project(server.data.path());
    let boot = server.data.path().display().to_string();
    let path = format!("{root}/twice.txt");
    std::fs::write(&path, "same\nsame\n  indented line\n").expect("test fixture");
    let large = format!("{root}/large.txt");
    std::fs::write(&large, "a".repeat(1024 * 1024)).expect("test fixture");
    let mut client = server.client().await;

    for (target, old, new, extra, error) in [
        (
            path.clone(),
            "absent",
            "x",
            json!({}),
            "String to replace not found in file.\nString: absent\nPossible mismatch reasons:\n\
             - The snippet may be stale; re-read the file and copy exact text."
                .to_owned(),
        ),
        (
            path.clone(),
            "indented line \n",
            "x",
            json!({}),
            "String to replace not found in file.\nString: indented line \n\nPossible mismatch reasons:\n\
             - Leading or trailing whitespace differs from the file."
                .to_owned(),
        ),
        (
            path.clone(),
            "same",
            "other",
            json!({}),
            "Expected 1 occurrence but found 2. Update old_string to be more specific, or set \
             replace_all/expected_replacements correctly."
                .to_owned(),
        ),
        (
            path.clone(),
            "",
            "x",
            json!({}),
            "old_string cannot be empty. Provide the exact text you want to replace.".to_owned(),
        ),
        (
            format!("{root}/missing.txt"),
            "same",
            "same",
            json!({}),
            "No changes to make: old_string and new_string are exactly the same.".to_owned(),
        ),
        (
            format!("{root}/missing.txt"),
            "a",
            "b",
            json!({}),
            format!("File does not exist. Attempted path: {root}/missing.txt. Current working directory: {boot}"),
        ),
        (
            format!("{root}/src"),
            "a",
            "b",
            json!({}),
            format!("Path is a directory: {root}/src"),
        ),
        (
            large.clone(),
            "a",
            "bbbbbbbb",
            json!({"replace_all": true}),
            "The edited file would be 8388608 bytes (this server writes at most 4194304)".to_owned(),
        ),
    ] {
        let answer = ask(
            &mut client,
            edit("ef-x", &target, old, new, extra),
            "edit_file_response",
        )
        .await;
        assert_eq!(
            answer,
            json!({"type": "edit_file_response", "request_id": "ef-x", "success": false, "file_path": target,
                "message": null, "replacements": 0, "error": error})
        );
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("test fixture"),
        "same\nsame\n  indented line\n"
    );

    std::fs::write(format!("{root}/binary.bin"), [0xff, 0xfe, b'a', 0]).expect("test fixture");
    let binary = ask(
        &mut client,
        edit("ef-b", &format!("{root}/binary.bin"), "a", "b", json!({})),
        "edit_file_response",
    )
    .await;
    assert_eq!(
        binary["error"],
        format!(
            "File is not valid UTF-8 text: {root}/binary.bin. Detected UTF-16LE BOM; convert the file to UTF-8 \
             and retry."
        )
    );
}
