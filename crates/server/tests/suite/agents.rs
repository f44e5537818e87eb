//! The agents group over real sockets (docs/protocol.md §4.6): the `AgentState` every answer
//! shows, create / retrieve / update / list / delete, the personality presets, bad input, and
//! what deleting an agent does to its conversations and running turns.

use std::time::Duration;

use letta_app_server_mock_llm::{MockResponse, MockServer, finish_chunk, text_chunk};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::ask;
use crate::support::wire::{Client, start_runtime, user_input};

async fn create(client: &mut Client, request_id: &str, body: Value) -> Value {
    let response = ask(
        client,
        json!({"type": "agent_create", "request_id": request_id, "body": body}),
    )
    .await;
    assert_eq!(response["success"], true, "{response}");
    response["agent"].clone()
}

async fn retrieve(client: &mut Client, agent_id: &Value) -> Value {
    ask(
        client,
        json!({"type": "agent_retrieve", "request_id": "get", "agent_id": agent_id}),
    )
    .await
}

async fn update(client: &mut Client, agent_id: &Value, body: Value) -> Value {
    ask(
        client,
        json!({"type": "agent_update", "request_id": "upd", "agent_id": agent_id, "body": body}),
    )
    .await
}

async fn list(client: &mut Client, query: Value) -> Value {
    ask(
        client,
        json!({"type": "agent_list", "request_id": "list", "query": query}),
    )
    .await
}

