//! The models group over real sockets: `list_models` against real local OpenAI-compatible HTTP
//! servers (one answering, one down, one that never answers), `update_model` and the turns that
//! follow it, `update_toolset`, and the provider commands with their stored keys.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use letta_app_server_mock_llm::{MockResponse, MockServer, Script, finish_chunk, text_chunk};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime, user_input};

/// A loopback port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

/// A server that accepts connections and never answers; it stops with the test.
async fn hanging_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

/// A mock model server answering every chat request with `text`.
fn mock_replying(text: &str) -> MockServer<Script> {
    MockServer::scripted(vec![MockResponse::sse([text_chunk(text), finish_chunk("stop")])])
}

/// A server whose llama.cpp lives at `llama_cpp`, with LM Studio and Ollama down and no OpenAI key.
async fn server_with(llama_cpp: &str, configure: impl FnOnce(&mut letta_app_server::Config)) -> TestServer {
    let (llama_cpp, lmstudio, ollama) = (llama_cpp.to_owned(), closed_port(), closed_port());
    TestServer::start_with(|config| {
        let providers = &mut config.providers;
        providers.llama_cpp = llama_cpp;
        providers.lmstudio = lmstudio;
        providers.ollama = ollama;
        providers.openai_api_key = None;
        providers.retry_base_delay = Duration::from_millis(10);
        configure(config);
    })
    .await
}

/// Sends `frame` and returns the response of `response_type` (other frames are skipped).
async fn ask(client: &mut Client, frame: Value, response_type: &str) -> Value {
    client.send(frame).await;
    client.recv_until_type(response_type).await.pop().expect("a response")
}

async fn list_models(client: &mut Client, force: bool) -> Value {
    let frame = json!({"type": "list_models", "request_id": "lm", "force": force});
    ask(client, frame, "list_models_response").await
}

fn handles(response: &Value) -> Vec<&str> {
    response["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["handle"].as_str().expect("a handle"))
        .collect()
}

async fn connect(client: &mut Client, provider_id: &str, fields: Value) -> Value {
    let frame = json!({"type": "connect_provider", "request_id": "cp", "target": "local",
        "provider_id": provider_id, "fields": fields});
    ask(client, frame, "connect_provider_response").await
}

async fn update_model(client: &mut Client, runtime: &Value, payload: Value) -> Value {
    let frame = json!({"type": "update_model", "request_id": "um", "runtime": runtime, "payload": payload});
    ask(client, frame, "update_model_response").await
}

async fn update_toolset(client: &mut Client, runtime: &Value, preference: &str) -> Value {
    let frame = json!({"type": "update_toolset", "request_id": "ut", "runtime": runtime,
        "toolset_preference": preference});
    ask(client, frame, "update_toolset_response").await
}

/// The entry of `list_connect_providers` (or a connect answer) with this id.
fn provider<'a>(response: &'a Value, id: &str) -> &'a Value {
    response["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no provider {id} in {response}"))
}

fn auth_file(server: &TestServer) -> PathBuf {
    server.data.path().join("store/providers/auth.json")
}

/// The default conversation of the agent of `runtime`, started on `client`.
async fn default_conversation(client: &mut Client, runtime: &Value) -> Value {
    let frame = json!({"type": "runtime_start", "request_id": "rs-default",
        "agent_id": runtime["agent_id"], "conversation_id": "default"});
    let response = ask(client, frame, "runtime_start_response").await;
    assert_eq!(response["success"], true, "{response}");
    client.recv_until_type("update_subagent_state").await;
    response["runtime"].clone()
}

