//! The conversations group over a real socket (docs/protocol.md §4.7): listing, reading and
//! editing conversations, their history as Letta messages page by page, forks, compaction and
//! the compiled system prompt.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{call, items, prompt_tokens, text, turn};
use crate::support::wire::{Client, normalize, start_runtime, user_input};

/// Every message of a conversation, oldest first, read with `query` page by page.
async fn all_messages(client: &mut Client, conversation_id: &str, limit: u64) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut before = Value::Null;
    loop {
        let page = call(
            client,
            json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
                "query": {"limit": limit, "before": before}}),
        )
        .await;
        assert_eq!(page["success"], true, "{page}");
        let batch = items(&page["messages"]).clone();
        assert!(batch.len() as u64 <= limit);
        messages.extend(batch);
        if page["has_more"] == false {
            break;
        }
        before = page["next_before"].clone();
    }
    messages.reverse();
    messages
}

/// The history lists every message of every turn as Letta messages, under the ids their
/// deltas carried: user, reasoning, assistant, approval request, tool return, error.
#[tokio::test]
async fn the_history_lists_every_message_under_its_streamed_id() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let conversation_id = text(&runtime["conversation_id"]).to_owned();

    let first = turn(
        &mut client,
        &runtime,
        "hello [[think: pondering]] [[reply: Hi there]]",
        1,
    )
    .await;
    let tool = turn(
        &mut client,
        &runtime,
        r#"run it [[tool: Bash {"command":"echo listed"}]]"#,
        2,
    )
    .await;
    turn(&mut client, &runtime, "break [[fail: 400 bad request]]", 3).await;

    let streamed: HashSet<(String, String)> = first
        .iter()
        .chain(&tool)
        .filter(|f| f["type"] == "stream_delta")
        .filter(|f| {
            let kind = f["delta"]["message_type"].as_str().unwrap_or_default();
            ["reasoning_message", "assistant_message", "approval_request_message"].contains(&kind)
        })
        .map(|f| {
            (
                text(&f["delta"]["id"]).to_owned(),
                text(&f["delta"]["message_type"]).to_owned(),
            )
        })
        .collect();

    let page = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
            "query": {"order": "asc", "limit": 100}}),
    )
    .await;
    assert_eq!(page["success"], true, "{page}");
    let messages = items(&page["messages"]);
    let types: Vec<&str> = messages.iter().map(|m| text(&m["message_type"])).collect();
    assert_eq!(
        types,
        [
            "user_message",
            "reasoning_message",
            "assistant_message",
            "user_message",
            "approval_request_message",
            "tool_return_message",
            "assistant_message",
            "user_message",
            "error_message",
        ],
        "{page}"
    );
    for message in messages {
        assert_eq!(message["conversation_id"], conversation_id.as_str());
        assert_eq!(message["agent_id"], runtime["agent_id"]);
        assert!(message["date"].as_str().is_some_and(|d| d.ends_with('Z')), "{message}");
    }
    assert_eq!(
        messages[0]["content"],
        json!([{"type": "text", "text": "hello [[think: pondering]] [[reply: Hi there]]"}])
    );
    assert_eq!(messages[1]["reasoning"], "pondering");
    assert_eq!(messages[2]["content"][0]["text"], "Hi there");
    assert_eq!(messages[4]["tool_call"]["name"], "Bash");
    assert_eq!(messages[5]["status"], "success");
    assert!(text(&messages[5]["tool_return"]).contains("listed"), "{}", messages[5]);
    assert_eq!(messages[8]["message"], "400: bad request");
    let listed: HashSet<(String, String)> = messages
        .iter()
        .map(|m| (text(&m["id"]).to_owned(), text(&m["message_type"]).to_owned()))
        .collect();
    assert!(
        streamed.is_subset(&listed),
        "every streamed message is listed under its id: {streamed:?} vs {listed:?}"
    );
    let ids: HashSet<&str> = messages.iter().map(|m| text(&m["id"])).collect();
    assert_eq!(ids.len(), messages.len(), "ids are unique");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_before"], messages[0]["id"], "the oldest of the page");
    insta::assert_json_snapshot!("history_of_three_turns", normalize(std::slice::from_ref(&page)));
}