/// The ids of a successful `agent_list_response`.
fn ids(response: &Value) -> Vec<String> {
    assert_eq!(response["success"], true, "{response}");
    response["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|agent| agent["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Asserts that `agent` has every field `@letta-ai/letta-client`'s `AgentState` requires, each
/// of its type.
fn assert_agent_state(agent: &Value) {
    for key in ["id", "name", "agent_type", "system"] {
        assert!(agent[key].is_string(), "`{key}` of {agent}");
    }
    for key in ["blocks", "sources", "tags", "tools"] {
        assert!(agent[key].is_array(), "`{key}` of {agent}");
    }
    assert!(agent["memory"]["blocks"].is_array(), "memory of {agent}");
    let config = &agent["llm_config"];
    assert!(
        config["model"].is_string() && config["model_endpoint_type"].is_string() && config["context_window"].is_u64(),
        "llm_config of {agent}"
    );
}

/// Every way of making an agent gives the same complete `AgentState`; retrieve shows what create
/// and update answered; unknown ids get real Letta's error.
#[tokio::test]
async fn agents_are_created_retrieved_and_updated_as_letta_agent_states() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let body = json!({
        "name": "Helper", "description": "Helps.", "system": "You help.", "model": "llama.cpp/qwen",
        "tags": ["team:a", "origin:letta-code", "team:a"], "metadata": {"owner": "ops"},
        "context_window_limit": 32000, "timezone": "Europe/Paris",
        "memory_blocks": [{"label": "persona", "value": "ignored"}], "tools": ["web_search"],
    });
    let agent = create(&mut client, "create-1", body).await;
    assert_agent_state(&agent);
    let id = agent["id"].clone();
    assert!(id.as_str().unwrap().starts_with("agent-"), "{agent}");
    assert_eq!(
        (
            &agent["name"],
            &agent["description"],
            &agent["system"],
            &agent["tags"],
            &agent["metadata"],
            &agent["model"],
            &agent["agent_type"],
            &agent["timezone"]
        ),
        (
            &json!("Helper"),
            &json!("Helps."),
            &json!("You help."),
            &json!(["team:a", "origin:letta-code"]),
            &json!({"owner": "ops"}),
            &json!("llama.cpp/qwen"),
            &json!("letta_v1_agent"),
            &json!("Europe/Paris")
        )
    );
    assert_eq!(
        (&agent["tools"], &agent["blocks"], &agent["memory"]),
        (&json!([]), &json!([]), &json!({"blocks": []})),
        "tools and memory blocks of a body are not attached"
    );
    assert_eq!(
        (
            &agent["llm_config"]["model"],
            &agent["llm_config"]["model_endpoint_type"],
            &agent["llm_config"]["context_window"],
            &agent["llm_config"]["handle"]
        ),
        (
            &json!("qwen"),
            &json!("llamacpp"),
            &json!(32000),
            &json!("llama.cpp/qwen")
        )
    );
    let retrieved = retrieve(&mut client, &id).await;
    assert_eq!((&retrieved["success"], &retrieved["agent"]), (&json!(true), &agent));

    let changes = json!({
        "name": "Renamed", "description": null, "system": "You help more.", "tags": ["team:b"],
        "metadata": {"owner": "dev"}, "model": "ollama/llama3", "hidden": false, "max_tokens": 512,
    });
    let updated = update(&mut client, &id, changes).await;
    assert_eq!(updated["success"], true, "{updated}");
    let updated = &updated["agent"];
    assert_agent_state(updated);
    assert_eq!(
        (
            &updated["name"],
            &updated["description"],
            &updated["system"],
            &updated["tags"],
            &updated["metadata"],
            &updated["model"],
            &updated["hidden"],
            &updated["created_at"]
        ),
        (
            &json!("Renamed"),
            &json!(null),
            &json!("You help more."),
            &json!(["team:b"]),
            &json!({"owner": "dev"}),
            &json!("ollama/llama3"),
            &json!(false),
            &agent["created_at"]
        )
    );
    assert_eq!(
        (
            &updated["model_settings"],
            &updated["llm_config"]["model_endpoint_type"]
        ),
        (&json!({"max_tokens": 512}), &json!("ollama")),
        "a new model starts from fresh model settings"
    );
    assert_eq!(retrieve(&mut client, &id).await["agent"], *updated);
    let unchanged = update(&mut client, &id, json!({"name": null, "system": null, "unknown": 1})).await;
    assert_eq!(
        (&unchanged["agent"]["name"], &unchanged["agent"]["system"]),
        (&json!("Renamed"), &json!("You help more.")),
        "null leaves a required field as it is"
    );
    let defaulted = update(&mut client, &id, json!({"model": ""})).await;
    assert_eq!(
        (&defaulted["agent"]["model"], &defaulted["agent"]["llm_config"]["model"]),
        (&json!(null), &json!("scripted")),
        "an empty model is the server's default"
    );

    // The agent a runtime_start creates is the same kind of object.
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {}}}))
        .await;
    let started = client.recv_until_type("runtime_start_response").await;
    let started = &started.last().unwrap()["agent"];
    assert_agent_state(started);
    assert_eq!(
        (&started["name"], &started["system"], &started["model"]),
        (&json!("Letta Code"), &json!(""), &json!(null))
    );
    assert_eq!(retrieve(&mut client, &started["id"]).await["agent"], *started);

    for (kind, extra) in [
        ("agent_retrieve", json!({})),
        ("agent_update", json!({"body": {"name": "x"}})),
    ] {
        let mut frame = json!({"type": kind, "request_id": "r-unknown", "agent_id": "agent-nope"});
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(
            ask(&mut client, frame).await,
            json!({"type": format!("{kind}_response"), "request_id": "r-unknown", "success": false,
                "agent": null, "error": "Agent agent-nope not found"})
        );
    }
    assert_eq!(
        ask(
            &mut client,
            json!({"type": "agent_delete", "request_id": "d-unknown", "agent_id": "agent-nope"})
        )
        .await,
        json!({"type": "agent_delete_response", "request_id": "d-unknown", "success": false,
            "agent_id": "agent-nope", "error": "Agent agent-nope not found"})
    );
}

