//! `Edit` and `MultiEdit`, and their diff previews.

use super::*;

#[tokio::test]
async fn edit_preview_matches_the_real_frame() {
    let dir = temp();
    write(&dir.path().join("edit.txt"), "alpha\nbeta\ngamma\n");
    let args = object(json!({"file_path": dir.path().join("edit.txt"), "old_string": "beta", "new_string": "BETA"}));
    let previews = tool("Edit").preview(&args, dir.path()).expect("a preview");
    // `diffs` of the real server's `control_request` edit example (golden frame `control_request/edit_with_diffs`).
    assert_eq!(
        serde_json::to_value(&previews).expect("json"),
        json!([{
            "mode": "advanced",
            "fileName": "edit.txt",
            "hunks": [{
                "oldStart": 1, "oldLines": 3, "newStart": 1, "newLines": 3,
                "lines": [
                    {"type": "context", "content": "alpha"},
                    {"type": "remove", "content": "beta"},
                    {"type": "add", "content": "BETA"},
                    {"type": "context", "content": "gamma"}
                ]
            }]
        }])
    );
}

#[tokio::test]
async fn edit_preview_keeps_three_lines_of_context() {
    let dir = temp();
    let content: String = (1..=20).map(|n| format!("{n}\n")).collect();
    write(&dir.path().join("n.txt"), &content);
    let args = object(json!({"file_path": "n.txt", "old_string": "\n10\n", "new_string": "\nten\n"}));
    let diff = advanced("Edit", &args, dir.path());
    assert_eq!(diff.hunks.len(), 1);
    let hunk = &diff.hunks[0];
    assert_eq!(
        (hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines),
        (7, 7, 7, 7)
    );
    let contents: Vec<&str> = hunk.lines.iter().map(|line| line.content.as_str()).collect();
    assert_eq!(contents, ["7", "8", "9", "10", "ten", "11", "12", "13"]);
}

#[tokio::test]
async fn edit_preview_falls_back_when_the_edit_cannot_apply() {
    let dir = temp();
    write(&dir.path().join("f.txt"), "same same\n");
    let fallback = |args: Value| match tool("Edit").preview(&object(args), dir.path()).as_deref() {
        Some([DiffPreview::Fallback(notice)]) => notice.clone(),
        other => panic!("expected a fallback, got {other:?}"),
    };
    let notice = fallback(json!({"file_path": "f.txt", "old_string": "same", "new_string": "other"}));
    assert_eq!(notice.file_name, "f.txt");
    assert!(notice.reason.contains("2 times"), "{}", notice.reason);
    let notice = fallback(json!({"file_path": "missing.txt", "old_string": "a", "new_string": "b"}));
    assert_eq!(notice.file_name, "missing.txt");
    assert!(notice.reason.contains("does not exist"), "{}", notice.reason);
}