/// Pages walk the whole history without gaps or repeats, in both orders; `after`, `before`
/// and the type filter bound them; bad parameters get a clear error.
#[tokio::test]
async fn pages_cover_the_history_exactly_once_and_bad_parameters_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let conversation_id = text(&runtime["conversation_id"]).to_owned();
    for n in 0..12 {
        turn(&mut client, &runtime, &format!("turn {n} [[think: t{n}]]"), n).await;
    }

    let whole = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
            "query": {"order": "asc", "limit": 1000}}),
    )
    .await;
    let whole = items(&whole["messages"]).clone();
    assert_eq!(whole.len(), 36, "user, reasoning and reply of 12 turns");
    for limit in [1, 5, 7, 36, 50] {
        assert_eq!(
            all_messages(&mut client, &conversation_id, limit).await,
            whole,
            "limit {limit}"
        );
    }

    let default_page = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id}),
    )
    .await;
    let newest_first: Vec<Value> = whole.iter().rev().cloned().collect();
    assert_eq!(
        items(&default_page["messages"]),
        &newest_first,
        "newest first by default"
    );
    assert_eq!(default_page["has_more"], false);

    // `after` a reasoning message: the rest of its turn, then the later turns.
    let cursor = whole[4]["id"].clone();
    let after = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
            "query": {"after": cursor, "order": "asc", "limit": 4}}),
    )
    .await;
    assert_eq!(items(&after["messages"]), &whole[5..9]);
    assert_eq!(after["next_before"], whole[5]["id"]);
    assert_eq!(after["has_more"], true, "older messages exist");
    let between = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
            "query": {"after": whole[4]["id"], "before": whole[8]["id"]}}),
    )
    .await;
    let expected: Vec<Value> = whole[5..8].iter().rev().cloned().collect();
    assert_eq!(items(&between["messages"]), &expected);

    let replies = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id,
            "query": {"include_return_message_types": ["assistant_message"], "limit": 3}}),
    )
    .await;
    let texts: Vec<&str> = replies["messages"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| text(&m["message_type"]))
        .collect();
    assert_eq!(texts, ["assistant_message"; 3]);
    assert_eq!(replies["has_more"], true);

    for (query, error) in [
        (
            json!({"limit": -1}),
            "Invalid query.limit: expected an integer from 1 to 1000",
        ),
        (
            json!({"limit": 0}),
            "Invalid query.limit: expected an integer from 1 to 1000",
        ),
        (
            json!({"limit": 5000}),
            "Invalid query.limit: expected an integer from 1 to 1000",
        ),
        (
            json!({"limit": "ten"}),
            "Invalid query.limit: expected an integer from 1 to 1000",
        ),
        (
            json!({"order": "sideways"}),
            "Invalid query.order: expected one of asc, desc",
        ),
        (json!({"before": "message-nope"}), "Message message-nope not found"),
        (
            json!({"after": 7}),
            "Invalid query.after: expected a string of at most 256 bytes",
        ),
    ] {
        let answer = call(
            &mut client,
            json!({"type": "conversation_messages_list", "conversation_id": conversation_id, "query": query}),
        )
        .await;
        assert_eq!(
            (
                &answer["success"],
                &answer["error"],
                &answer["messages"],
                &answer["has_more"]
            ),
            (&json!(false), &json!(error), &json!([]), &json!(false)),
            "{answer}"
        );
        assert_eq!(answer["next_before"], Value::Null);
    }
    let unknown = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": "conv-nope"}),
    )
    .await;
    assert_eq!(unknown["error"], "Conversation conv-nope not found");
}

/// The user message of a running turn is listed while it runs; the reply once its run ends.
#[tokio::test]
async fn a_running_turn_s_messages_are_listed_as_they_are_stored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, "slow [[delay: 300]]", "cm-1"))
        .await;
    client.recv_until_type("input_accepted").await;
    let listing = json!({"type": "conversation_messages_list", "conversation_id": runtime["conversation_id"]});
    let during = call(&mut client, listing.clone()).await;
    let types: Vec<&str> = during["messages"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| text(&m["message_type"]))
        .collect();
    assert_eq!(types, ["user_message"], "{during}");
    client.recv_until_type("turn_finished").await;
    let after = call(&mut client, listing).await;
    assert_eq!(items(&after["messages"]).len(), 2, "{after}");
}

