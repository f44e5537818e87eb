//! The OpenAI-compatible provider against a scripted local Chat Completions server.

use std::time::Duration;

use letta_app_server::provider::openai::{OpenAiCompatible, OpenAiSettings};
use letta_app_server::provider::{
    FinishReason, HistoryMessage, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent,
    RetryNotice, ToolCall, ToolSpec, Usage,
};
use letta_app_server_mock_llm::{
    MockResponse, MockServer, Script, StreamEnd, finish_chunk, reasoning_chunk, text_chunk, tool_chunk, usage_chunk,
};
use letta_app_server_protocol::{ContentPart, ImagePart, ImageSource, JsonObject, MessageContent};
use serde_json::{Value, json};

fn settings(base_url: &str) -> OpenAiSettings {
    OpenAiSettings {
        base_url: base_url.to_owned(),
        api_key: None,
        max_attempts: 3,
        retry_base_delay: Duration::from_millis(10),
        request_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
    }
}

fn provider(mock: &MockServer<Script>) -> OpenAiCompatible {
    OpenAiCompatible::new(settings(&mock.base_url))
}

fn simple_request() -> ModelRequest {
    ModelRequest {
        model: "test-model".to_owned(),
        system: "You are a test.".to_owned(),
        messages: vec![HistoryMessage::User {
            content: MessageContent::Text("hi".to_owned()),
        }]
        .into(),
        tools: Vec::new().into(),
    }
}

type Outcome = (Vec<ProviderEvent>, Result<FinishReason, ProviderError>);

async fn run(provider: &OpenAiCompatible, request: &ModelRequest) -> Outcome {
    let mut events = Vec::new();
    let result = {
        let mut sink = |event| events.push(event);
        provider.stream(request, &mut sink).await
    };
    (events, result)
}

fn texts(events: &[ProviderEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ProviderEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn retries(events: &[ProviderEvent]) -> Vec<RetryNotice> {
    events
        .iter()
        .filter_map(|event| match event {
            ProviderEvent::Retry(notice) => Some(notice.clone()),
            _ => None,
        })
        .collect()
}

fn error_kind(result: &Result<FinishReason, ProviderError>) -> ProviderErrorKind {
    match result {
        Ok(finish) => panic!("expected an error, got {finish:?}"),
        Err(error) => error.kind,
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn hello_stream() -> MockResponse {
    MockResponse::sse([
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        text_chunk("Hel"),
        text_chunk("lo, "),
        text_chunk("world"),
        finish_chunk("stop"),
        usage_chunk(12, 3, 4, 0),
    ])
}

fn hello_events() -> Vec<ProviderEvent> {
    vec![
        ProviderEvent::Text("Hel".to_owned()),
        ProviderEvent::Text("lo, ".to_owned()),
        ProviderEvent::Text("world".to_owned()),
        ProviderEvent::Usage(Usage {
            prompt_tokens: 12,
            completion_tokens: 3,
            cached_input_tokens: 4,
            reasoning_tokens: 0,
        }),
    ]
}

#[tokio::test]
async fn streams_text_chunks_then_usage_and_ends_the_turn() {
    let mock = MockServer::scripted(vec![hello_stream().chunk_delay(Duration::from_millis(2))]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(events, hello_events());
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn sends_the_chat_completions_request() {
    let mock = MockServer::scripted(vec![hello_stream()]);
    let mut settings = settings(&format!("{}/", mock.base_url));
    settings.api_key = Some("sk-test".to_owned());
    let provider = OpenAiCompatible::new(settings);
    let request = ModelRequest {
        model: "qwen3:8b".to_owned(),
        system: "Be brief.".to_owned(),
        messages: vec![
            HistoryMessage::User {
                content: MessageContent::Text("list files".to_owned()),
            },
            HistoryMessage::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_a".to_owned(),
                    name: "ls".to_owned(),
                    arguments: r#"{"path":"."}"#.to_owned(),
                }],
            },
            HistoryMessage::ToolResult {
                tool_call_id: "call_a".to_owned(),
                content: "a.txt\nb.txt".to_owned(),
                is_error: false,
            },
            HistoryMessage::Assistant {
                text: "Two files.".to_owned(),
                tool_calls: Vec::new(),
            },
            HistoryMessage::User {
                content: MessageContent::Parts(vec![
                    ContentPart::text("what is this?"),
                    ContentPart::Image(ImagePart {
                        source: ImageSource::Base64 {
                            media_type: "image/png".to_owned(),
                            data: "iVBORw0KGgo=".to_owned(),
                        },
                    }),
                    ContentPart::Image(ImagePart {
                        source: ImageSource::Url {
                            url: "https://example.com/cat.jpg".to_owned(),
                        },
                    }),
                    ContentPart::Image(ImagePart {
                        source: ImageSource::Letta {
                            file_id: "file-123".to_owned(),
                        },
                    }),
                    ContentPart::Unknown(json!({"type": "audio", "data": "…"})),
                ]),
            },
        ]
        .into(),
        tools: vec![ToolSpec {
            name: "ls".to_owned(),
            description: "List files".to_owned(),
            parameters: object(json!({"type": "object", "properties": {"path": {"type": "string"}}})),
        }]
        .into(),
    };
    let (_, result) = run(&provider, &request).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    // Only `POST /v1/chat/completions` is answered (and recorded).
    let recorded = &requests[0];
    assert_eq!(
        recorded
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok()),
        Some("Bearer sk-test")
    );
    assert_eq!(
        recorded
            .headers
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/json")
    );
    let body = &recorded.body;
    assert_eq!(body["model"], "qwen3:8b");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["store"], false);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "list files"},
            {
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\".\"}"}}],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "a.txt\nb.txt"},
            {"role": "assistant", "content": "Two files."},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "[image omitted: Letta file file-123 cannot be sent to this model provider]"},
                {"type": "text", "text": "[content part of type \"audio\" omitted: not supported by this model provider]"},
            ]},
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{
            "type": "function",
            "function": {
                "name": "ls",
                "description": "List files",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }])
    );
}