/// `create_agent` makes a preset agent: Letta Code's names and tags, the request's model and
/// extra tags, and real Letta's refusal of an unknown model.
#[tokio::test]
async fn create_agent_makes_preset_agents() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let presets = [
        ("memo", "Letta Code", json!(["origin:letta-code"])),
        (
            "tutorial",
            "Tutor",
            json!(["origin:letta-code", "personality:tutorial"]),
        ),
        ("blank", "Blank", json!(["origin:letta-code"])),
        ("linus", "Linus", json!(["origin:letta-code"])),
        ("kawaii", "Letta-Chan", json!(["origin:letta-code"])),
    ];
    for (personality, name, tags) in presets {
        let response = ask(
            &mut client,
            json!({"type": "create_agent", "request_id": personality, "personality": personality}),
        )
        .await;
        assert_eq!(
            (&response["success"], &response["name"], response.get("model")),
            (&json!(true), &json!(name), None),
            "{response}"
        );
        let agent = retrieve(&mut client, &response["agent_id"]).await["agent"].clone();
        assert_agent_state(&agent);
        assert_eq!(agent["tags"], tags, "{personality}");
        assert!(!agent["system"].as_str().unwrap().is_empty(), "{personality}");
    }

    let response = ask(
        &mut client,
        json!({"type": "create_agent", "request_id": "with-model", "personality": "linus",
            "model": "openai/gpt-4o-mini", "tags": ["team:a", "origin:letta-code"], "pin_global": false}),
    )
    .await;
    assert_eq!(
        (&response["success"], &response["model"]),
        (&json!(true), &json!("openai/gpt-4o-mini"))
    );
    let agent = retrieve(&mut client, &response["agent_id"]).await["agent"].clone();
    assert_eq!(agent["tags"], json!(["origin:letta-code", "team:a"]));

    let response = ask(
        &mut client,
        json!({"type": "create_agent", "request_id": "bad-model", "personality": "memo", "model": "nowhere/model"}),
    )
    .await;
    assert_eq!(response["success"], false);
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .starts_with("Unknown model \"nowhere/model\": unsupported model provider `nowhere`"),
        "{response}"
    );
    assert_eq!(ids(&list(&mut client, json!({"limit": 1000})).await).len(), 6);
}

/// Every kept field of a body is type-checked and bounded, for `agent_create`, `agent_update`
/// and `runtime_start`'s `create_agent` alike; a refused update changes nothing.
#[tokio::test]
async fn bad_agent_bodies_are_refused_with_a_clear_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let agent = create(
        &mut client,
        "create-1",
        json!({"name": "Kept", "model": "openai/gpt-4o"}),
    )
    .await;
    let id = agent["id"].clone();
    let long = |bytes: usize| "x".repeat(bytes);
    let cases = [
        (
            json!({"name": 7}),
            "invalid agent field `name`: expected a string of at most 256 bytes",
        ),
        (
            json!({"name": long(257)}),
            "invalid agent field `name`: expected a string of at most 256 bytes",
        ),
        (
            json!({"description": long(65537)}),
            "invalid agent field `description`: expected a string of at most 65536 bytes, or null",
        ),
        (
            json!({"system": long(262_145)}),
            "invalid agent field `system`: expected a string of at most 262144 bytes",
        ),
        (
            json!({"tags": "a"}),
            "invalid agent field `tags`: expected an array of at most 256 strings of at most 256 bytes each",
        ),
        (
            json!({"tags": (0..257).map(|n| n.to_string()).collect::<Vec<_>>()}),
            "invalid agent field `tags`: expected an array of at most 256 strings of at most 256 bytes each",
        ),
        (
            json!({"tags": [long(257)]}),
            "invalid agent field `tags`: expected an array of at most 256 strings of at most 256 bytes each",
        ),
        (
            json!({"metadata": []}),
            "invalid agent field `metadata`: expected an object of at most 65536 bytes as JSON, or null",
        ),
        (
            json!({"metadata": {"big": long(65536)}}),
            "invalid agent field `metadata`: expected an object of at most 65536 bytes as JSON, or null",
        ),
        (
            json!({"model": 4}),
            "invalid agent field `model`: expected a model handle (`provider/model`) of at most 256 bytes",
        ),
        (
            json!({"model": "openai/"}),
            "Unknown model \"openai/\": a handle is `provider/model`, and this one names no model",
        ),
        (
            json!({"model": "acme/model-1"}),
            "Unknown model \"acme/model-1\": unsupported model provider `acme` in model handle `acme/model-1`; \
             use scripted/, llama.cpp/, lmstudio/, ollama/, openai/, openai-compatible/",
        ),
        (
            json!({"hidden": "yes"}),
            "invalid agent field `hidden`: expected true, false or null",
        ),
        (
            json!({"model_settings": 3}),
            "invalid agent field `model_settings`: expected an object of at most 65536 bytes as JSON, or null",
        ),
        (
            json!({"context_window_limit": -1}),
            "invalid agent field `context_window_limit`: expected a positive integer or null",
        ),
        (
            json!({"max_tokens": "many"}),
            "invalid agent field `max_tokens`: expected a positive integer or null",
        ),
        (
            json!({"parallel_tool_calls": 1}),
            "invalid agent field `parallel_tool_calls`: expected true, false or null",
        ),
    ];
    for (n, (body, error)) in cases.iter().enumerate() {
        let request_id = format!("bad-{n}");
        let created = ask(
            &mut client,
            json!({"type": "agent_create", "request_id": request_id, "body": body}),
        )
        .await;
        assert_eq!(
            created,
            json!({"type": "agent_create_response", "request_id": request_id, "success": false,
                "agent": null, "error": error}),
            "create {body}"
        );
        let updated = update(&mut client, &id, body.clone()).await;
        assert_eq!(
            (&updated["success"], &updated["error"]),
            (&json!(false), &json!(error)),
            "update {body}"
        );
    }
    let bad_type = json!({"agent_type": "robot"});
    let created = ask(
        &mut client,
        json!({"type": "agent_create", "request_id": "bad-type", "body": bad_type}),
    )
    .await;
    assert!(
        created["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid agent field `agent_type`: expected one of memgpt_agent, "),
        "{created}"
    );
    assert_eq!(
        retrieve(&mut client, &id).await["agent"],
        agent,
        "refused updates changed nothing"
    );

    client
        .send(json!({"type": "runtime_start", "request_id": "rs-bad", "create_agent": {"body": {"model": "acme/x"}}}))
        .await;
    let response = client.recv_until_type("runtime_start_response").await.pop().unwrap();
    assert_eq!(
        (&response["success"], &response["created"]["agent"]),
        (&json!(false), &json!(false))
    );
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .starts_with("Unknown model \"acme/x\""),
        "{response}"
    );
    assert_eq!(
        ids(&list(&mut client, json!({})).await),
        [id.as_str().unwrap()],
        "no refused body made an agent"
    );
}