/// Conversations are listed by last activity, page by page, filtered by agent, summary,
/// archived and hidden; created, read and updated with Letta's errors for bad input.
#[tokio::test]
async fn conversations_are_created_listed_and_updated() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent_id = runtime["agent_id"].clone();
    let started = runtime["conversation_id"].clone();

    let mut created = Vec::new();
    for n in 0..5 {
        let answer = call(
            &mut client,
            json!({"type": "conversation_create", "body": {"agent_id": agent_id, "summary": format!("Topic {n}")}}),
        )
        .await;
        assert_eq!(answer["success"], true, "{answer}");
        let conversation = &answer["conversation"];
        assert_eq!(conversation["agent_id"], agent_id);
        assert_eq!(conversation["summary"], format!("Topic {n}"));
        assert_eq!(conversation["archived"], false);
        created.push(conversation["id"].clone());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let list = |query: Value| json!({"type": "conversation_list", "query": query});
    let ids = |answer: &Value| -> Vec<Value> {
        answer["conversations"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|c| c["id"].clone())
            .collect()
    };
    let mut newest_first: Vec<Value> = created.iter().rev().cloned().collect();
    newest_first.push(started.clone());
    assert_eq!(
        ids(&call(&mut client, list(json!({"agent_id": agent_id}))).await),
        newest_first
    );

    // Activity moves a conversation to the top.
    let oldest = json!({"agent_id": agent_id, "conversation_id": created[0]});
    turn(&mut client, &oldest, "bump", 1).await;
    let page = call(&mut client, list(json!({"agent_id": agent_id, "limit": 2}))).await;
    assert_eq!(ids(&page), [created[0].clone(), created[4].clone()]);
    assert!(page["conversations"][0]["last_message_at"].is_string());
    let next = call(
        &mut client,
        list(json!({"agent_id": agent_id, "limit": 2, "after": created[4]})),
    )
    .await;
    assert_eq!(ids(&next), [created[3].clone(), created[2].clone()]);
    let asc = call(
        &mut client,
        list(json!({"agent_id": agent_id, "order": "asc", "limit": 1})),
    )
    .await;
    assert_eq!(ids(&asc), std::slice::from_ref(&started));
    let by_creation = call(
        &mut client,
        list(json!({"agent_id": agent_id, "order_by": "created_at", "limit": 1})),
    )
    .await;
    assert_eq!(ids(&by_creation), [created[4].clone()]);
    let searched = call(&mut client, list(json!({"summary_search": "topic 3"}))).await;
    assert_eq!(ids(&searched), [created[3].clone()]);

    // Updates: summary, archived (hidden from the default list), hidden.
    let updated = call(
        &mut client,
        json!({"type": "conversation_update", "conversation_id": created[1],
            "body": {"summary": "Renamed", "archived": true}}),
    )
    .await;
    assert_eq!(updated["success"], true, "{updated}");
    assert_eq!(updated["conversation"]["summary"], "Renamed");
    assert!(updated["conversation"]["archived_at"].is_string());
    let hidden = call(
        &mut client,
        json!({"type": "conversation_update", "conversation_id": created[2], "body": {"hidden": true}}),
    )
    .await;
    assert_eq!(hidden["success"], true, "{hidden}");
    let listed = ids(&call(&mut client, list(json!({"agent_id": agent_id}))).await);
    assert!(
        !listed.contains(&created[1]) && !listed.contains(&created[2]),
        "{listed:?}"
    );
    let archived = call(&mut client, list(json!({"archive_status": "archived"}))).await;
    assert_eq!(ids(&archived), [created[1].clone()]);
    let with_hidden = ids(&call(&mut client, list(json!({"include_hidden": true}))).await);
    assert!(with_hidden.contains(&created[2]));
    let retrieved = call(
        &mut client,
        json!({"type": "conversation_retrieve", "conversation_id": created[1]}),
    )
    .await;
    assert_eq!(retrieved["conversation"]["summary"], "Renamed");

    for (command, error) in [
        (
            json!({"type": "conversation_retrieve", "conversation_id": "conv-nope"}),
            "Conversation conv-nope not found",
        ),
        (
            json!({"type": "conversation_update", "conversation_id": "conv-nope", "body": {}}),
            "Conversation conv-nope not found",
        ),
        (
            json!({"type": "conversation_update", "conversation_id": "default", "body": {"summary": "x"}}),
            "Default conversation cannot be updated",
        ),
        (
            json!({"type": "conversation_update", "conversation_id": created[0], "body": {"summary": 5}}),
            "Invalid body.summary: expected a string or null",
        ),
        (
            json!({"type": "conversation_update", "conversation_id": created[0], "body": {"model": "nowhere/x"}}),
            "unsupported model provider `nowhere` in model handle `nowhere/x`; use scripted/, llama.cpp/, lmstudio/, ollama/, openai/, openai-compatible/",
        ),
        (
            json!({"type": "conversation_create", "body": {"agent_id": "agent-nope"}}),
            "Agent agent-nope not found",
        ),
        (
            json!({"type": "conversation_create", "body": {}}),
            "Invalid body.agent_id: expected the id of the conversation's agent",
        ),
        (
            json!({"type": "conversation_list", "query": {"after": "conv-nope"}}),
            "Conversation conv-nope not found",
        ),
        (
            json!({"type": "conversation_list", "query": {"limit": 0}}),
            "Invalid query.limit: expected an integer from 1 to 1000",
        ),
        (
            json!({"type": "conversation_list", "query": {"archive_status": "gone"}}),
            "Invalid query.archive_status: expected one of unarchived, archived, all",
        ),
    ] {
        let answer = call(&mut client, command.clone()).await;
        assert_eq!(
            (&answer["success"], &answer["error"]),
            (&json!(false), &json!(error)),
            "{command} → {answer}"
        );
    }
}

