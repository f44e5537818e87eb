//! Tests of the local tools (`letta_app_server::tools`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use letta_app_server::tools::{self, LocalTool, OutputLine, ToolContext, ToolKind, ToolResult};
use letta_app_server_protocol::{AdvancedDiff, DiffPreview, JsonObject};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

fn tool(name: &str) -> Box<dyn LocalTool> {
    tools::all()
        .into_iter()
        .find(|tool| tool.name() == name)
        .expect("tool exists")
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

/// Output lines a run produced, with when they arrived.
type Lines = Arc<Mutex<Vec<(Instant, OutputLine)>>>;

async fn run_full(
    name: &str,
    args: Value,
    cwd: &Path,
    cancel: &CancellationToken,
) -> (ToolResult, Vec<(Instant, OutputLine)>) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let mut output = move |line: OutputLine| sink.lock().expect("lock").push((Instant::now(), line));
    let tool = tool(name);
    let result = tool
        .run(
            object(args),
            ToolContext {
                cwd,
                cancel,
                output: &mut output,
            },
        )
        .await;
    let lines = lines.lock().expect("lock").clone();
    (result, lines)
}

async fn run(name: &str, args: Value, cwd: &Path) -> ToolResult {
    run_full(name, args, cwd, &CancellationToken::new()).await.0
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent");
    }
    fs::write(path, content).expect("write file");
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read file")
}

/// Sets a file's modification time to `seconds` after the epoch.
fn set_mtime(path: &Path, seconds: u64) {
    let file = fs::File::options().write(true).open(path).expect("open for mtime");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + seconds))
        .expect("set mtime");
}

/// The single advanced diff a tool previews.
fn advanced(name: &str, args: &JsonObject, cwd: &Path) -> AdvancedDiff {
    match tool(name).preview(args, cwd).as_deref() {
        Some([DiffPreview::Advanced(diff)]) => diff.clone(),
        other => panic!("expected one advanced diff, got {other:?}"),
    }
}

fn assert_error(result: &ToolResult, needle: &str) {
    assert!(
        result.is_error,
        "expected an error containing {needle:?}, got success: {}",
        result.text
    );
    assert!(
        result.text.contains(needle),
        "error {:?} does not contain {needle:?}",
        result.text
    );
}

fn assert_ok(result: &ToolResult) {
    assert!(!result.is_error, "expected success, got error: {}", result.text);
}

// ---------------------------------------------------------------------------------------------
// The tool set.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_tool_has_a_strict_documented_schema() {
    let names: Vec<&str> = tools::all().iter().map(|tool| tool.name()).collect();
    assert_eq!(
        names,
        [
            "AskUserQuestion",
            "Bash",
            "SetWorkingDirectory",
            "Edit",
            "MultiEdit",
            "Read",
            "Write",
            "LS",
            "Grep",
            "Glob",
            "TodoWrite"
        ]
    );
    for name in tools::DEFAULT_TOOLSET {
        assert!(names.contains(name), "{name} is in the default toolset but not a tool");
    }
    for tool in tools::all() {
        let schema = tool.parameters();
        assert_eq!(schema["type"], "object", "{}", tool.name());
        assert_eq!(schema["additionalProperties"], false, "{}", tool.name());
        assert!(!tool.description().is_empty());
        let properties = schema["properties"].as_object().expect("properties");
        for required in schema["required"].as_array().expect("required") {
            let required = required.as_str().expect("required name");
            assert!(
                properties.contains_key(required),
                "{}: {required} not in properties",
                tool.name()
            );
        }
        for (property, spec) in properties {
            assert!(
                spec["description"].is_string(),
                "{}.{property} has no description",
                tool.name()
            );
        }
    }
    let required = |name: &str| tool(name).parameters()["required"].clone();
    assert_eq!(required("Bash"), json!(["command", "description"]));
    assert_eq!(required("Read"), json!(["file_path"]));
    assert_eq!(required("Write"), json!(["file_path", "content"]));
    assert_eq!(required("Edit"), json!(["file_path", "old_string", "new_string"]));
    assert_eq!(required("MultiEdit"), json!(["file_path", "edits"]));
    assert_eq!(required("Grep"), json!(["pattern"]));
    assert_eq!(required("Glob"), json!(["pattern"]));
    assert_eq!(required("LS"), json!(["path"]));
    assert_eq!(required("TodoWrite"), json!(["todos"]));
    assert_eq!(required("SetWorkingDirectory"), json!(["path"]));
    assert_eq!(required("AskUserQuestion"), json!(["questions"]));
    let grep = tool("Grep").parameters();
    for key in [
        "pattern",
        "path",
        "glob",
        "output_mode",
        "-A",
        "-B",
        "-C",
        "context",
        "-n",
        "-i",
        "type",
        "head_limit",
        "offset",
        "multiline",
    ] {
        assert!(grep["properties"].get(key).is_some(), "Grep lacks {key}");
    }
}

