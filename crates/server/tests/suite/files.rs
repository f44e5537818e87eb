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