/// `agent_list` pages through many agents in creation order, either way, and filters by name,
/// tags (all, or any with `match_all_tags: false`) and `query_text`; hidden agents are left out.
#[tokio::test]
async fn agent_list_filters_and_pages() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for n in 0..45 {
        let tags = match n % 3 {
            0 => json!(["even-third", "all"]),
            1 => json!(["all"]),
            _ => json!(["other"]),
        };
        let name = if n == 7 {
            "Ärger Seven".to_owned()
        } else {
            format!("agent {n}")
        };
        create(&mut client, &format!("c-{n}"), json!({"name": name, "tags": tags})).await;
    }
    create(&mut client, "hidden", json!({"name": "hidden", "hidden": true})).await;
    create(
        &mut client,
        "sub",
        json!({"name": "sub", "tags": ["role:subagent", "all"]}),
    )
    .await;
    create(
        &mut client,
        "shown-sub",
        json!({"name": "shown sub", "tags": ["role:subagent"], "hidden": false}),
    )
    .await;

    let everything = list(&mut client, json!({"limit": 1000, "order": "asc"})).await;
    let all = ids(&everything);
    assert_eq!(
        all.len(),
        46,
        "the hidden agent and the unhidden subagent-tagged one are left out"
    );
    let created: Vec<&str> = everything["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(everything["agents"][0]["name"], "agent 0");

    let newest_first = ids(&list(&mut client, json!({})).await);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(newest_first, reversed[..20], "by default 20, newest first");
    assert_eq!(
        ids(&list(&mut client, json!({"ascending": true, "limit": 3})).await),
        all[..3],
        "the deprecated `ascending` when `order` is absent"
    );

    // Forward with `after`, as the official client pages (until a page is empty).
    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = ids(&list(&mut client, json!({"limit": 7, "order": "asc", "after": after})).await);
        let Some(last) = page.last() else { break };
        after = json!(last);
        paged.extend(page);
    }
    assert_eq!(paged, all);
    // Backward with `before`, as the official client pages back: the page next to the cursor.
    let page = ids(&list(&mut client, json!({"limit": 5, "order": "asc", "before": all[10]})).await);
    assert_eq!(page, all[5..10]);
    let page = ids(&list(&mut client, json!({"limit": 3, "order": "desc", "before": all[10]})).await);
    assert_eq!(
        page,
        [13, 12, 11].map(|n| all[n].clone()),
        "newest first, before the cursor in that order"
    );
    let mut paged_back = Vec::new();
    let mut before = json!(all[45]);
    loop {
        let page = ids(&list(&mut client, json!({"limit": 7, "order": "asc", "before": before})).await);
        let Some(first) = page.first() else { break };
        before = json!(first);
        paged_back.splice(0..0, page);
    }
    assert_eq!(paged_back, all[..45]);
    let between = ids(&list(&mut client, json!({"order": "asc", "after": all[3], "before": all[6]})).await);
    assert_eq!(between, all[4..6]);

    let named = list(&mut client, json!({"name": "agent 12"})).await;
    assert_eq!(named["agents"].as_array().unwrap().len(), 1);
    assert_eq!(named["agents"][0]["name"], "agent 12");
    let found = list(&mut client, json!({"query_text": "äRGER"})).await;
    assert_eq!(found["agents"][0]["name"], "Ärger Seven", "query_text ignores case");
    assert_eq!(ids(&found).len(), 1);
    let by_id = ids(&list(&mut client, json!({"query_text": all[30].to_uppercase()})).await);
    assert_eq!(by_id, [all[30].clone()], "query_text searches ids too");

    let both = list(&mut client, json!({"tags": ["even-third", "all"], "limit": 1000})).await;
    assert_eq!(ids(&both).len(), 15, "every tag must match");
    let any = list(
        &mut client,
        json!({"tags": ["even-third", "other"], "match_all_tags": false, "limit": 1000}),
    )
    .await;
    assert_eq!(ids(&any).len(), 30, "any tag matches with match_all_tags: false");
    let none = list(&mut client, json!({"tags": ["even-third", "other"], "limit": 1000})).await;
    assert!(ids(&none).is_empty());
    let ignored = list(
        &mut client,
        json!({"project_id": "p", "include": ["agent.tags"], "sort_by": "x"}),
    )
    .await;
    assert_eq!(ids(&ignored).len(), 20, "parameters without effect are accepted");
}