#[tokio::test]
async fn edit_replaces_a_unique_string() {
    let dir = temp();
    let path = dir.path().join("src dir/main.rs");
    write(&path, "fn main() {\n    old();\n}\n");
    let result = run(
        "Edit",
        json!({"file_path": "src dir/main.rs", "old_string": "old()", "new_string": "new()"}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert_eq!(read(&path), "fn main() {\n    new();\n}\n");
    assert_eq!(
        result.changed_file,
        Some((path, "fn main() {\n    new();\n}\n".to_owned()))
    );
}

#[tokio::test]
async fn edit_requires_a_unique_match_unless_replace_all() {
    let dir = temp();
    let path = dir.path().join("f.txt");
    write(&path, "x = 1\nx = 2\nx = 3\n");
    let result = run(
        "Edit",
        json!({"file_path": "f.txt", "old_string": "x =", "new_string": "y ="}),
        dir.path(),
    )
    .await;
    assert_error(&result, "occurs 3 times");
    assert!(result.text.contains("replace_all"));
    assert_eq!(read(&path), "x = 1\nx = 2\nx = 3\n");
    let result = run(
        "Edit",
        json!({"file_path": "f.txt", "old_string": "x =", "new_string": "y =", "replace_all": true}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert!(result.text.contains("3 occurrences"), "{}", result.text);
    assert_eq!(read(&path), "y = 1\ny = 2\ny = 3\n");
}

#[tokio::test]
async fn edit_errors() {
    let dir = temp();
    write(&dir.path().join("f.txt"), "hello\n");
    let edit = |old: &str, new: &str, file: &str| json!({"file_path": file, "old_string": old, "new_string": new});
    assert_error(
        &run("Edit", edit("a", "b", "missing.txt"), dir.path()).await,
        "File does not exist",
    );
    assert_error(
        &run("Edit", edit("hello", "hello", "f.txt"), dir.path()).await,
        "identical",
    );
    assert_error(
        &run("Edit", edit("absent", "b", "f.txt"), dir.path()).await,
        "not found",
    );
    assert_error(
        &run("Edit", edit("", "b", "f.txt"), dir.path()).await,
        "must not be empty",
    );
    assert_error(&run("Edit", edit("a", "b", "."), dir.path()).await, "is a directory");
    assert_eq!(read(&dir.path().join("f.txt")), "hello\n");
}

#[tokio::test]
async fn edit_accepts_lf_strings_in_crlf_files() {
    let dir = temp();
    let path = dir.path().join("win.txt");
    write(&path, "one\r\ntwo\r\nthree\r\n");
    let result = run(
        "Edit",
        json!({"file_path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert_eq!(read(&path), "1\r\n2\r\nthree\r\n");
}

#[tokio::test]
async fn multi_edit_applies_edits_in_order() {
    let dir = temp();
    let path = dir.path().join("m.txt");
    write(&path, "a b c\nq\n");
    let args = json!({"file_path": "m.txt", "edits": [
        {"old_string": "a b", "new_string": "A B"},
        {"old_string": "A B c", "new_string": "all"},
        {"old_string": "q", "new_string": "z", "replace_all": true}
    ]});
    let diff = advanced("MultiEdit", &object(args.clone()), dir.path());
    let kinds: Vec<String> = diff.hunks[0]
        .lines
        .iter()
        .map(|line| {
            format!(
                "{}{}",
                serde_json::to_value(&line.kind).expect("json").as_str().expect("str"),
                line.content
            )
        })
        .collect();
    assert_eq!(kinds, ["removea b c", "removeq", "addall", "addz"]);
    let result = run("MultiEdit", args, dir.path()).await;
    assert_ok(&result);
    assert_eq!(read(&path), "all\nz\n");
    assert_eq!(result.changed_file, Some((path, "all\nz\n".to_owned())));
}

#[tokio::test]
async fn multi_edit_is_all_or_nothing() {
    let dir = temp();
    let path = dir.path().join("m.txt");
    write(&path, "one two two\n");
    let result = run(
        "MultiEdit",
        json!({"file_path": "m.txt", "edits": [
            {"old_string": "one", "new_string": "1"},
            {"old_string": "two", "new_string": "2"}
        ]}),
        dir.path(),
    )
    .await;
    assert_error(&result, "edits[1]");
    assert!(result.text.contains("occurs 2 times"), "{}", result.text);
    assert!(result.text.contains("No edits were applied"));
    assert_eq!(read(&path), "one two two\n");
    assert!(result.changed_file.is_none());

    assert_error(
        &run("MultiEdit", json!({"file_path": "m.txt", "edits": []}), dir.path()).await,
        "at least one",
    );
    assert_error(
        &run("MultiEdit", json!({"file_path": "m.txt", "edits": ["one"]}), dir.path()).await,
        "edits[0] must be an object",
    );
    assert_error(
        &run(
            "MultiEdit",
            json!({"file_path": "m.txt", "edits": [{"old_string": "one"}]}),
            dir.path(),
        )
        .await,
        "edits[0]: Missing required argument `new_string`",
    );
    assert_error(
        &run(
            "MultiEdit",
            json!({"file_path": "gone.txt", "edits": [{"old_string": "a", "new_string": "b"}]}),
            dir.path(),
        )
        .await,
        "File does not exist",
    );
}