#[test]
fn kinds_follow_the_permission_model() {
    let kind = |name: &str| tool(name).kind();
    assert_eq!(kind("Bash"), ToolKind::Shell);
    for name in ["Read", "Grep", "Glob", "LS", "TodoWrite"] {
        assert_eq!(kind(name), ToolKind::ReadOnly, "{name}");
    }
    for name in ["Write", "Edit", "MultiEdit"] {
        assert_eq!(kind(name), ToolKind::Edit, "{name}");
    }
    assert_eq!(kind("AskUserQuestion"), ToolKind::Interactive);
    assert_eq!(kind("SetWorkingDirectory"), ToolKind::Other);
}

#[tokio::test]
async fn wrongly_typed_arguments_are_errors() {
    let dir = temp();
    assert_error(
        &run("Read", json!({}), dir.path()).await,
        "Missing required argument `file_path`",
    );
    assert_error(
        &run("Read", json!({"file_path": 7}), dir.path()).await,
        "must be a string",
    );
    assert_error(
        &run("Read", json!({"file_path": "x", "offset": -1}), dir.path()).await,
        "non-negative integer",
    );
    assert_error(
        &run(
            "Edit",
            json!({"file_path": "x", "old_string": "a", "new_string": "b", "replace_all": "yes"}),
            dir.path(),
        )
        .await,
        "must be a boolean",
    );
    assert_error(
        &run("Bash", json!({"description": "nothing"}), dir.path()).await,
        "`command`",
    );
}

// ---------------------------------------------------------------------------------------------
// Bash.
// ---------------------------------------------------------------------------------------------

fn bash(command: &str) -> Value {
    json!({"command": command, "description": "test command"})
}

#[tokio::test]
async fn bash_streams_stdout_and_stderr_in_order() {
    let dir = temp();
    let command = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three";
    let (result, lines) = run_full("Bash", bash(command), dir.path(), &CancellationToken::new()).await;
    assert_ok(&result);
    let lines: Vec<OutputLine> = lines.into_iter().map(|(_, line)| line).collect();
    assert_eq!(
        lines,
        [
            OutputLine::Stdout("one".into()),
            OutputLine::Stderr("two".into()),
            OutputLine::Stdout("three".into())
        ]
    );
    assert_eq!(result.stdout, ["one", "three"]);
    assert_eq!(result.stderr, ["two"]);
    assert_eq!(result.text, "one\nthree\ntwo\n");
}

#[tokio::test]
async fn bash_streams_lines_as_they_arrive() {
    let dir = temp();
    let (result, lines) = run_full(
        "Bash",
        bash("echo first; sleep 0.4; echo second"),
        dir.path(),
        &CancellationToken::new(),
    )
    .await;
    let finished = Instant::now();
    assert_ok(&result);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].1, OutputLine::Stdout("first".into()));
    assert!(
        finished - lines[0].0 >= Duration::from_millis(300),
        "the first line arrived only at the end"
    );
}