/// Bad `agent_list` queries get `success: false`, no agents and an error naming the parameter.
#[tokio::test]
async fn bad_agent_list_queries_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    create(&mut client, "c", json!({"name": "one"})).await;
    let limit = "Invalid query.limit: expected an integer from 1 to 1000";
    let text = |key: &str, bytes: usize| format!("Invalid query.{key}: expected a string of at most {bytes} bytes");
    let tags = "Invalid query.tags: expected a list of at most 256 strings of at most 256 bytes";
    let cases = [
        (json!({"limit": 0}), limit.to_owned()),
        (json!({"limit": -5}), limit.to_owned()),
        (json!({"limit": 1001}), limit.to_owned()),
        (json!({"limit": 2.5}), limit.to_owned()),
        (json!({"limit": "10"}), limit.to_owned()),
        (json!({"after": 5}), text("after", 256)),
        (json!({"before": {"id": "x"}}), text("before", 256)),
        (json!({"after": "agent-gone"}), "Agent agent-gone not found".to_owned()),
        (json!({"before": "agent-gone"}), "Agent agent-gone not found".to_owned()),
        (
            json!({"order": "up"}),
            "Invalid query.order: expected one of asc, desc".to_owned(),
        ),
        (
            json!({"order": 1}),
            "Invalid query.order: expected one of asc, desc".to_owned(),
        ),
        (
            json!({"ascending": "yes"}),
            "Invalid query.ascending: expected true or false".to_owned(),
        ),
        (json!({"tags": "team"}), tags.to_owned()),
        (json!({"tags": [1]}), tags.to_owned()),
        (
            json!({"match_all_tags": 1}),
            "Invalid query.match_all_tags: expected true or false".to_owned(),
        ),
        (json!({"name": 5}), text("name", 256)),
        (json!({"query_text": []}), text("query_text", 256)),
    ];
    for (n, (query, error)) in cases.into_iter().enumerate() {
        let request_id = format!("bad-{n}");
        let response = ask(
            &mut client,
            json!({"type": "agent_list", "request_id": request_id, "query": query}),
        )
        .await;
        assert_eq!(
            response,
            json!({"type": "agent_list_response", "request_id": request_id, "success": false,
                "agents": [], "error": error}),
            "{query}"
        );
    }
    let nulls = json!({"limit": null, "after": null, "order": null, "tags": null, "name": null});
    assert_eq!(ids(&list(&mut client, nulls).await).len(), 1, "null means absent");
}