/// A fork copies the history through a message into a new conversation, under new ids; the
/// source is unchanged.
#[tokio::test]
async fn a_fork_copies_the_history_through_a_message() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let source = runtime["conversation_id"].clone();
    for n in 0..3 {
        turn(&mut client, &runtime, &format!("turn {n}"), n).await;
    }
    let history = all_messages(&mut client, text(&source), 100).await;
    assert_eq!(history.len(), 6);

    let forked = call(
        &mut client,
        json!({"type": "conversation_fork", "conversation_id": source, "body": {"message_id": history[3]["id"]}}),
    )
    .await;
    assert_eq!(forked["success"], true, "{forked}");
    let fork_id = text(&forked["conversation"]["id"]).to_owned();
    let copy = all_messages(&mut client, &fork_id, 100).await;
    let texts = |messages: &[Value]| -> Vec<Value> { messages.iter().map(|m| m["content"].clone()).collect() };
    assert_eq!(texts(&copy), texts(&history[..4]));
    assert!(copy.iter().all(|m| m["conversation_id"] == fork_id.as_str()));
    assert!(copy.iter().zip(&history).all(|(a, b)| a["id"] != b["id"]), "new ids");
    assert_eq!(all_messages(&mut client, text(&source), 100).await, history);

    // The fork runs turns of its own with the copied history.
    let fork_scope = json!({"agent_id": runtime["agent_id"], "conversation_id": fork_id});
    turn(&mut client, &fork_scope, "continue", 9).await;
    assert_eq!(all_messages(&mut client, &fork_id, 100).await.len(), 6);

    let whole = call(
        &mut client,
        json!({"type": "conversation_fork", "conversation_id": source}),
    )
    .await;
    let whole_id = text(&whole["conversation"]["id"]).to_owned();
    assert_eq!(all_messages(&mut client, &whole_id, 100).await.len(), 6);
    let default = call(
        &mut client,
        json!({"type": "conversation_fork", "conversation_id": "default", "body": {"agent_id": runtime["agent_id"]}}),
    )
    .await;
    assert_eq!(default["success"], true, "{default}");

    for (command, error) in [
        (
            json!({"type": "conversation_fork", "conversation_id": source, "body": {"message_id": "message-nope"}}),
            "Message message-nope not found",
        ),
        (
            json!({"type": "conversation_fork", "conversation_id": "conv-nope"}),
            "Conversation conv-nope not found",
        ),
        (
            json!({"type": "conversation_fork", "conversation_id": source, "body": {"agent_id": "agent-nope"}}),
            "Agent agent-nope not found",
        ),
    ] {
        let answer = call(&mut client, command.clone()).await;
        assert_eq!(
            (&answer["success"], &answer["error"]),
            (&json!(false), &json!(error)),
            "{answer}"
        );
        assert_eq!(answer["conversation"], Value::Null);
    }
}