#[tokio::test]
async fn bash_non_zero_exit_is_an_error_with_the_code() {
    let dir = temp();
    let result = run("Bash", bash("echo out; echo err >&2; exit 3"), dir.path()).await;
    assert!(result.is_error);
    assert_eq!(result.text, "out\nerr\nExit code 3");
    let result = run("Bash", bash("echo; echo second; echo >&2; echo err >&2"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, "\nsecond\n\nerr\n");
    let result = run("Bash", bash("true"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, "(no output)");
}

#[tokio::test]
async fn bash_decodes_non_utf8_output_lossily() {
    let dir = temp();
    let result = run("Bash", bash(r"printf '\xff\xfe\n'; printf 'ok\xffend'"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.stdout, ["\u{fffd}\u{fffd}", "ok\u{fffd}end"]);
}

#[tokio::test]
async fn bash_runs_in_the_working_directory_with_spaces() {
    let dir = temp();
    let cwd = dir.path().join("my project");
    write(&cwd.join("file with spaces.txt"), "contents\n");
    let result = run(
        "Bash",
        bash("pwd; cat 'file with spaces.txt'; cat < /dev/stdin | wc -c"),
        &cwd,
    )
    .await;
    assert_ok(&result);
    assert_eq!(
        result.stdout,
        [cwd.display().to_string(), "contents".into(), "0".into()]
    );
}

#[tokio::test]
async fn bash_timeout_kills_the_command() {
    let dir = temp();
    let started = Instant::now();
    let result = run(
        "Bash",
        json!({"command": "echo started; sleep 30", "description": "sleep", "timeout": 300}),
        dir.path(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_error(&result, "timed out after 300 ms");
    assert!(result.text.starts_with("started\n"), "{}", result.text);
}

#[tokio::test]
async fn bash_rejects_bad_timeouts_and_background_runs() {
    let dir = temp();
    let marker = dir.path().join("ran");
    let command = format!("touch '{}'", marker.display());
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "timeout": 600_001}),
        dir.path(),
    )
    .await;
    assert_error(&result, "600000");
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "run_in_background": true}),
        dir.path(),
    )
    .await;
    assert_error(&result, "Background execution is not supported");
    assert!(!marker.exists(), "a rejected command ran");
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "timeout": 600_000}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert!(marker.exists());
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn process_gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn bash_cancellation_kills_the_process_group() {
    let dir = temp();
    let pids = dir.path().join("pids");
    let command = format!(
        "sleep 30 & echo $$ $! > '{}.tmp'; mv '{0}.tmp' '{0}'; sleep 30",
        pids.display()
    );
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            while !pids.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let (result, _) = run_full("Bash", bash(&command), dir.path(), &cancel).await;
    canceller.await.expect("canceller");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(result.is_error);
    assert_eq!(result.text, "Interrupted by user");
    let pids = read(&pids);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.iter().all(|pid| process_gone(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} survived the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bash_dropped_mid_run_kills_the_process_group() {
    let dir = temp();
    let pids = dir.path().join("pids");
    let command = format!("sleep 30 & echo $$ $! > '{}'; sleep 30", pids.display());
    let run = run("Bash", bash(&command), dir.path());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), run).await.is_err(),
        "the command finished"
    );
    let pids = read(&pids);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.iter().all(|pid| process_gone(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} survived dropping the run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bash_does_not_wait_for_background_children_holding_the_pipes() {
    let dir = temp();
    let started = Instant::now();
    let result = run("Bash", bash("sleep 3 & echo done"), dir.path()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_ok(&result);
    assert_eq!(result.text, "done\n");
}

#[tokio::test]
async fn bash_output_is_capped() {
    let dir = temp();
    let result = run("Bash", bash("yes abcdefghi | head -n 5000; echo tail >&2"), dir.path()).await;
    assert_ok(&result);
    // 5000 stdout lines of 9 characters and 1 stderr line of 4, each ending with a newline.
    let total = 5000 * 9 + 4 + 5001;
    let note = format!("\n… [output truncated: {} more characters]", total - 30_000);
    assert!(
        result.text.ends_with(&note),
        "{}",
        &result.text[result.text.len() - 200..]
    );
    assert_eq!(result.text.chars().count(), 30_000 + note.chars().count());
    assert_eq!(result.stdout.len(), 5000);
    assert_eq!(result.stderr, ["tail"]);
}

// ---------------------------------------------------------------------------------------------
// Read.
// ---------------------------------------------------------------------------------------------

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
// Edit and MultiEdit.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Grep.
// ---------------------------------------------------------------------------------------------

/// A small tree: a.rs (oldest), b.py, `sub dir/c.rs` (newest), plus an ignored and a hidden file.
fn search_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = temp();
    let root = dir.path().join("project root");
    write(&root.join("a.rs"), "fn main() {\n    println!(\"Hello\");\n}\n");
    write(&root.join("b.py"), "import os\nprint('hello')\nx = 1\n");
    write(
        &root.join("sub dir/c.rs"),
        "// hello world\nlet x = 1;\nlet y = 2;\n// hello again\n",
    );
    write(&root.join("ignored.rs"), "hello\n");
    write(&root.join(".hidden.rs"), "hello\n");
    write(&root.join(".gitignore"), "ignored.rs\n");
    set_mtime(&root.join("a.rs"), 1);
    set_mtime(&root.join("b.py"), 2);
    set_mtime(&root.join("sub dir/c.rs"), 3);
    (dir, root)
}

fn grep(args: Value) -> Value {
    let mut args = object(args);
    args.entry("pattern").or_insert(json!("hello"));
    Value::Object(args)
}

#[tokio::test]
async fn grep_lists_files_newest_first_and_honours_gitignore() {
    let (_dir, root) = search_tree();
    let result = run("Grep", grep(json!({})), &root).await;
    assert_ok(&result);
    let expected = format!(
        "Found 2 files\n{}\n{}",
        root.join("sub dir/c.rs").display(),
        root.join("b.py").display()
    );
    assert_eq!(result.text, expected);
    let result = run("Grep", grep(json!({"-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 3 files\n{}\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("b.py").display(),
            root.join("a.rs").display()
        )
    );
}

#[tokio::test]
async fn grep_content_mode_with_line_numbers_and_context() {
    let (_dir, root) = search_tree();
    let a = root.join("a.rs").display().to_string();
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content"})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:2:    println!(\"Hello\");"));
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-n": false})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:    println!(\"Hello\");"));
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-C": 1})),
        &root,
    )
    .await;
    assert_eq!(
        result.text,
        format!("{a}-1-fn main() {{\n{a}:2:    println!(\"Hello\");\n{a}-3-}}")
    );
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-A": 1})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:2:    println!(\"Hello\");\n{a}-3-}}"));
    let c = root.join("sub dir/c.rs").display().to_string();
    let result = run(
        "Grep",
        grep(json!({"output_mode": "content", "path": "sub dir", "context": 0, "-B": 1})),
        &root,
    )
    .await;
    assert_eq!(
        result.text,
        format!("{c}:1:// hello world\n--\n{c}-3-let y = 2;\n{c}:4:// hello again")
    );
}

