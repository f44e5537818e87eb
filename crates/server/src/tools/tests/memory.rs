//! `memory`: each call one commit of the agent's memory, with real Letta's messages.

use super::*;
use crate::memory::{Author, Memory, repo};

/// Runs `memory` with `args` on `memory` (none: an agent without a repository).
async fn remember(args: Value, memory: Option<&Memory>) -> ToolResult {
    let cancel = CancellationToken::new();
    let context = ToolContext {
        cwd: Path::new("/"),
        cancel: &cancel,
        call_id: "call-test",
        secrets: &BTreeMap::new(),
        memory,
        skills: &crate::skills::Skills::new(Path::new("/nonexistent")),
        tasks: &crate::tools::agent::NoTasks,
        output: &mut |_| {},
    };
    tool("memory").run(object(args), context).await
}

fn agent_memory(dir: &tempfile::TempDir) -> Memory {
    repo::initialize(dir.path(), "agent-1").expect("a repository");
    Memory {
        root: dir.path().to_path_buf(),
        author: Author::agent("agent-1", "Sam"),
    }
}

#[tokio::test]
async fn each_call_is_a_commit_and_names_the_files_it_changed() {
    let dir = temp();
    let memory = agent_memory(&dir);
    let created = remember(
        json!({"command": "create", "reason": "Track the user", "file_path": "system/human.md",
               "description": "The user", "file_text": "Name: Ada"}),
        Some(&memory),
    )
    .await;
    assert!(!created.is_error, "{}", created.text);
    assert!(
        created.text.starts_with("Memory create committed locally ("),
        "{}",
        created.text
    );
    assert_eq!(created.memory_changed, ["system/human.md"]);
    assert_eq!(
        read(&dir.path().join("system/human.md")),
        "---\ndescription: The user\n---\nName: Ada"
    );

    let replaced = remember(
        json!({"command": "str_replace", "reason": "Full name", "file_path": "system/human",
               "old_string": "Ada", "new_string": "Ada Lovelace"}),
        Some(&memory),
    )
    .await;
    assert!(!replaced.is_error, "{}", replaced.text);
    let history = repo::history(dir.path(), Some("system/human.md"), 10).expect("history");
    let subjects: Vec<&str> = history.iter().map(|commit| commit.subject.as_str()).collect();
    assert_eq!(subjects, ["Full name", "Track the user"]);
    assert_eq!(history[0].author, "Sam");
    assert!(replaced.text.contains(&history[0].sha[..7]), "{}", replaced.text);
}

#[tokio::test]
async fn calls_that_change_nothing_or_cannot_run_are_errors() {
    let dir = temp();
    let memory = agent_memory(&dir);
    let create = json!({"command": "create", "reason": "r", "file_path": "notes", "description": "d"});
    assert!(!remember(create.clone(), Some(&memory)).await.is_error);
    let cases = [
        (
            create.clone(),
            Some(&memory),
            "memory create: block already exists at notes",
        ),
        (
            json!({"command": "update_description", "reason": "r", "file_path": "notes", "description": "d"}),
            Some(&memory),
            "Memory update_description made no effective changes; nothing was committed.",
        ),
        (
            json!({"command": "create", "reason": "  ", "file_path": "x", "description": "d"}),
            Some(&memory),
            "memory: 'reason' must be a non-empty string",
        ),
        (
            json!({"command": "create", "reason": "r", "file_path": "x"}),
            Some(&memory),
            "memory create: 'description' must be a non-empty string",
        ),
        (
            json!({"command": "insert", "reason": "r", "file_path": "notes", "insert_text": "x"}),
            Some(&memory),
            "memory insert: 'insert_line' must be a number",
        ),
        (
            json!({"command": "chmod", "reason": "r"}),
            Some(&memory),
            "Unsupported memory command: chmod",
        ),
        (create, None, "memory: this agent has no memory repository"),
    ];
    for (args, memory, expected) in cases {
        let result = remember(args.clone(), memory).await;
        assert!(
            result.is_error && result.text.starts_with(expected),
            "{args}: {}",
            result.text
        );
        assert!(result.memory_changed.is_empty());
    }
}

#[test]
fn memory_is_allowed_like_a_read_only_tool() {
    assert_eq!(tool("memory").kind(), ToolKind::Memory);
}