/// Compaction: the model summarises the older messages; the summary is listed, and later turns
/// (also after a restart) send it instead of what it replaced.
#[tokio::test]
async fn compaction_replaces_older_messages_with_a_summary_for_later_turns() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let conversation_id = runtime["conversation_id"].clone();
    let compact = json!({"type": "conversation_compact", "conversation_id": conversation_id});

    let empty = call(&mut client, compact.clone()).await;
    assert_eq!(
        (&empty["success"], &empty["error"], &empty["compaction"]),
        (
            &json!(false),
            &json!("Nothing to compact: the conversation has no messages"),
            &Value::Null
        )
    );
    let words = "lorem ipsum dolor sit amet ".repeat(20);
    for n in 0..5 {
        turn(&mut client, &runtime, &format!("turn {n} {words}"), n).await;
    }
    let before = prompt_tokens(&turn(&mut client, &runtime, "measure", 10).await);

    let answer = call(&mut client, compact.clone()).await;
    assert_eq!(answer["success"], true, "{answer}");
    let compaction = &answer["compaction"];
    assert_eq!(compaction["num_messages_before"], 12);
    assert_eq!(
        compaction["num_messages_after"], 3,
        "the summary and the last turn (30% at most)"
    );
    let summary = text(&compaction["summary"]);
    assert!(
        summary.starts_with("Summary of 10 earlier messages (5 from the user)."),
        "{summary}"
    );
    assert!(summary.contains("The user first said \"turn 0 lorem"), "{summary}");

    let after = prompt_tokens(&turn(&mut client, &runtime, "measure", 11).await);
    assert!(after < before / 2, "later turns send the summary: {before} → {after}");

    let listed = call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id, "query": {"limit": 3}}),
    )
    .await;
    let types: Vec<&str> = listed["messages"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| text(&m["message_type"]))
        .collect();
    assert_eq!(
        types,
        ["assistant_message", "user_message", "summary_message"],
        "{listed}"
    );
    assert_eq!(listed["messages"][2]["summary"], summary, "listed when it was made");
    assert_eq!(listed["messages"][2]["compaction_stats"]["trigger"], "manual");
    let all = all_messages(&mut client, text(&conversation_id), 100).await;
    assert_eq!(all.len(), 12 + 1 + 2, "the compacted messages stay listed");

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let resumed = prompt_tokens(&turn(&mut client, &runtime, "measure", 12).await);
    assert!(
        resumed < before / 2,
        "still compacted after a restart: {before} → {resumed}"
    );

    let all = call(
        &mut client,
        json!({"type": "conversation_compact", "conversation_id": conversation_id,
            "body": {"compaction_settings": {"mode": "all"}}}),
    )
    .await;
    assert_eq!(all["compaction"]["num_messages_after"], 1, "{all}");
    let bad = call(
        &mut client,
        json!({"type": "conversation_compact", "conversation_id": conversation_id,
            "body": {"compaction_settings": {"mode": "most"}}}),
    )
    .await;
    assert_eq!(
        bad["error"],
        "Invalid body.compaction_settings.mode: expected one of all, sliding_window, self_compact_all, self_compact_sliding_window"
    );

    // Refused while a turn runs.
    client
        .send(user_input("in-busy", &runtime, "slow [[delay: 300]]", "cm-busy"))
        .await;
    client.recv_until_type("input_accepted").await;
    let busy = call(&mut client, compact).await;
    assert_eq!(busy["error"], "Cannot compact the conversation while a turn is running");
    client.recv_until_type("turn_finished").await;
}

/// `conversation_recompile` answers the system prompt the next turn sends.
#[tokio::test]
async fn recompile_answers_the_compiled_system_prompt() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs",
            "create_agent": {"body": {"name": "Sys", "system": "You are terse."}}}))
        .await;
    let frames = client.recv_until_type("runtime_start_response").await;
    let runtime = frames.last().expect("a frame")["runtime"].clone();
    let answer = call(
        &mut client,
        json!({"type": "conversation_recompile", "conversation_id": runtime["conversation_id"],
            "body": {"dry_run": true}}),
    )
    .await;
    assert_eq!(
        (&answer["success"], &answer["result"]),
        (&json!(true), &json!("You are terse.")),
        "{answer}"
    );
    let unknown = call(
        &mut client,
        json!({"type": "conversation_recompile", "conversation_id": "conv-nope"}),
    )
    .await;
    assert_eq!(
        (&unknown["error"], &unknown["result"]),
        (&json!("Conversation conv-nope not found"), &Value::Null)
    );
}

/// A fork keeps the source conversation's toolset preference.
#[tokio::test]
async fn a_fork_keeps_the_toolset_preference() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let set = call(
        &mut client,
        json!({"type": "update_toolset", "runtime": runtime, "toolset_preference": "none"}),
    )
    .await;
    assert_eq!(set["success"], true, "{set}");
    let forked = call(
        &mut client,
        json!({"type": "conversation_fork", "conversation_id": runtime["conversation_id"]}),
    )
    .await;
    let fork = json!({"agent_id": runtime["agent_id"], "conversation_id": forked["conversation"]["id"]});
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-fork", "agent_id": fork["agent_id"],
            "conversation_id": fork["conversation_id"]}),
        )
        .await;
    let frames = client.recv_until_type("update_subagent_state").await;
    let device = frames
        .iter()
        .find(|f| f["type"] == "update_device_status")
        .expect("a device status");
    assert_eq!(
        device["device_status"]["current_toolset_preference"], "none",
        "{device}"
    );
}