/// A turn reads its agent's model and system prompt when it starts: `agent_update` applies from
/// the next turn of a conversation already in memory.
#[tokio::test]
async fn an_update_applies_from_the_next_turn_of_a_loaded_conversation() {
    let reply = || MockResponse::sse([text_chunk("ok"), finish_chunk("stop")]);
    let mock = MockServer::scripted(vec![reply(), reply()]);
    let base_url = mock.base_url.clone();
    let server = TestServer::start_with(|config| config.providers.llama_cpp = base_url).await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-1",
            "create_agent": {"body": {"model": "llama.cpp/first-model", "system": "Be brief."}}}))
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    client.recv_until_type("turn_finished").await;

    let updated = update(
        &mut client,
        &runtime["agent_id"],
        json!({"model": "llama.cpp/second-model", "system": "Be thorough."}),
    )
    .await;
    assert_eq!(updated["success"], true, "{updated}");
    client.send(user_input("in-2", &runtime, "again", "cm-2")).await;
    client.recv_until_type("turn_finished").await;

    let requests = mock.requests();
    let sent = |n: usize| {
        (
            requests[n].body["model"].clone(),
            requests[n].body["messages"][0].clone(),
        )
    };
    assert_eq!(
        sent(0),
        (json!("first-model"), json!({"role": "system", "content": "Be brief."}))
    );
    assert_eq!(
        sent(1),
        (
            json!("second-model"),
            json!({"role": "system", "content": "Be thorough."})
        )
    );
}

/// Deleting an agent mid-turn: its running turn is aborted (every subscriber gets the abort's
/// frames and `turn_finished` cancelled), its queued input cancelled, the answer comes after, and
/// from then on its conversations are gone: commands on them get the unknown-runtime answers.
#[tokio::test]
async fn deleting_an_agent_mid_turn_aborts_it_and_forgets_its_conversations() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent_id = runtime["agent_id"].clone();
    let mut watcher = server.client().await;
    watcher
        .send(
            json!({"type": "runtime_start", "request_id": "join", "agent_id": agent_id,
            "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    watcher.recv_until_type("update_subagent_state").await;
    let mut other = server.client().await;
    let other_runtime = start_runtime(&mut other).await;

    client
        .send(user_input(
            "in-1",
            &runtime,
            "one two three four [[delay: 500]]",
            "cm-1",
        ))
        .await;
    client
        .recv_until(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "assistant_message")
        .await;
    client.send(user_input("in-2", &runtime, "queued", "cm-2")).await;
    let queued = client.recv_until_type("input_accepted").await.pop().unwrap();
    assert_eq!(queued["disposition"], "queued", "{queued}");

    client
        .send(json!({"type": "agent_delete", "request_id": "del-1", "agent_id": agent_id}))
        .await;
    let frames = client.recv_until_type("agent_delete_response").await;
    let position = |done: &dyn Fn(&Value) -> bool| frames.iter().position(done);
    let interrupted = position(&|f| f["type"] == "stream_delta" && f["delta"]["message"] == "Interrupted")
        .expect("the abort's status");
    let cancelled = position(&|f| f["type"] == "update_queue" && f["removed"][0]["disposition"] == "cancelled")
        .expect("the queued input cancelled");
    let finished = position(&|f| f["type"] == "turn_finished").expect("turn_finished");
    assert_eq!(frames[finished]["stop_reason"], "cancelled");
    assert!(interrupted < finished && cancelled < finished);
    assert_eq!(
        frames.last().unwrap(),
        &json!({"type": "agent_delete_response", "request_id": "del-1", "success": true, "agent_id": agent_id})
    );
    let seen = watcher.recv_until_type("turn_finished").await;
    assert_eq!(seen.last().unwrap()["stop_reason"], "cancelled");
    assert_eq!(watcher.recv().await["device_status"]["is_processing"], false);
    assert!(
        seen.iter()
            .any(|f| f["type"] == "update_queue" && f["removed"][0]["client_message_id"] == "cm-2")
    );

    // The scope is gone: commands on it get the unknown-runtime answers.
    client.send(user_input("in-3", &runtime, "anyone?", "cm-3")).await;
    let refused = client.recv_until_type("input_accepted").await;
    assert_eq!(refused[0]["code"], "unknown_runtime", "{refused:?}");
    assert_eq!(
        refused[0]["message"],
        format!(
            "Agent {} not found; send runtime_start first",
            agent_id.as_str().unwrap()
        )
    );
    assert_eq!(refused[1]["accepted"], false);
    let synced = ask(
        &mut client,
        json!({"type": "sync", "request_id": "sync-1", "runtime": runtime}),
    )
    .await;
    assert_eq!(synced["success"], false, "{synced}");
    let rejoined = ask(
        &mut client,
        json!({"type": "runtime_start", "request_id": "rs-again", "agent_id": agent_id,
            "conversation_id": runtime["conversation_id"]}),
    )
    .await;
    assert_eq!(
        (&rejoined["success"], &rejoined["error"]),
        (
            &json!(false),
            &json!(format!("Agent {} not found", agent_id.as_str().unwrap()))
        )
    );
    let gone = retrieve(&mut client, &agent_id).await;
    assert_eq!(gone["error"], format!("Agent {} not found", agent_id.as_str().unwrap()));
    let again = ask(
        &mut client,
        json!({"type": "agent_delete", "request_id": "del-2", "agent_id": agent_id}),
    )
    .await;
    assert_eq!(again["success"], false);
    // Nothing of the queued input runs, nothing more reaches the subscribers.
    watcher.expect_silence(Duration::from_millis(700)).await;

    // Another agent is untouched.
    other
        .send(user_input("in-o", &other_runtime, "still here?", "cm-o"))
        .await;
    let finished = other.recv_until_type("turn_finished").await;
    assert_eq!(finished.last().unwrap()["stop_reason"], "end_turn");
}

/// Deleting an agent withdraws its pending approval: nobody is asked again, neither a client
/// connecting later nor one starting the conversation again.
#[tokio::test]
async fn deleting_an_agent_withdraws_its_pending_approval() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-1", "mode": "standard",
            "cwd": server.data.path(), "create_agent": {"body": {"name": "Asker"}}}),
        )
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    let command = json!({"command": "mkdir -p made", "description": "Make a directory"});
    client
        .send(user_input(
            "in-1",
            &runtime,
            &format!("[[tool: Bash {command}]]"),
            "cm-1",
        ))
        .await;
    client.recv_until_type("control_request").await;

    let deleted = ask(
        &mut client,
        json!({"type": "agent_delete", "request_id": "del", "agent_id": runtime["agent_id"]}),
    )
    .await;
    assert_eq!(deleted["success"], true, "{deleted}");
    assert!(
        client
            .received
            .iter()
            .any(|f| f["type"] == "turn_finished" && f["stop_reason"] == "cancelled")
    );
    let mut later = server.client().await;
    later.expect_silence(Duration::from_millis(300)).await;
    let answer = json!({"type": "input", "request_id": "ans", "runtime": runtime,
        "payload": {"kind": "approval_response", "request_id": "perm-call_1", "decision": {"behavior": "allow"}}});
    client.send(answer).await;
    let refused = client.recv_until_type("input_accepted").await.pop().unwrap();
    assert_eq!(refused["accepted"], false, "{refused}");
    assert!(
        !server.data.path().join("made").exists(),
        "the withdrawn call never ran"
    );
}

