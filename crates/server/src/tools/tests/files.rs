//! `Read`, `Write` and `LS`.

use super::*;

#[tokio::test]
async fn read_numbers_lines_like_cat_n() {
    let dir = temp();
    write(&dir.path().join("notes dir/a file.txt"), "alpha\nbeta\r\ngamma\n");
    let result = run("Read", json!({"file_path": "notes dir/a file.txt"}), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, "     1\talpha\n     2\tbeta\n     3\tgamma\n");
}

#[tokio::test]
async fn read_offset_limit_and_long_lines() {
    let dir = temp();
    let path = dir.path().join("long.txt");
    let mut content: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    content.push_str(&"x".repeat(2500));
    write(&path, &content);
    let result = run("Read", json!({"file_path": path, "offset": 3, "limit": 2}), dir.path()).await;
    assert_ok(&result);
    assert!(
        result.text.starts_with("     3\tline 3\n     4\tline 4\n"),
        "{}",
        result.text
    );
    assert!(result.text.contains("Showing lines 3-4 of 11"));
    let result = run("Read", json!({"file_path": path, "offset": 11}), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, format!("    11\t{}… [line truncated]\n", "x".repeat(2000)));
}

#[tokio::test]
async fn read_errors() {
    let dir = temp();
    write(&dir.path().join("short.txt"), "one\ntwo\n");
    write(&dir.path().join("blob.bin"), b"abc\0def");
    write(&dir.path().join("empty.txt"), "");
    let missing = run("Read", json!({"file_path": "nope.txt"}), dir.path()).await;
    assert_error(&missing, "File does not exist");
    assert_error(
        &run("Read", json!({"file_path": dir.path()}), dir.path()).await,
        "is a directory",
    );
    assert_error(
        &run("Read", json!({"file_path": "blob.bin"}), dir.path()).await,
        "binary file",
    );
    let past = run("Read", json!({"file_path": "short.txt", "offset": 3}), dir.path()).await;
    assert_error(&past, "past the end");
    assert!(past.text.contains("2 lines"));
    let empty = run("Read", json!({"file_path": "empty.txt"}), dir.path()).await;
    assert_ok(&empty);
    assert!(empty.text.contains("is empty"));
}

// ---------------------------------------------------------------------------------------------
// Write.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn write_creates_then_updates() {
    let dir = temp();
    let path = dir.path().join("new dir/deeper/out file.txt");
    let created = run(
        "Write",
        json!({"file_path": "new dir/deeper/out file.txt", "content": "one\n"}),
        dir.path(),
    )
    .await;
    assert_ok(&created);
    assert!(created.text.contains("created"), "{}", created.text);
    assert_eq!(created.changed_file, Some((path.clone(), "one\n".to_owned())));
    assert_eq!(read(&path), "one\n");

    let args = json!({"file_path": path, "content": "one\ntwo\n"});
    let diff = advanced("Write", &object(args.clone()), dir.path());
    assert_eq!(diff.file_name, "out file.txt");
    assert_eq!(
        serde_json::to_value(&diff.hunks).expect("json"),
        json!([{"oldStart": 1, "oldLines": 1, "newStart": 1, "newLines": 2, "lines": [
            {"type": "context", "content": "one"}, {"type": "add", "content": "two"}
        ]}])
    );
    let updated = run("Write", args, dir.path()).await;
    assert_ok(&updated);
    assert!(updated.text.contains("updated"), "{}", updated.text);
    assert_eq!(read(&path), "one\ntwo\n");
}

#[tokio::test]
async fn write_preview_of_a_new_file_adds_every_line() {
    let dir = temp();
    let args = object(json!({"file_path": "fresh.txt", "content": "a\nb\n"}));
    let diff = advanced("Write", &args, dir.path());
    assert_eq!(
        serde_json::to_value(&diff.hunks).expect("json"),
        json!([{"oldStart": 0, "oldLines": 0, "newStart": 1, "newLines": 2, "lines": [
            {"type": "add", "content": "a"}, {"type": "add", "content": "b"}
        ]}])
    );
}

#[tokio::test]
async fn write_to_a_directory_is_an_error() {
    let dir = temp();
    let result = run("Write", json!({"file_path": dir.path(), "content": "x"}), dir.path()).await;
    assert_error(&result, "is a directory");
}

// ---------------------------------------------------------------------------------------------
// LS.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ls_lists_sorted_with_directory_markers() {
    let dir = temp();
    let root = dir.path().join("list me");
    write(&root.join("b.txt"), "");
    write(&root.join("a dir/inner.txt"), "");
    write(&root.join("c.log"), "");
    write(&root.join("node_modules/x.js"), "");
    let result = run("LS", json!({"path": "list me"}), dir.path()).await;
    assert_ok(&result);
    assert_eq!(
        result.text,
        format!(
            "{}/\n  - a dir/\n  - b.txt\n  - c.log\n  - node_modules/\n",
            root.display()
        )
    );
    let result = run(
        "LS",
        json!({"path": root, "ignore": ["*.log", "node_modules"]}),
        dir.path(),
    )
    .await;
    assert_eq!(result.text, format!("{}/\n  - a dir/\n  - b.txt\n", root.display()));
}

#[tokio::test]
async fn ls_errors() {
    let dir = temp();
    write(&dir.path().join("file.txt"), "");
    assert_error(
        &run("LS", json!({"path": "file.txt"}), dir.path()).await,
        "is not a directory",
    );
    assert_error(
        &run("LS", json!({"path": "missing"}), dir.path()).await,
        "does not exist",
    );
    assert_error(
        &run("LS", json!({"path": ".", "ignore": [3]}), dir.path()).await,
        "ignore[0]",
    );
}
