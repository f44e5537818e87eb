//! Tests of the local tools, run through the tool set as the turn engine runs them.

mod bash;
mod edit;
mod files;
mod memory;
mod search;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use letta_app_server_protocol::{AdvancedDiff, DiffPreview, JsonObject};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::tools::{self, LocalTool, OutputLine, ToolContext, ToolKind, ToolResult};

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// The tool with this [`LocalTool::id`].
fn tool(id: &str) -> Box<dyn LocalTool> {
    tools::all()
        .into_iter()
        .find(|tool| tool.id() == id)
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
                call_id: "call-test",
                secrets: &BTreeMap::new(),
                memory: None,
                skills: &crate::skills::Skills::new(Path::new("/nonexistent")),
                tasks: &super::agent::NoTasks,
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
    let names: Vec<&str> = tools::all().iter().map(|tool| tool.id()).collect();
    assert_eq!(
        names,
        [
            "Agent",
            "AskUserQuestion",
            "AskUserQuestionAsync",
            "Bash",
            "SetWorkingDirectory",
            "Edit",
            "MultiEdit",
            "Read",
            "Write",
            "LS",
            "memory",
            "Monitor",
            "Grep",
            "Glob",
            "Skill",
            "TaskOutput",
            "TaskStop",
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
    assert_eq!(required("AskUserQuestionAsync"), json!(["questions"]));
    assert_eq!(tool("AskUserQuestionAsync").name(), "AskUserQuestion");
    assert_eq!(tools::opted_in("AskUserQuestion"), "AskUserQuestionAsync");
    assert_eq!(tools::opted_in("Grep"), "Grep");
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
    assert_eq!(kind("AskUserQuestionAsync"), ToolKind::Posting);
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

#[tokio::test]
async fn ask_user_question_async_posts_a_receipt_of_complete_questions() {
    let dir = temp();
    let questions = json!([{"question": "Which database?", "header": "Database", "multiSelect": false,
        "options": [{"label": "SQLite", "description": "Embedded"}, {"label": "Postgres", "description": "Server"}]}]);
    let result = run("AskUserQuestionAsync", json!({"questions": questions}), dir.path()).await;
    assert_ok(&result);
    let receipt: Value = serde_json::from_str(&result.text).expect("a JSON receipt");
    assert_eq!(
        (
            &receipt["type"],
            &receipt["version"],
            &receipt["toolCallId"],
            &receipt["questions"]
        ),
        (&json!("ask_user_question"), &json!(2), &json!("call-test"), &questions)
    );
    let incomplete = [
        (json!({}), "Missing required argument `questions`"),
        (json!({"questions": "Which?"}), "must be an array"),
        (json!({"questions": []}), "at least one question"),
        (
            json!({"questions": [{"question": "Which?", "options": []}]}),
            "questions[0].header",
        ),
        (
            json!({"questions": [{"question": "Which?", "header": "H", "multiSelect": "yes", "options": []}]}),
            "questions[0].multiSelect",
        ),
        (
            json!({"questions": [{"question": "Which?", "header": "H"}]}),
            "questions[0].options",
        ),
        (
            json!({"questions": [{"question": "Which?", "header": "H", "options": [{"label": "A"}]}]}),
            "questions[0].options[0] must be an object with `label` and `description` strings",
        ),
    ];
    for (args, needle) in incomplete {
        assert_error(&run("AskUserQuestionAsync", args, dir.path()).await, needle);
    }
}