/// The assistant text of the next turn.
async fn reply(client: &mut Client) -> String {
    client
        .recv_until_type("turn_finished")
        .await
        .iter()
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .map(|f| match &f["delta"]["content"] {
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            content => content.as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The models of a provider that answers are listed, one that is down or never answers is left
/// out, and the answer comes within the 2 s timeout; other commands are not held up meanwhile.
#[tokio::test]
async fn list_models_lists_what_answering_providers_offer_and_waits_for_none_beyond_the_timeout() {
    let mock = mock_replying("unused");
    mock.set_models(["mock-a", "mock-b"]);
    let hanging = hanging_server().await;
    let server = server_with(&mock.base_url, |config| config.providers.lmstudio = hanging).await;
    let mut client = server.client().await;

    let started = Instant::now();
    client.send(json!({"type": "list_models", "request_id": "lm-1"})).await;
    client
        .send(json!({"type": "app_server_info", "request_id": "info-1"}))
        .await;
    assert_eq!(client.recv().await["type"], "app_server_info_response", "not held up");
    let response = client.recv_until_type("list_models_response").await.pop().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert_eq!(response["success"], true);
    assert_eq!(
        handles(&response),
        ["scripted/default", "llama.cpp/mock-a", "llama.cpp/mock-b"]
    );
    assert_eq!(
        response["available_handles"],
        json!(["scripted/default", "llama.cpp/mock-a", "llama.cpp/mock-b"])
    );
    let scripted = &response["entries"][0];
    assert_eq!(
        (&scripted["id"], &scripted["isDefault"], &scripted["free"]),
        (&json!("scripted"), &json!(true), &json!(true))
    );
    assert_eq!(
        response["entries"][1],
        json!({"id": "llama.cpp/mock-a", "handle": "llama.cpp/mock-a", "label": "mock-a", "description": ""})
    );
    assert_eq!(response["byok_provider_aliases"]["lc-ollama"], "ollama");
    assert_eq!(response["byok_provider_aliases"]["llama-cpp"], "llama.cpp");

    // Asked again within a minute: the lists (the failures too) come from the cache, at once.
    let started = Instant::now();
    let again = list_models(&mut client, false).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(again["available_handles"], response["available_handles"]);
    assert_eq!(mock.model_lists(), 1);
}

/// `force: true` asks again; so does the first `list_models` after a connection changed, which
/// lists the connected provider's models; disconnecting removes them.
#[tokio::test]
async fn force_and_connection_changes_refresh_the_model_lists() {
    let mock = mock_replying("unused");
    mock.set_models(["first"]);
    let server = server_with(&mock.base_url, |config| {
        config.providers.model_list_ttl = Duration::from_secs(3600);
    })
    .await;
    let mut client = server.client().await;
    assert_eq!(
        handles(&list_models(&mut client, false).await)[1..],
        ["llama.cpp/first"]
    );
    mock.set_models(["first", "second"]);
    assert_eq!(
        handles(&list_models(&mut client, false).await)[1..],
        ["llama.cpp/first"]
    );
    assert_eq!(mock.model_lists(), 1);
    let forced = list_models(&mut client, true).await;
    assert_eq!(handles(&forced)[1..], ["llama.cpp/first", "llama.cpp/second"]);
    assert_eq!(mock.model_lists(), 2);

    let proxy = mock_replying("unused");
    proxy.set_models(["gpt-proxy"]);
    let connected = connect(&mut client, "openai-compatible", json!({"baseUrl": proxy.base_url})).await;
    assert_eq!(connected["models_may_have_changed"], true);
    let listed = list_models(&mut client, false).await;
    assert_eq!(
        handles(&listed)[1..],
        ["llama.cpp/first", "llama.cpp/second", "openai-compatible/gpt-proxy"]
    );
    assert_eq!(mock.model_lists(), 3, "the cache was cleared");

    let frame = json!({"type": "disconnect_provider", "request_id": "dp", "target": "local",
        "provider_id": "openai-compatible"});
    let disconnected = ask(&mut client, frame, "disconnect_provider_response").await;
    assert_eq!(
        (&disconnected["success"], &disconnected["models_may_have_changed"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        provider(&disconnected, "openai-compatible")["connected"],
        json!({"is_connected": false})
    );
    assert_eq!(
        handles(&list_models(&mut client, false).await)[1..],
        ["llama.cpp/first", "llama.cpp/second"]
    );
}

/// The providers this server drives, with Letta Code's ids, forms and texts; a connection is
/// stored owner-only, survives a restart, is used by the next turn (its key as the bearer
/// token), and no answer carries its key.
#[tokio::test]
async fn a_connected_provider_is_stored_privately_listed_and_used_and_its_key_never_echoed() {
    let mock = mock_replying("Hello from Ollama");
    mock.set_models(["qwen3"]);
    let mut server = server_with(&closed_port(), |_| {}).await;
    let mut client = server.client().await;

    let frame = json!({"type": "list_connect_providers", "request_id": "lcp", "target": "local"});
    let listed = ask(&mut client, frame.clone(), "list_connect_providers_response").await;
    let ids: Vec<&Value> = listed["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, ["llama-cpp", "lmstudio", "ollama", "openai", "openai-compatible"]);
    assert_eq!(
        provider(&listed, "ollama"),
        &json!({
            "id": "ollama", "display_name": "Ollama (local)",
            "description": "Connect Ollama at http://localhost:11434/v1 or a remote URL",
            "provider_type": "ollama", "provider_name": "ollama", "provider_names": ["ollama", "lc-ollama"],
            "requires_api_key": false,
            "fields": [
                {"key": "baseUrl", "label": "Base URL", "placeholder": "http://localhost:11434/v1", "required": false},
                {"key": "apiKey", "label": "API Key", "secret": true, "required": false},
            ],
            "connected": {"is_connected": false}, "connected_providers": [],
        })
    );
    assert_eq!(provider(&listed, "openai")["requires_api_key"], true);
    assert!(!auth_file(&server).exists());

    let key = "sk-secret-ollama-key";
    let connected = connect(&mut client, "ollama", json!({"baseUrl": mock.base_url, "apiKey": key})).await;
    assert_eq!(connected["success"], true, "{connected}");
    let state = json!({"is_connected": true, "id": "local-provider-ollama", "provider_name": "ollama",
        "provider_type": "ollama", "auth_type": "api", "base_url": mock.base_url});
    assert_eq!(provider(&connected, "ollama")["connected"], state);
    assert_eq!(provider(&connected, "ollama")["connected_providers"], json!([state]));

    let path = auth_file(&server);
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["version"], 1);
    assert_eq!(
        stored["providers"]["ollama"]["auth"],
        json!({"type": "api", "key": key})
    );
    assert_eq!(stored["providers"]["ollama"]["provider_category"], "byok");
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left");

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let listed = ask(&mut client, frame, "list_connect_providers_response").await;
    assert_eq!(provider(&listed, "ollama")["connected"], state, "kept across a restart");
    assert_eq!(handles(&list_models(&mut client, false).await)[1..], ["ollama/qwen3"]);

    let runtime = start_runtime(&mut client).await;
    let updated = update_model(&mut client, &runtime, json!({"model_id": "ollama/qwen3"})).await;
    assert_eq!(updated["success"], true, "{updated}");
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    assert_eq!(reply(&mut client).await, "Hello from Ollama");
    let request = &mock.requests()[0];
    assert_eq!(request.body["model"], "qwen3");
    assert_eq!(
        request.headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(
        client.received.iter().all(|frame| !frame.to_string().contains(key)),
        "an answer carried the key"
    );
}

/// `update_model` on a conversation changes that conversation's model only; on the default
/// conversation it changes the agent's. Each answer says where it applied, the scope hears a
/// status notice, and the next turn runs on the new model (with its reasoning effort).
#[tokio::test]
async fn update_model_applies_to_the_conversation_or_the_agent_and_the_next_turn_uses_it() {
    let mock = mock_replying("Hello from the mock");
    let server = server_with(&mock.base_url, |_| {}).await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    client
        .send(json!({"type": "update_model", "request_id": "um-1", "runtime": runtime,
            "payload": {"model_handle": "llama.cpp/mock-model"}}))
        .await;
    let frames = client.recv_until_type("update_model_response").await;
    let kinds: Vec<String> = frames
        .iter()
        .map(|f| {
            f["delta"]["message_type"]
                .as_str()
                .unwrap_or(f["type"].as_str().unwrap())
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "status",
            "update_loop_status",
            "update_device_status",
            "update_model_response"
        ]
    );
    assert_eq!(frames[0]["delta"]["message"], "Model updated to mock-model.");
    assert_eq!(frames[0]["delta"]["level"], "info");
    let response = frames.last().unwrap();
    assert_eq!(
        response,
        &json!({"type": "update_model_response", "request_id": "um-1", "success": true, "runtime": runtime,
            "applied_to": "conversation", "model_id": "llama.cpp/mock-model", "model_handle": "llama.cpp/mock-model",
            "model_settings": {"provider_type": "llama_cpp", "parallel_tool_calls": true}})
    );

    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    assert_eq!(reply(&mut client).await, "Hello from the mock");
    assert_eq!(mock.requests()[0].body["model"], "mock-model");
    assert!(mock.requests()[0].body.get("reasoning_effort").is_none());

    // The agent's own model is still none: its default conversation runs on the scripted model.
    let default = default_conversation(&mut client, &runtime).await;
    client.send(user_input("in-2", &default, "hi", "cm-2")).await;
    assert_eq!(reply(&mut client).await, "I received: hi");
    assert_eq!(mock.request_count(), 1);

    let payload = json!({"model_handle": "llama.cpp/mock-model", "reasoning_effort": "high"});
    let response = update_model(&mut client, &default, payload).await;
    assert_eq!(response["applied_to"], "agent");
    assert_eq!(
        response["model_settings"],
        json!({"provider_type": "llama_cpp", "parallel_tool_calls": true,
            "reasoning": {"reasoning_effort": "high"}, "reasoning_effort": "high"})
    );
    let status = client
        .received
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "status")
        .unwrap();
    assert_eq!(status["delta"]["message"], "Model updated to mock-model (High).");
    client.send(user_input("in-3", &default, "hi", "cm-3")).await;
    assert_eq!(reply(&mut client).await, "Hello from the mock");
    assert_eq!(mock.requests()[1].body["reasoning_effort"], "high");

    // Back to the scripted model by its catalog id; the conversation keeps its own model.
    let response = update_model(&mut client, &default, json!({"model_id": "scripted"})).await;
    assert_eq!(
        (
            &response["model_id"],
            &response["model_handle"],
            &response["model_settings"]
        ),
        (
            &json!("scripted"),
            &json!("scripted/default"),
            &json!({"provider_type": "scripted", "parallel_tool_calls": true})
        )
    );
    client.send(user_input("in-4", &default, "again", "cm-4")).await;
    assert_eq!(reply(&mut client).await, "I received: again");
    client.send(user_input("in-5", &runtime, "hi", "cm-5")).await;
    assert_eq!(reply(&mut client).await, "Hello from the mock");
    assert_eq!(mock.request_count(), 3);

    // An agent-free conversation has only its own model.
    let frame = json!({"type": "runtime_start", "request_id": "rs-free",
        "create_conversation": {"body": {"model": "scripted/default", "system": "Be brief."}}});
    let started = ask(&mut client, frame, "runtime_start_response").await;
    let free = started["runtime"].clone();
    assert_eq!(free["agent_id"], Value::Null, "{started}");
    client.recv_until_type("update_subagent_state").await;
    let response = update_model(&mut client, &free, json!({"model_id": "llama.cpp/mock-model"})).await;
    assert_eq!(response["applied_to"], "conversation", "{response}");
    client.send(user_input("in-6", &free, "hi", "cm-6")).await;
    assert_eq!(reply(&mut client).await, "Hello from the mock");
    assert_eq!(mock.request_count(), 4);
}

/// Every model `update_model` cannot use is refused with a clear error, and changes nothing.
#[tokio::test]
async fn update_model_refuses_unknown_models_providers_and_runtimes() {
    let server = server_with(&closed_port(), |_| {}).await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    let cases = [
        (
            json!({"model_id": "sonnet"}),
            "Model not found. Provide a valid model_id from list_models or a model_handle.",
        ),
        (
            json!({}),
            "Model not found. Provide a valid model_id from list_models or a model_handle.",
        ),
        (
            json!({"model_handle": "anthropic/claude-sonnet-4-6"}),
            "unsupported model provider `anthropic` in model handle `anthropic/claude-sonnet-4-6`; use scripted/, \
             llama.cpp/, lmstudio/, ollama/, openai/, openai-compatible/",
        ),
        (
            json!({"model_handle": "ollama/"}),
            "Model handle `ollama/` names no model; use provider/model",
        ),
        (
            json!({"model_handle": "gpt-4o"}),
            "Model handle `gpt-4o` names no model; use provider/model",
        ),
        (
            json!({"model_id": "openai-compatible/gpt-proxy"}),
            "the model provider `openai-compatible` is not connected; connect it first (connect_provider with \
             provider_id `openai-compatible` and its `baseUrl`)",
        ),
    ];
    for (payload, error) in cases {
        let response = update_model(&mut client, &runtime, payload.clone()).await;
        assert_eq!(
            (&response["success"], response["error"].as_str()),
            (&json!(false), Some(error)),
            "{payload}"
        );
        assert_eq!(response["model_id"], payload["model_id"].clone(), "echoed: {response}");
        assert!(response.get("applied_to").is_none());
    }

    let unknown = json!({"agent_id": "agent-nope", "conversation_id": "default"});
    let response = update_model(&mut client, &unknown, json!({"model_id": "scripted"})).await;
    assert_eq!(
        (&response["success"], &response["error"], &response["runtime"]),
        (&json!(false), &json!("Agent agent-nope not found"), &unknown)
    );

    // A reasoning effort Letta does not know is an invalid frame; so is a handle past the limits.
    client
        .send(
            json!({"type": "update_model", "request_id": "um-bad", "runtime": runtime,
            "payload": {"model_id": "scripted", "reasoning_effort": "extreme"}}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().unwrap();
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("invalid_frame"), &json!("um-bad"))
    );
    let long = format!("ollama/{}", "m".repeat(300));
    client
        .send(
            json!({"type": "update_model", "request_id": "um-long", "runtime": runtime,
            "payload": {"model_handle": long}}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().unwrap();
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("limit_exceeded"), &json!("um-long"))
    );

    client.send(user_input("in-1", &runtime, "still here", "cm-1")).await;
    assert_eq!(reply(&mut client).await, "I received: still here");
}

/// `update_toolset` stores the scope's preference (across restarts), loads its tools at once, and
/// shows it in the device status; the next turn offers its tools; a toolset this server does not
/// have is refused.
#[tokio::test]
async fn update_toolset_sets_the_preference_the_device_status_and_the_tools_of_later_turns() {
    let mock = mock_replying("ok");
    let mut server = server_with(&mock.base_url, |_| {}).await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    client
        .send(
            json!({"type": "update_toolset", "request_id": "ut-1", "runtime": runtime,
            "toolset_preference": "none"}),
        )
        .await;
    let frames = client.recv_until_type("update_toolset_response").await;
    let status = frames.iter().find(|f| f["delta"]["message_type"] == "status").unwrap();
    assert_eq!(
        status["delta"]["message"],
        "Switched toolset to None (manual override)."
    );
    let device = &frames.iter().find(|f| f["type"] == "update_device_status").unwrap()["device_status"];
    assert_eq!(
        (
            &device["current_toolset"],
            &device["current_toolset_preference"],
            &device["current_loaded_tools"]
        ),
        (&json!("none"), &json!("none"), &json!([]))
    );
    assert_eq!(
        frames.last().unwrap(),
        &json!({"type": "update_toolset_response", "request_id": "ut-1", "success": true, "runtime": runtime,
            "current_toolset": "none", "current_toolset_preference": "none"})
    );

    // The next turn offers no tools.
    update_model(&mut client, &runtime, json!({"model_handle": "llama.cpp/mock"})).await;
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    reply(&mut client).await;
    assert!(
        mock.requests()[0].body.get("tools").is_none(),
        "{}",
        mock.requests()[0].body
    );

    let refused = update_toolset(&mut client, &runtime, "codex").await;
    assert_eq!(
        (&refused["success"], &refused["error"]),
        (
            &json!(false),
            &json!("toolset `codex` is not available on this server; use `auto`, `default` or `none`")
        )
    );
    let unknown = json!({"agent_id": "agent-nope", "conversation_id": "default"});
    let refused = update_toolset(&mut client, &unknown, "none").await;
    assert_eq!(refused["error"], "Agent agent-nope not found");

    // Kept across a restart.
    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-2", "agent_id": runtime["agent_id"],
            "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    let frames = client.recv_until_type("update_subagent_state").await;
    let device = &frames.iter().find(|f| f["type"] == "update_device_status").unwrap()["device_status"];
    assert_eq!(
        (&device["current_toolset"], &device["current_toolset_preference"]),
        (&json!("none"), &json!("none"))
    );

    let frames = {
        client
            .send(
                json!({"type": "update_toolset", "request_id": "ut-2", "runtime": runtime,
                "toolset_preference": "auto"}),
            )
            .await;
        client.recv_until_type("update_toolset_response").await
    };
    let status = frames.iter().find(|f| f["delta"]["message_type"] == "status").unwrap();
    assert_eq!(
        status["delta"]["message"],
        "Toolset mode set to auto (currently Claude)."
    );
    let response = frames.last().unwrap();
    assert_eq!(
        (&response["current_toolset"], &response["current_toolset_preference"]),
        (&json!("default"), &json!("auto"))
    );
    client.send(user_input("in-2", &runtime, "hi", "cm-2")).await;
    reply(&mut client).await;
    let tools = mock.requests()[1].body["tools"].as_array().map_or(0, Vec::len);
    assert!(tools > 0, "the default toolset is offered again");
}

/// Every bad `connect_provider` and `disconnect_provider` gets `success: false` with a clear error
/// (real Letta's text where it has one) and stores nothing.
#[tokio::test]
async fn bad_provider_commands_are_refused_and_store_nothing() {
    let server = server_with(&closed_port(), |_| {}).await;
    let mut client = server.client().await;
    let cases = [
        (
            json!({"provider_id": "anthropic", "fields": {"apiKey": "k"}}),
            "Unknown provider: anthropic",
        ),
        (json!({"provider_id": "openai", "fields": {}}), "Missing API Key."),
        (
            json!({"provider_id": "openai", "fields": {"apiKey": "   "}}),
            "Missing API Key.",
        ),
        (
            json!({"provider_id": "openai-compatible", "fields": {"apiKey": "k"}}),
            "Missing Base URL.",
        ),
        (
            json!({"provider_id": "openai", "fields": {"apiKey": "k", "region": "us-east-1"}}),
            "Unknown field \"region\" for OpenAI; its fields are apiKey.",
        ),
        (
            // The operator's OPENAI_API_KEY must never go to an address a client chose.
            json!({"provider_id": "openai", "fields": {"apiKey": "not-needed", "baseUrl": "http://127.0.0.1:9/v1"}}),
            "Unknown field \"baseUrl\" for OpenAI; its fields are apiKey.",
        ),
        (
            json!({"provider_id": "openai", "auth_method_id": "iam", "fields": {"apiKey": "k"}}),
            "OpenAI does not use auth methods.",
        ),
        (
            json!({"provider_id": "ollama", "provider_name": "my-ollama", "fields": {}}),
            "providerName requires OAuth credentials.",
        ),
        (
            json!({"provider_id": "ollama", "fields": {},
                "oauth_config": {"type": "oauth", "access": "a", "refresh": "r", "expires": 1}}),
            "Ollama (local) does not accept subscription OAuth tokens.",
        ),
        (
            json!({"provider_id": "ollama", "fields": {"baseUrl": "ftp://example.com"}}),
            "Invalid Base URL \"ftp://example.com\": expected an http:// or https:// URL.",
        ),
        (
            json!({"provider_id": "ollama", "fields": {"baseUrl": "localhost:11434"}}),
            "Invalid Base URL \"localhost:11434\": expected an http:// or https:// URL.",
        ),
        (
            json!({"provider_id": "openai", "fields": {"apiKey": "sk bad key"}}),
            "Invalid API Key: it must be printable ASCII without spaces.",
        ),
    ];
    for (mut frame, error) in cases {
        frame["type"] = json!("connect_provider");
        frame["request_id"] = json!("cp-bad");
        frame["target"] = json!("local");
        let response = ask(&mut client, frame.clone(), "connect_provider_response").await;
        assert_eq!(
            response,
            json!({"type": "connect_provider_response", "request_id": "cp-bad", "success": false,
                "target": "local", "providers": [], "models_may_have_changed": false, "error": error}),
            "{frame}"
        );
    }

    let disconnect = |provider_id: &str, provider_name: Option<&str>| {
        let mut frame = json!({"type": "disconnect_provider", "request_id": "dp", "target": "local",
            "provider_id": provider_id});
        if let Some(name) = provider_name {
            frame["provider_name"] = json!(name);
        }
        frame
    };
    let response = ask(&mut client, disconnect("bedrock", None), "disconnect_provider_response").await;
    assert_eq!(
        (&response["success"], &response["error"]),
        (&json!(false), &json!("Unknown provider: bedrock"))
    );
    let response = ask(
        &mut client,
        disconnect("ollama", Some("lc-openai")),
        "disconnect_provider_response",
    )
    .await;
    assert_eq!(
        response["error"],
        "Ollama (local) does not support the provider name \"lc-openai\"."
    );
    // Disconnecting what is not connected changes nothing, and is no error.
    let response = ask(
        &mut client,
        disconnect("ollama", Some("lc-ollama")),
        "disconnect_provider_response",
    )
    .await;
    assert_eq!(response["success"], true);
    assert!(!auth_file(&server).exists());

    // Only the local store exists; a value past the limit is refused before anything is done.
    client
        .send(
            json!({"type": "connect_provider", "request_id": "cp-api", "target": "api",
            "provider_id": "openai", "fields": {"apiKey": "k"}}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().unwrap();
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("invalid_frame"), &json!("cp-api"))
    );
    client
        .send(
            json!({"type": "connect_provider", "request_id": "cp-long", "target": "local",
            "provider_id": "openai", "fields": {"apiKey": "k".repeat(5000)}}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().unwrap();
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("limit_exceeded"), &json!("cp-long"))
    );
    assert!(!error.to_string().contains("kkkkk"), "the value is not quoted");
    assert!(!auth_file(&server).exists());
}

/// A connections file that cannot be read is reported, never overwritten, and makes the model
/// lookup fail (`available_handles: null`) while the scripted model stays listed.
#[tokio::test]
async fn an_unreadable_connections_file_is_reported_and_kept() {
    let data = tempfile::tempdir().unwrap();
    let providers = data.path().join("store/providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::write(providers.join("auth.json"), "{not json").unwrap();
    let server = server_with(&closed_port(), |config| {
        config.data_dir = data.path().join("store");
    })
    .await;
    let mut client = server.client().await;

    let response = list_models(&mut client, false).await;
    assert_eq!(response["success"], true);
    assert_eq!(response["available_handles"], Value::Null);
    assert_eq!(handles(&response), ["scripted/default"]);

    let frame = json!({"type": "list_connect_providers", "request_id": "lcp", "target": "local"});
    let listed = ask(&mut client, frame, "list_connect_providers_response").await;
    assert_eq!(listed["success"], false);
    assert!(
        listed["error"].as_str().unwrap().starts_with("cannot read "),
        "{listed}"
    );
    let connected = connect(&mut client, "openai", json!({"apiKey": "sk-new"})).await;
    assert_eq!(connected["success"], false);
    assert_eq!(
        std::fs::read_to_string(providers.join("auth.json")).unwrap(),
        "{not json"
    );
}