/// An agent stored by an earlier version (its create body as it came) reads as a complete
/// `AgentState` in every answer, and can be updated and run.
#[tokio::test]
async fn an_agent_stored_by_an_earlier_version_reads_completely() {
    let mut server = TestServer::start().await;
    server.stop().await;
    let old = json!({"name": "Old", "tools": ["web_search"], "include_base_tools": false, "id": "agent-old",
        "description": null, "system": "", "tags": [], "model": null,
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"});
    let db = rusqlite::Connection::open(server.data.path().join("store/letta-app-server.sqlite3")).expect("the store");
    db.execute(
        "INSERT INTO agents (id, state, created_at) VALUES ('agent-old', ?1, '2026-01-01T00:00:00.000Z')",
        [old.to_string()],
    )
    .expect("an old agent");
    drop(db);
    server.restart().await;
    let mut client = server.client().await;

    let retrieved = retrieve(&mut client, &json!("agent-old")).await["agent"].clone();
    assert_agent_state(&retrieved);
    assert_eq!((&retrieved["name"], &retrieved["tools"]), (&json!("Old"), &json!([])));
    assert_eq!(list(&mut client, json!({})).await["agents"][0], retrieved);
    let started = ask(
        &mut client,
        json!({"type": "runtime_start", "request_id": "rs-old", "agent_id": "agent-old"}),
    )
    .await;
    assert_eq!(started["agent"], retrieved);
    let updated = update(&mut client, &json!("agent-old"), json!({"tags": ["kept"]})).await;
    assert_agent_state(&updated["agent"]);
    assert_eq!(updated["agent"]["tags"], json!(["kept"]));
}
