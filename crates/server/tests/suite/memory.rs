//! The memory commands (docs/protocol.md §4.2) on an agent's repository: writes and deletions as
//! commits with `memory_updated` first, listings in chunks, history, files at a revision, diffs;
//! and the model's `memory` tool, whose commits reach the next prompt, across a restart.

use std::time::Duration;

use letta_app_server_mock_llm::{MockResponse, MockServer, finish_chunk, text_chunk, tool_chunk};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{self, ask};
use crate::support::wire::{Client, start_runtime, user_input};

/// The chunks of a `list_memory` answer, up to the one with `done: true`.
async fn list(client: &mut Client, agent: &Value, references: bool) -> Vec<Value> {
    client
        .send(json!({"type": "list_memory", "request_id": "lm", "agent_id": agent,
            "include_references": references}))
        .await;
    client
        .recv_until(|f| f["type"] == "list_memory_response" && f["done"] == true)
        .await
        .into_iter()
        .filter(|f| f["type"] == "list_memory_response")
        .collect()
}

async fn write(client: &mut Client, agent: &Value, path: &str, content: &str) -> Value {
    ask(
        client,
        json!({"type": "write_memory_file", "request_id": "w", "agent_id": agent, "path": path,
            "content": content}),
    )
    .await
}

#[tokio::test]
async fn memory_files_are_written_listed_read_and_deleted_as_commits() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = runtime["agent_id"].clone();

    // Before `enable_memfs`: nothing to list, nothing to read.
    assert_eq!(
        list(&mut client, &agent, false).await,
        [
            json!({"type": "list_memory_response", "request_id": "lm", "entries": [], "done": true,
            "total": 0, "success": true, "memfs_enabled": false, "memfs_initialized": false})
        ]
    );
    let refused = write(&mut client, &agent, "system/human.md", "x").await;
    assert_eq!(
        refused["error"],
        "write_memory_file: memfs is not enabled for this agent"
    );
    client
        .send(json!({"type": "enable_memfs", "request_id": "em", "agent_id": agent}))
        .await;
    client.recv_until_type("enable_memfs_response").await;

    // A write is a commit, announced before the answer.
    client
        .send(
            json!({"type": "write_memory_file", "request_id": "w-1", "agent_id": agent,
            "path": "./system/human.md", "content": "---\ndescription: The user\n---\nName: Ada, see [[notes/tea]]\n",
            "commit_message": "Remember Ada"}),
        )
        .await;
    let frames = client.recv_until_type("write_memory_file_response").await;
    let [.., updated, written] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert_eq!(
        (&updated["type"], &updated["affected_paths"]),
        (&json!("memory_updated"), &json!(["system/human.md"]))
    );
    let sha = written["commit_sha"].as_str().expect("a commit").to_owned();
    assert_eq!(
        written,
        &json!({"type": "write_memory_file_response", "request_id": "w-1", "agent_id": agent,
            "path": "system/human.md", "success": true, "committed": true, "commit_sha": sha})
    );
    // The same content again: no commit, no `memory_updated`.
    client
        .send(
            json!({"type": "write_memory_file", "request_id": "w-2", "agent_id": agent,
            "path": "system/human.md", "content": "---\ndescription: The user\n---\nName: Ada, see [[notes/tea]]\n"}),
        )
        .await;
    let again = client.recv().await;
    assert_eq!(
        (&again["type"], &again["committed"]),
        (&json!("write_memory_file_response"), &json!(false))
    );
    assert!(again.get("commit_sha").is_none());

    for n in 0..5 {
        let answer = write(&mut client, &agent, &format!("notes/n{n}.md"), &format!("note {n}")).await;
        assert_eq!(answer["committed"], true, "{answer}");
    }
    write(
        &mut client,
        &agent,
        "notes/tea.md",
        "---\ndescription: Tea\n---\nGreen.",
    )
    .await;
    let png = ask(
        &mut client,
        json!({"type": "write_memory_file", "request_id": "w-img", "agent_id": agent,
            "path": "images/dot.png", "content": "iVBORw0KGgo=", "encoding": "base64"}),
    )
    .await;
    assert_eq!(png["success"], true, "{png}");
    write(&mut client, &agent, "data.json", "{}").await;

    // Listed five to a chunk, `system/` first; `data.json` is neither markdown nor an image.
    let chunks = list(&mut client, &agent, true).await;
    let shape: Vec<(usize, bool, u64)> = chunks
        .iter()
        .map(|c| {
            (
                c["entries"].as_array().unwrap().len(),
                c["done"] == true,
                c["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape, [(5, false, 8), (3, true, 8)]);
    let entries: Vec<&Value> = chunks.iter().flat_map(|c| c["entries"].as_array().unwrap()).collect();
    let paths: Vec<&str> = entries.iter().map(|e| e["relative_path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "system/human.md",
            "images/dot.png",
            "notes/n0.md",
            "notes/n1.md",
            "notes/n2.md",
            "notes/n3.md",
            "notes/n4.md",
            "notes/tea.md"
        ]
    );
    assert_eq!(
        entries[0],
        &json!({"relative_path": "system/human.md", "is_system": true, "description": "The user",
            "content": "Name: Ada, see [[notes/tea]]", "size": 28, "references": ["notes/tea.md"],
            "kind": "markdown", "mime_type": "text/markdown"})
    );
    assert_eq!(
        entries[1],
        &json!({"relative_path": "images/dot.png", "is_system": false, "description": null,
            "content": "", "size": 8, "references": [], "kind": "image", "mime_type": "image/png"})
    );

    // Read back from the working tree, as text or base64.
    let read = ask(
        &mut client,
        json!({"type": "read_memory_file", "request_id": "r", "agent_id": agent, "path": "notes/tea.md"}),
    )
    .await;
    assert_eq!(
        read,
        json!({"type": "read_memory_file_response", "request_id": "r", "agent_id": agent,
            "path": "notes/tea.md", "content": "---\ndescription: Tea\n---\nGreen.", "encoding": "utf8",
            "success": true})
    );
    let image = ask(
        &mut client,
        json!({"type": "read_memory_file", "request_id": "r", "agent_id": agent, "path": "images/dot.png",
            "encoding": "base64"}),
    )
    .await;
    assert_eq!(image["content"], "iVBORw0KGgo=");

    // The history, of everything or of one file; a file at a commit; a commit's diff.
    let history = ask(
        &mut client,
        json!({"type": "memory_history", "request_id": "h", "agent_id": agent, "file_path": "system/human.md"}),
    )
    .await;
    let commits = history["commits"].as_array().expect("commits");
    assert_eq!(commits.len(), 1, "{history}");
    assert_eq!(
        (&commits[0]["sha"], &commits[0]["message"], &history["file_path"]),
        (&json!(sha), &json!("Remember Ada"), &json!("system/human.md"))
    );
    assert!(commits[0]["timestamp"].as_str().unwrap().starts_with("20"), "{history}");
    let all = ask(
        &mut client,
        json!({"type": "memory_history", "request_id": "h", "agent_id": agent, "limit": 3}),
    )
    .await;
    let messages: Vec<&str> = all["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Update memory file data.json",
            "Update memory file images/dot.png",
            "Update memory file notes/tea.md"
        ]
    );
    assert_eq!((&all["file_path"], &all["success"]), (&json!(""), &json!(true)));
    let at = ask(
        &mut client,
        json!({"type": "memory_file_at_ref", "request_id": "at", "agent_id": agent,
            "file_path": "system/human.md", "ref": sha}),
    )
    .await;
    assert_eq!(
        at,
        json!({"type": "memory_file_at_ref_response", "request_id": "at", "file_path": "system/human.md",
            "ref": sha, "content": "---\ndescription: The user\n---\nName: Ada, see [[notes/tea]]\n",
            "success": true})
    );
    let diff = ask(
        &mut client,
        json!({"type": "memory_commit_diff", "request_id": "d", "agent_id": agent, "sha": sha}),
    )
    .await;
    let text = diff["diff"].as_str().expect("a diff");
    assert!(
        text.starts_with("diff --git a/system/human.md b/system/human.md\nnew file mode 100644\n"),
        "{text}"
    );
    assert!(text.ends_with("+++ b/system/human.md\n@@ -0,0 +1,4 @@\n+---\n+description: The user\n+---\n+Name: Ada, see [[notes/tea]]\n"), "{text}");

    // A deletion is a commit too; deleting what is gone succeeds without one.
    client
        .send(json!({"type": "delete_memory_file", "request_id": "del", "agent_id": agent, "path": "notes/n0.md"}))
        .await;
    let frames = client.recv_until_type("delete_memory_file_response").await;
    assert_eq!(frames[frames.len() - 2]["affected_paths"], json!(["notes/n0.md"]));
    assert_eq!(frames.last().unwrap()["committed"], true);
    let gone = ask(
        &mut client,
        json!({"type": "delete_memory_file", "request_id": "del", "agent_id": agent, "path": "notes/n0.md"}),
    )
    .await;
    assert_eq!(
        gone,
        json!({"type": "delete_memory_file_response", "request_id": "del", "agent_id": agent,
            "path": "notes/n0.md", "success": true, "committed": false})
    );
}

#[tokio::test]
async fn paths_outside_the_memory_and_unknown_revisions_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = runtime["agent_id"].clone();
    client
        .send(json!({"type": "enable_memfs", "request_id": "em", "agent_id": agent}))
        .await;
    client.recv_until_type("enable_memfs_response").await;
    for (path, error) in [
        (
            "../escape.md",
            "write_memory_file: path must resolve inside the memory root",
        ),
        (
            "/etc/passwd",
            "write_memory_file: path must be a non-empty relative path",
        ),
        ("", "write_memory_file: path must be a non-empty relative path"),
        (
            ".git/hooks/pre-commit",
            "write_memory_file: path must not be inside the memory repository's .git directory",
        ),
    ] {
        let answer = write(&mut client, &agent, path, "x").await;
        assert_eq!(
            answer,
            json!({"type": "write_memory_file_response", "request_id": "w", "agent_id": agent,
                "path": path, "success": false, "error": error})
        );
    }
    let bad_base64 = ask(
        &mut client,
        json!({"type": "write_memory_file", "request_id": "w", "agent_id": agent, "path": "a.png",
            "content": "not base64!", "encoding": "base64"}),
    )
    .await;
    assert!(
        bad_base64["error"]
            .as_str()
            .unwrap()
            .starts_with("write_memory_file: content is not base64"),
        "{bad_base64}"
    );
    let missing = ask(
        &mut client,
        json!({"type": "read_memory_file", "request_id": "r", "agent_id": agent, "path": "nope.md"}),
    )
    .await;
    assert_eq!(
        (&missing["success"], &missing["content"]),
        (&json!(false), &json!(null))
    );
    let at = ask(
        &mut client,
        json!({"type": "memory_file_at_ref", "request_id": "at", "agent_id": agent,
            "file_path": "x.md", "ref": "no-such-ref"}),
    )
    .await;
    assert_eq!(at["error"], "invalid object name 'no-such-ref'");
    let diff = ask(
        &mut client,
        json!({"type": "memory_commit_diff", "request_id": "d", "agent_id": agent, "sha": "0123abc"}),
    )
    .await;
    assert_eq!(
        (&diff["diff"], &diff["error"]),
        (&json!(null), &json!("bad revision '0123abc'"))
    );
    let unknown = ask(
        &mut client,
        json!({"type": "memory_history", "request_id": "h", "agent_id": "agent-nobody"}),
    )
    .await;
    assert_eq!(
        unknown,
        json!({"type": "memory_history_response", "request_id": "h", "file_path": "", "commits": [],
            "success": false, "error": "Agent agent-nobody not found"})
    );
    let chunks = list(&mut client, &json!("agent-nobody"), false).await;
    assert_eq!(chunks[0]["error"], "Agent agent-nobody not found");
    // Nothing was written outside the memory.
    assert!(
        !server
            .data
            .path()
            .join("store/memfs")
            .join(agent.as_str().unwrap())
            .join("escape.md")
            .exists()
    );
}

/// The model remembers through its `memory` tool: the commit is announced to the conversation's
/// clients, its reason is in the history, and from the next turn on, after a restart too, the
/// file is in the system prompt the model is sent.
#[tokio::test]
async fn what_the_model_commits_to_memory_is_in_its_prompt_after_a_restart() {
    let args = json!({"command": "create", "reason": "Remember the user's name",
        "file_path": "system/human.md", "description": "The user", "file_text": "Name: Ada"});
    let mock = MockServer::scripted(vec![
        MockResponse::sse([
            tool_chunk(0, Some("call-1"), Some("memory"), Some(&args.to_string())),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Noted."), finish_chunk("stop")]),
        MockResponse::sse([text_chunk("You are Ada."), finish_chunk("stop")]),
    ]);
    let base_url = mock.base_url.clone();
    let mut server = TestServer::start_with(|config| config.providers.llama_cpp = base_url).await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs",
            "create_agent": {"body": {"model": "llama.cpp/m", "system": "You are helpful."}}}))
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    let agent = runtime["agent_id"].clone();
    client
        .send(json!({"type": "enable_memfs", "request_id": "em", "agent_id": agent}))
        .await;
    client.recv_until_type("enable_memfs_response").await;

    client.send(user_input("in-1", &runtime, "I am Ada.", "cm-1")).await;
    let frames = client.recv_until_type("turn_finished").await;
    assert!(
        !frames.iter().any(|f| f["type"] == "control_request"),
        "the memory tool needs no approval"
    );
    let updated: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "memory_updated")
        .map(|f| &f["affected_paths"])
        .collect();
    assert_eq!(
        updated,
        [&json!(["*"]), &json!(["system/human.md"])],
        "enable_memfs's, then the tool's"
    );
    let result = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .expect("the tool's result");
    assert!(
        result.to_string().contains("Memory create committed locally ("),
        "{result}"
    );

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-2", "agent_id": agent,
            "conversation_id": runtime["conversation_id"]}))
        .await;
    client.recv_until_type("update_subagent_state").await;
    client.send(user_input("in-2", &runtime, "Who am I?", "cm-2")).await;
    client.recv_until_type("turn_finished").await;

    let requests = mock.requests();
    let system = |n: usize| {
        requests[n].body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(system(0), "You are helpful.", "nothing in memory yet");
    let remembered = system(2);
    assert!(
        remembered.starts_with("You are helpful.\n\nReminder: <projection>"),
        "{remembered}"
    );
    assert!(
        remembered.contains(
            "<human>\n  <projection>$MEMORY_DIR/system/human.md</projection>\n  <description>The user</description>\n  Name: Ada\n</human>"
        ),
        "{remembered}"
    );
    let history = ask(
        &mut client,
        json!({"type": "memory_history", "request_id": "h", "agent_id": agent, "file_path": "system/human.md"}),
    )
    .await;
    assert_eq!(history["commits"][0]["message"], "Remember the user's name");
    let recompiled = drive::call(
        &mut client,
        json!({"type": "conversation_recompile", "conversation_id": runtime["conversation_id"]}),
    )
    .await;
    assert_eq!(
        recompiled["result"],
        json!(remembered),
        "conversation_recompile shows the prompt"
    );
    client.expect_silence(Duration::from_millis(50)).await;
}
