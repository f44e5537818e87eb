//! Turns against a real local OpenAI-compatible HTTP server streaming SSE.

use std::time::Duration;

use letta_app_server_mock_llm::{
    MockResponse, MockServer, Script, finish_chunk, reasoning_chunk, text_chunk, tool_chunk, usage_chunk,
};
use serde_json::json;

use crate::support::TestServer;
use crate::support::wire::{Client, summary, user_input};

async fn start_with_model(mock: &MockServer<Script>) -> (TestServer, Client, serde_json::Value) {
    start_with_model_and(mock, |_| {}).await
}

async fn start_with_model_and(
    mock: &MockServer<Script>,
    configure: impl FnOnce(&mut letta_app_server::Config),
) -> (TestServer, Client, serde_json::Value) {
    let base_url = mock.base_url.clone();
    let server = TestServer::start_with(|config| {
        config.providers.llama_cpp = base_url;
        config.providers.retry_base_delay = Duration::from_millis(10);
        configure(config);
    })
    .await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-1",
            "create_agent": {"body": {"name": "Local", "model": "llama.cpp/mock-model", "system": "Be brief."}}}))
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    (server, client, runtime)
}

#[tokio::test]
async fn a_streamed_reply_becomes_deltas() {
    let mock = MockServer::scripted(vec![
        MockResponse::sse([
            reasoning_chunk("Pondering."),
            text_chunk("Hello"),
            text_chunk(" from"),
            text_chunk(" llama.cpp"),
            finish_chunk("stop"),
            usage_chunk(21, 3, 0, 0),
        ])
        .chunk_delay(Duration::from_millis(5)),
    ]);
    let (_server, mut client, runtime) = start_with_model(&mock).await;
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    let frames = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("openai_turn", summary(&frames).join("\n"));
    let usage = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "usage_statistics")
        .unwrap();
    assert_eq!(
        (&usage["delta"]["prompt_tokens"], &usage["delta"]["total_tokens"]),
        (&json!(21), &json!(24))
    );
    let request = &mock.requests()[0].body;
    assert_eq!(request["model"], "mock-model");
    assert_eq!(
        request["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );

    // The next request carries the history.
    client.send(user_input("in-2", &runtime, "again", "cm-2")).await;
    client.recv_until_type("turn_finished").await;
    let messages = mock.requests()[1].body["messages"].as_array().unwrap().len();
    assert_eq!(messages, 4, "system, user, assistant, user");
}

#[tokio::test]
async fn provider_outages_are_retried_then_reported_and_the_runtime_stays_usable() {
    let outage = || MockResponse::error(500, json!({"error": {"message": "upstream exploded"}}));
    let mock = MockServer::scripted(vec![
        outage(),
        outage(),
        MockResponse::sse([text_chunk("recovered"), finish_chunk("stop")]),
        outage(),
        outage(),
        outage(),
        MockResponse::sse([text_chunk("back"), finish_chunk("stop")]),
    ]);
    let (_server, mut client, runtime) = start_with_model(&mock).await;
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    let recovered = client.recv_until_type("turn_finished").await;
    let retries = recovered
        .iter()
        .filter(|f| f["delta"]["message_type"] == "retry")
        .count();
    assert_eq!(
        (retries, recovered.last().unwrap()["stop_reason"].as_str()),
        (2, Some("end_turn"))
    );

    client.send(user_input("in-2", &runtime, "hi again", "cm-2")).await;
    let mut failed = client.recv_until_type("turn_finished").await;
    failed.push(client.recv().await);
    insta::assert_snapshot!("openai_outage", summary(&failed).join("\n"));
    assert_eq!(
        failed.iter().find(|f| f["type"] == "turn_finished").unwrap()["stop_reason"],
        "llm_api_error"
    );

    client.send(user_input("in-3", &runtime, "and now?", "cm-3")).await;
    assert_eq!(
        client.recv_until_type("turn_finished").await.last().unwrap()["stop_reason"],
        "end_turn"
    );
}

#[tokio::test]
async fn a_burst_faster_than_the_reader_is_streamed_in_full() {
    // 10,000 chunks in one piece: the server reads them as fast as the socket takes them.
    let mut body: String = (0..10_000)
        .map(|n| format!("data: {}\n\n", text_chunk(&format!("{n} "))))
        .collect();
    body.push_str(&format!("data: {}\n\ndata: [DONE]\n\n", finish_chunk("stop")));
    let mock = MockServer::scripted(vec![MockResponse::raw([body])]);
    let (_server, mut client, runtime) = start_with_model_and(&mock, |config| {
        config.max_queued_frames = 64;
        // This reader is never stuck; a generous patience keeps a busy machine's scheduling
        // pauses from passing for one.
        config.slow_reader_patience = Duration::from_secs(10);
    })
    .await;
    client.send(user_input("in-1", &runtime, "go", "cm-1")).await;
    // A reader slower than the model, but never stuck: it is served, not disconnected.
    let mut frames = Vec::new();
    while frames
        .last()
        .is_none_or(|f: &serde_json::Value| f["type"] != "turn_finished")
    {
        frames.push(client.recv().await);
        if frames.len() % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let text: Vec<&str> = frames
        .iter()
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .map(|f| f["delta"]["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text.len(), 10_000);
    assert_eq!((text[0], text[9_999]), ("0 ", "9999 "));
    assert_eq!(frames.last().unwrap()["stop_reason"], "end_turn");
}

#[tokio::test]
async fn aborting_a_turn_cancels_the_model_request() {
    let mock = MockServer::scripted(vec![MockResponse::stalled([text_chunk("thinking...")])]);
    let (_server, mut client, runtime) = start_with_model(&mock).await;
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    client
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    client
        .send(json!({"type": "abort_message", "request_id": "ab-1", "runtime": runtime}))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    assert_eq!(frames.last().unwrap()["stop_reason"], "cancelled");
    assert!(
        mock.wait_until(Duration::from_secs(5), |m| m.abandoned_streams() == 1)
            .await,
        "the HTTP request was dropped"
    );
}

#[tokio::test]
async fn an_openai_compatible_model_calls_a_tool_through_an_approval() {
    let mock = MockServer::scripted(vec![
        MockResponse::sse([
            tool_chunk(
                0,
                Some("call_abc"),
                Some("Bash"),
                Some("{\"command\":\"touch from-model && echo ok\","),
            ),
            tool_chunk(0, None, None, Some("\"description\":\"touch\"}")),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Done."), finish_chunk("stop")]),
    ]);
    let (server, mut client, runtime) = start_with_model(&mock).await;
    client.send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": "standard", "cwd": server.data.path()}})).await;
    client.send(user_input("in-1", &runtime, "make a file", "cm-1")).await;
    let question = client.recv_until_type("control_request").await.pop().unwrap();
    assert_eq!(
        (&question["request_id"], &question["request"]["input"]["command"]),
        (&json!("perm-call_abc"), &json!("touch from-model && echo ok"))
    );
    client
        .send(
            json!({"type": "input", "request_id": "ans", "runtime": runtime, "payload": {"kind": "approval_response",
        "request_id": "perm-call_abc", "decision": {"behavior": "allow"}}}),
        )
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    assert_eq!(frames.last().unwrap()["stop_reason"], "end_turn");
    assert!(server.data.path().join("from-model").exists());
    let requests = mock.requests();
    let messages = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        messages[messages.len() - 1],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "ok\n"})
    );
    assert_eq!(
        messages[messages.len() - 2]["tool_calls"][0]["function"]["name"],
        "Bash"
    );
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        [
            "Agent",
            "AskUserQuestion",
            "Bash",
            "SetWorkingDirectory",
            "Edit",
            "memory",
            "Monitor",
            "Read",
            "Skill",
            "TaskOutput",
            "TaskStop",
            "Write"
        ]
    );
}