#[tokio::test]
async fn grep_filters_by_glob_and_type() {
    let (_dir, root) = search_tree();
    let result = run("Grep", grep(json!({"glob": "*.py"})), &root).await;
    assert_eq!(result.text, format!("Found 1 file\n{}", root.join("b.py").display()));
    let result = run("Grep", grep(json!({"type": "rust", "-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 2 files\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    // Hidden and ignored files stay out even when a glob selects them.
    let result = run("Grep", grep(json!({"glob": "*.rs"})), &root).await;
    assert_eq!(
        result.text,
        format!("Found 1 file\n{}", root.join("sub dir/c.rs").display())
    );
    let result = run("Grep", grep(json!({"glob": "*.{rs,py} !b.py", "-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 2 files\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    let result = run("Grep", grep(json!({"glob": "sub*/*.rs"})), &root).await;
    assert_eq!(
        result.text,
        format!("Found 1 file\n{}", root.join("sub dir/c.rs").display())
    );
    let result = run("Grep", grep(json!({"type": "py"})), &root).await;
    assert_eq!(result.text, format!("Found 1 file\n{}", root.join("b.py").display()));
    assert_error(
        &run("Grep", grep(json!({"type": "nosuchtype"})), &root).await,
        "Unknown file type",
    );
}

#[tokio::test]
async fn grep_count_mode_and_pagination() {
    let (_dir, root) = search_tree();
    let result = run(
        "Grep",
        grep(json!({"output_mode": "count", "path": "sub dir/c.rs"})),
        &root,
    )
    .await;
    assert_ok(&result);
    assert_eq!(
        result.text,
        format!(
            "{}:2\n\nFound 2 matching lines across 1 file.",
            root.join("sub dir/c.rs").display()
        )
    );
    let result = run(
        "Grep",
        grep(json!({"pattern": "=", "output_mode": "content", "head_limit": 2})),
        &root,
    )
    .await;
    let shown: Vec<&str> = result.text.lines().take_while(|line| !line.is_empty()).collect();
    assert_eq!(shown.len(), 2);
    assert!(result.text.contains("Showing lines 1-2 of 3"), "{}", result.text);
    let result = run("Grep", grep(json!({"-i": true, "offset": 1, "head_limit": 1})), &root).await;
    assert!(
        result
            .text
            .starts_with(&format!("Found 3 files\n{}\n", root.join("b.py").display())),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn grep_multiline() {
    let (_dir, root) = search_tree();
    let pattern = r"main\(\) \{\n\s+println";
    let result = run(
        "Grep",
        json!({"pattern": pattern, "multiline": true, "output_mode": "content"}),
        &root,
    )
    .await;
    let a = root.join("a.rs").display().to_string();
    assert_eq!(
        result.text,
        format!("{a}:1:fn main() {{\n{a}:2:    println!(\"Hello\");")
    );
    let result = run("Grep", json!({"pattern": pattern}), &root).await;
    assert_error(&result, "multiline");
}

#[tokio::test]
async fn grep_errors_and_no_matches() {
    let (_dir, root) = search_tree();
    let none = run("Grep", json!({"pattern": "zzz_nothing"}), &root).await;
    assert_ok(&none);
    assert_eq!(none.text, "No matches found");
    assert_error(&run("Grep", json!({"pattern": "("}), &root).await, "Invalid pattern");
    assert_error(
        &run("Grep", grep(json!({"path": "nowhere"})), &root).await,
        "does not exist",
    );
    assert_error(
        &run("Grep", grep(json!({"output_mode": "lines"})), &root).await,
        "Unknown output_mode",
    );
}

// ---------------------------------------------------------------------------------------------
// Glob.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn glob_returns_newest_first() {
    let (_dir, root) = search_tree();
    let result = run("Glob", json!({"pattern": "**/*.rs"}), &root).await;
    assert_ok(&result);
    assert_eq!(
        result.text,
        format!(
            "{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    let result = run("Glob", json!({"pattern": "*.rs"}), &root).await;
    assert_eq!(result.text, root.join("a.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "*.rs", "path": "sub dir"}), &root).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
    let result = run("Glob", json!({"pattern": ".hidden*"}), &root).await;
    assert_eq!(result.text, root.join(".hidden.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "**/*.{py,txt}"}), &root).await;
    assert_eq!(result.text, root.join("b.py").display().to_string());
    let absolute = format!("{}/**/c.*", root.display());
    let result = run("Glob", json!({"pattern": absolute}), Path::new("/")).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "./sub dir/c.rs"}), &root).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
}

#[tokio::test]
async fn glob_caps_results_and_reports_errors() {
    let dir = temp();
    for index in 0..105 {
        let path = dir.path().join(format!("f{index:03}.txt"));
        write(&path, "");
        set_mtime(&path, index);
    }
    let result = run("Glob", json!({"pattern": "*.txt"}), dir.path()).await;
    assert_ok(&result);
    let lines: Vec<&str> = result.text.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(lines[0], dir.path().join("f104.txt").display().to_string());
    assert_eq!(lines[99], dir.path().join("f005.txt").display().to_string());
    assert!(lines[100].contains("truncated"), "{}", lines[100]);
    let none = run("Glob", json!({"pattern": "*.md"}), dir.path()).await;
    assert_ok(&none);
    assert_eq!(none.text, "No files found");
    assert_error(&run("Glob", json!({"pattern": "[a"}), dir.path()).await, "Invalid glob");
    assert_error(
        &run("Glob", json!({"pattern": "*", "path": "missing"}), dir.path()).await,
        "does not exist",
    );
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

// ---------------------------------------------------------------------------------------------
// TodoWrite, SetWorkingDirectory, AskUserQuestion.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn todo_write_summarises_the_list() {
    let dir = temp();
    let result = run(
        "TodoWrite",
        json!({"todos": [
            {"content": "Write the code", "status": "completed", "activeForm": "Writing the code", "id": "1"},
            {"content": "Run the tests", "status": "in_progress", "activeForm": "Running the tests"},
            {"content": "Ship it", "status": "pending"}
        ]}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert!(result.text.starts_with("Todos have been modified successfully."));
    assert!(
        result
            .text
            .ends_with("\n1. [completed] Write the code\n2. [in_progress] Run the tests\n3. [pending] Ship it")
    );
}

#[tokio::test]
async fn todo_write_validates() {
    let dir = temp();
    let todos = |todos: Value| json!({"todos": todos});
    assert_error(&run("TodoWrite", json!({}), dir.path()).await, "`todos`");
    assert_error(
        &run("TodoWrite", todos(json!("x")), dir.path()).await,
        "must be an array",
    );
    assert_error(
        &run("TodoWrite", todos(json!([{"status": "pending"}])), dir.path()).await,
        "todos[0].content",
    );
    assert_error(
        &run(
            "TodoWrite",
            todos(json!([{"content": "a", "status": "done"}])),
            dir.path(),
        )
        .await,
        "todos[0].status must be one of",
    );
    assert_error(
        &run(
            "TodoWrite",
            todos(json!([{"content": "a", "status": "pending"}, 5])),
            dir.path(),
        )
        .await,
        "todos[1]",
    );
}

#[tokio::test]
async fn set_working_directory() {
    let dir = temp();
    fs::create_dir_all(dir.path().join("next dir")).expect("mkdir");
    write(&dir.path().join("file.txt"), "");
    let result = run("SetWorkingDirectory", json!({"path": "next dir"}), dir.path()).await;
    assert_ok(&result);
    let expected = dir.path().join("next dir").canonicalize().expect("canonicalize");
    assert_eq!(result.new_cwd.as_deref(), Some(expected.as_path()));
    assert!(result.text.contains(&expected.display().to_string()));
    let result = run("SetWorkingDirectory", json!({"path": "missing"}), dir.path()).await;
    assert_error(&result, "does not exist");
    assert!(result.new_cwd.is_none());
    assert_error(
        &run("SetWorkingDirectory", json!({"path": "file.txt"}), dir.path()).await,
        "is not a directory",
    );
}

#[tokio::test]
async fn ask_user_question() {
    let dir = temp();
    let questions = json!([
        {"question": "Which database?", "header": "Database", "options": [
            {"label": "SQLite", "description": "Embedded"}, {"label": "Postgres"}
        ]},
        {"question": "Which features?", "multiSelect": true, "options": [{"label": "A"}, {"label": "B"}]}
    ]);
    let result = run(
        "AskUserQuestion",
        json!({"questions": questions, "answers": {"Which features?": ["A", "B"], "Which database?": "SQLite"}}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert!(
        result
            .text
            .starts_with(r#"User answered: "Which database?"="SQLite", "Which features?"="A, B"."#),
        "{}",
        result.text
    );
    let unanswered = run("AskUserQuestion", json!({"questions": questions}), dir.path()).await;
    assert_error(&unanswered, "did not answer");
    let empty = run(
        "AskUserQuestion",
        json!({"questions": questions, "answers": {}}),
        dir.path(),
    )
    .await;
    assert_error(&empty, "did not answer");
    assert_error(
        &run("AskUserQuestion", json!({"questions": []}), dir.path()).await,
        "at least one question",
    );
    assert_error(
        &run("AskUserQuestion", json!({"questions": [{"header": "x"}]}), dir.path()).await,
        "questions[0].question",
    );
}