#[tokio::test]
async fn omits_empty_system_prompt_tools_and_authorization() {
    let mock = MockServer::scripted(vec![hello_stream()]);
    let mut request = simple_request();
    request.system = String::new();
    let (_, result) = run(&provider(&mock), &request).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(recorded.body.get("tools").is_none(), "{}", recorded.body);
    assert!(recorded.headers.get("authorization").is_none());
}

#[tokio::test]
async fn streams_reasoning_before_text() {
    let mock = MockServer::scripted(vec![MockResponse::sse([
        reasoning_chunk("Let me "),
        json!({"choices": [{"index": 0, "delta": {"reasoning": "think."}}]}),
        // Servers that send both fields must not duplicate the reasoning.
        json!({"choices": [{"index": 0, "delta": {"reasoning_content": " Done", "reasoning": " Done"}}]}),
        text_chunk("Answer"),
        finish_chunk("stop"),
        usage_chunk(5, 7, 0, 4),
    ])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(
        events,
        vec![
            ProviderEvent::Reasoning("Let me ".to_owned()),
            ProviderEvent::Reasoning("think.".to_owned()),
            ProviderEvent::Reasoning(" Done".to_owned()),
            ProviderEvent::Text("Answer".to_owned()),
            ProviderEvent::Usage(Usage {
                prompt_tokens: 5,
                completion_tokens: 7,
                cached_input_tokens: 0,
                reasoning_tokens: 4
            }),
        ]
    );
}

#[tokio::test]
async fn assembles_parallel_tool_calls_from_fragments() {
    let mock = MockServer::scripted(vec![MockResponse::sse([
        text_chunk("Checking."),
        tool_chunk(0, Some("call_read"), Some("read_file"), Some("")),
        tool_chunk(0, None, None, Some(r#"{"pa"#)),
        tool_chunk(1, None, Some("grep"), Some(r#"{"pattern":"#)),
        tool_chunk(0, None, None, Some(r#"th":"a.rs"}"#)),
        tool_chunk(1, None, None, Some(r#""fn main"}"#)),
        finish_chunk("tool_calls"),
        usage_chunk(30, 20, 0, 0),
    ])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::ToolCalls));
    assert_eq!(
        events,
        vec![
            ProviderEvent::Text("Checking.".to_owned()),
            ProviderEvent::ToolCall(ToolCall {
                id: "call_read".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path":"a.rs"}"#.to_owned(),
            }),
            ProviderEvent::ToolCall(ToolCall {
                id: "call_1".to_owned(),
                name: "grep".to_owned(),
                arguments: r#"{"pattern":"fn main"}"#.to_owned(),
            }),
            ProviderEvent::Usage(Usage {
                prompt_tokens: 30,
                completion_tokens: 20,
                cached_input_tokens: 0,
                reasoning_tokens: 0
            }),
        ]
    );
}

#[tokio::test]
async fn tool_calls_win_over_the_finish_reason() {
    let mock = MockServer::scripted(vec![MockResponse::sse([
        tool_chunk(0, Some("c1"), Some("noop"), None),
        finish_chunk("stop"),
    ])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::ToolCalls));
    assert_eq!(
        events,
        vec![ProviderEvent::ToolCall(ToolCall {
            id: "c1".to_owned(),
            name: "noop".to_owned(),
            arguments: "{}".to_owned()
        })]
    );
}

#[tokio::test]
async fn maps_length_to_max_tokens() {
    let mock = MockServer::scripted(vec![MockResponse::sse([text_chunk("trunc"), finish_chunk("length")])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::MaxTokens));
    assert_eq!(texts(&events), "trunc");
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let error = MockResponse::error(500, json!({"error": {"message": "upstream exploded"}}));
    let mock = MockServer::scripted(vec![error.clone(), error, hello_stream()]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(
        retries(&events),
        vec![
            RetryNotice {
                attempt: 1,
                max_attempts: 2,
                delay_ms: 10,
                reason: "500: upstream exploded".to_owned()
            },
            RetryNotice {
                attempt: 2,
                max_attempts: 2,
                delay_ms: 20,
                reason: "500: upstream exploded".to_owned()
            },
        ]
    );
    let rest: Vec<_> = events
        .into_iter()
        .filter(|event| !matches!(event, ProviderEvent::Retry(_)))
        .collect();
    assert_eq!(rest, hello_events());
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn retries_rate_limits() {
    let mock = MockServer::scripted(vec![
        MockResponse::error(429, json!({"message": "slow down"})),
        hello_stream(),
    ]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(
        retries(&events),
        vec![RetryNotice {
            attempt: 1,
            max_attempts: 2,
            delay_ms: 10,
            reason: "429: slow down".to_owned()
        }]
    );
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn persistent_server_errors_fail_with_an_api_error_after_max_attempts() {
    let mock = MockServer::scripted(vec![MockResponse::error(500, json!({"message": "overloaded"}))]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(
        result,
        Err(ProviderError {
            message: r#"500: {"message":"overloaded"}"#.to_owned(),
            kind: ProviderErrorKind::Api
        })
    );
    assert_eq!(retries(&events).len(), 2);
    assert_eq!(events.len(), 2, "only retry notices: {events:?}");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn long_error_bodies_are_truncated() {
    let mock = MockServer::scripted(vec![MockResponse::error(500, json!({"message": "x".repeat(10_000)}))]);
    let mut settings = settings(&mock.base_url);
    settings.max_attempts = 1;
    let (events, result) = run(&OpenAiCompatible::new(settings), &simple_request()).await;
    assert!(events.is_empty());
    let error = result.expect_err("should fail");
    assert_eq!(error.kind, ProviderErrorKind::Api);
    assert!(
        error.message.starts_with(r#"500: {"message":"xxx"#),
        "{}",
        error.message
    );
    assert!(error.message.len() <= 2048 + 5, "{}", error.message.len());
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = MockServer::scripted(vec![
        MockResponse::error(
            400,
            json!({"error": {"message": "bad tools", "type": "invalid_request_error"}}),
        ),
        hello_stream(),
    ]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(
        result,
        Err(ProviderError {
            message: r#"400: {"error":{"message":"bad tools","type":"invalid_request_error"}}"#.to_owned(),
            kind: ProviderErrorKind::Request,
        })
    );
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_stream_broken_after_output_is_an_api_error() {
    let mock = MockServer::scripted(vec![MockResponse::broken([text_chunk("partial")]), hello_stream()]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(events, vec![ProviderEvent::Text("partial".to_owned())]);
    assert_eq!(error_kind(&result), ProviderErrorKind::Api);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_stream_broken_before_output_is_retried() {
    // Tool-call fragments are not delivered until the end, so nothing was shown yet.
    let mock = MockServer::scripted(vec![
        MockResponse::broken([tool_chunk(0, Some("c"), Some("ls"), None)]),
        hello_stream(),
    ]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    let notices = retries(&events);
    assert_eq!(notices.len(), 1);
    assert!(notices[0].reason.starts_with("stream broken"), "{}", notices[0].reason);
    assert_eq!(texts(&events), "Hello, world");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let mock = MockServer::scripted(vec![MockResponse::stalled([text_chunk("thinking…")])]);
    let mut settings = settings(&mock.base_url);
    settings.idle_timeout = Duration::from_millis(150);
    let started = std::time::Instant::now();
    let (events, result) = run(&OpenAiCompatible::new(settings), &simple_request()).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(events, vec![ProviderEvent::Text("thinking…".to_owned())]);
    let error = result.expect_err("should time out");
    assert_eq!(error.kind, ProviderErrorKind::Api);
    assert!(error.message.contains("stalled"), "{}", error.message);
    assert_eq!(mock.request_count(), 1);
    assert!(
        mock.wait_until(Duration::from_secs(2), |mock| mock.abandoned_streams() == 1)
            .await
    );
}

#[tokio::test]
async fn slow_chunks_within_the_idle_timeout_are_fine() {
    let mock = MockServer::scripted(vec![hello_stream().chunk_delay(Duration::from_millis(40))]);
    let mut settings = settings(&mock.base_url);
    settings.idle_timeout = Duration::from_millis(400);
    let (events, result) = run(&OpenAiCompatible::new(settings), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(events, hello_events());
}

#[tokio::test]
async fn missing_response_headers_time_out_and_are_retried() {
    let mock = MockServer::scripted(vec![hello_stream().head_delay(Duration::from_secs(30))]);
    let mut settings = settings(&mock.base_url);
    settings.request_timeout = Duration::from_millis(100);
    settings.max_attempts = 2;
    let (events, result) = run(&OpenAiCompatible::new(settings), &simple_request()).await;
    let error = result.expect_err("should time out");
    assert_eq!(error.kind, ProviderErrorKind::Api);
    assert!(error.message.contains("no response within 100ms"), "{}", error.message);
    assert_eq!(retries(&events).len(), 1);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn connection_refused_is_retried_then_an_api_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let provider = OpenAiCompatible::new(settings(&format!("http://127.0.0.1:{port}/v1")));
    let (events, result) = run(&provider, &simple_request()).await;
    assert_eq!(error_kind(&result), ProviderErrorKind::Api);
    let notices = retries(&events);
    assert_eq!(notices.len(), 2);
    assert!(notices[0].reason.starts_with("request failed"), "{}", notices[0].reason);
}

#[tokio::test]
async fn parses_sse_split_at_every_byte() {
    // CRLF line ends, comments, an `event:` field, multi-line data and a bare-CR line end.
    let body = concat!(
        ": keep-alive\r\n\r\n",
        "event: message\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé\"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\r\n",
        "data: \"delta\":{\"content\":\"llo\"}}]}\r\n\r\n",
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 👋\"}}]}\r\r",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\r\n\r\n",
    );
    let mock = MockServer::scripted(vec![MockResponse::raw([body]).split_every(1)]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(
        events,
        vec![
            ProviderEvent::Text("Hé".to_owned()),
            ProviderEvent::Text("llo".to_owned()),
            ProviderEvent::Text(" 👋".to_owned()),
        ]
    );
}

#[tokio::test]
async fn parses_sse_split_at_awkward_boundaries() {
    for size in [2, 3, 7, 13] {
        let mock = MockServer::scripted(vec![hello_stream().split_every(size)]);
        let (events, result) = run(&provider(&mock), &simple_request()).await;
        assert_eq!(result, Ok(FinishReason::EndTurn), "size {size}");
        assert_eq!(events, hello_events(), "size {size}");
    }
}

#[tokio::test]
async fn a_finish_reason_without_done_completes_the_stream() {
    let mock = MockServer::scripted(vec![MockResponse::sse_without_done([
        text_chunk("ok"),
        finish_chunk("stop"),
        usage_chunk(1, 1, 0, 0),
    ])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    assert_eq!(texts(&events), "ok");
    assert!(events.iter().any(|event| matches!(event, ProviderEvent::Usage(_))));
}

#[tokio::test]
async fn a_stream_ending_without_done_or_finish_reason_is_invalid() {
    let mock = MockServer::scripted(vec![MockResponse::sse_without_done([text_chunk("cut")])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(texts(&events), "cut");
    assert_eq!(
        result,
        Err(ProviderError {
            message: "stream ended unexpectedly".to_owned(),
            kind: ProviderErrorKind::InvalidResponse
        })
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn invalid_json_is_an_invalid_response() {
    let mock = MockServer::scripted(vec![MockResponse::raw([
        "data: {\"choices\": [\n\n",
        "data: [DONE]\n\n",
    ])]);
    let (_, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(error_kind(&result), ProviderErrorKind::InvalidResponse);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn an_error_chunk_is_an_api_error() {
    let mock = MockServer::scripted(vec![MockResponse::sse([
        text_chunk("a"),
        json!({"error": {"code": 500, "message": "the context is full", "type": "server_error"}}),
    ])]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(texts(&events), "a");
    assert_eq!(
        result,
        Err(ProviderError {
            message: "500: the context is full".to_owned(),
            kind: ProviderErrorKind::Api
        })
    );
}

#[tokio::test]
async fn understands_a_non_streamed_completion() {
    let mock = MockServer::scripted(vec![MockResponse::json(json!({
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Sure.",
                "tool_calls": [
                    {"id": "x1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                    {"id": "x2", "type": "function", "function": {"name": "b", "arguments": {"k": 1}}},
                ],
            },
            "finish_reason": "tool_calls",
        }],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }))]);
    let (events, result) = run(&provider(&mock), &simple_request()).await;
    assert_eq!(result, Ok(FinishReason::ToolCalls));
    assert_eq!(
        events,
        vec![
            ProviderEvent::Text("Sure.".to_owned()),
            ProviderEvent::ToolCall(ToolCall {
                id: "x1".to_owned(),
                name: "a".to_owned(),
                arguments: "{}".to_owned()
            }),
            ProviderEvent::ToolCall(ToolCall {
                id: "x2".to_owned(),
                name: "b".to_owned(),
                arguments: r#"{"k":1}"#.to_owned()
            }),
            ProviderEvent::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
                ..Usage::default()
            }),
        ]
    );
}

#[tokio::test]
async fn unusable_settings_fail_as_request_errors() {
    for base_url in ["", "not a url", "ftp://example.com/v1"] {
        let provider = OpenAiCompatible::new(settings(base_url));
        let (events, result) = run(&provider, &simple_request()).await;
        assert!(events.is_empty());
        assert_eq!(error_kind(&result), ProviderErrorKind::Request, "{base_url:?}");
    }
}

#[tokio::test]
async fn dropping_the_future_closes_the_connection() {
    let mock = MockServer::scripted(vec![MockResponse::stalled([text_chunk("first")])]);
    let provider = provider(&mock);
    let request = simple_request();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut sink = move |event| {
        let _ = sender.send(event);
    };
    // A boxed future: dropping it really drops the request (a `tokio::pin!`ned one would not be).
    let mut future = provider.stream(&request, &mut sink);
    tokio::select! {
        result = &mut future => panic!("the stream should stall, got {result:?}"),
        event = receiver.recv() => assert_eq!(event, Some(ProviderEvent::Text("first".to_owned()))),
    }
    assert_eq!(mock.abandoned_streams(), 0);
    drop(future);
    assert!(
        mock.wait_until(Duration::from_secs(2), |mock| mock.abandoned_streams() == 1
            && mock.closed_connections() == 1)
            .await,
        "the mock did not see the connection close: abandoned {} closed {}",
        mock.abandoned_streams(),
        mock.closed_connections()
    );
}

#[tokio::test]
async fn the_mock_repeats_its_last_response_and_can_end_streams_in_several_ways() {
    let mock = MockServer::scripted(vec![
        MockResponse::error(502, json!({"message": "bad gateway"})),
        hello_stream().ending(StreamEnd::Complete),
    ]);
    let mut settings = settings(&mock.base_url);
    settings.max_attempts = 1;
    let provider = OpenAiCompatible::new(settings);
    let (_, first) = run(&provider, &simple_request()).await;
    assert_eq!(error_kind(&first), ProviderErrorKind::Api);
    for _ in 0..2 {
        let (events, result) = run(&provider, &simple_request()).await;
        assert_eq!(result, Ok(FinishReason::EndTurn));
        assert_eq!(events, hello_events());
    }
    assert_eq!(mock.request_count(), 3);
    // Error bodies and finished streams are read to the end: the connection is reused.
    assert_eq!(mock.connections(), 1);
}
