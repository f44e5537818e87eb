//! The OpenAI-compatible provider against a scripted local Chat Completions server: the request it
//! sends and the events it streams here, failures and retries in `failures`, reading response
//! bodies in `responses`.

mod failures;
mod responses;

use std::time::Duration;

use letta_app_server_mock_llm::{
    MockResponse, MockServer, Script, StreamEnd, finish_chunk, reasoning_chunk, text_chunk, tool_chunk, usage_chunk,
};
use letta_app_server_protocol::{ContentPart, ImagePart, ImageSource, JsonObject, MessageContent};
use serde_json::{Value, json};

use super::{OpenAiCompatible, OpenAiSettings};
use crate::history::{HistoryMessage, ToolCall};
use crate::provider::{
    FinishReason, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent, RetryNotice, ToolSpec,
    Usage,
};

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
        reasoning_effort: None,
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
                id: None,
                reasoning: None,
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
                id: None,
                reasoning: Some("not sent".to_owned()),
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
        tools: vec![std::sync::Arc::new(ToolSpec::new(
            "ls".to_owned(),
            "List files".to_owned(),
            &object(json!({"type": "object", "properties": {"path": {"type": "string"}}})),
        ))]
        .into(),
        reasoning_effort: Some("high".to_owned()),
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
    assert_eq!(body["reasoning_effort"], "high");
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
async fn omits_empty_system_prompt_tools_reasoning_effort_and_authorization() {
    let mock = MockServer::scripted(vec![hello_stream()]);
    let mut request = simple_request();
    request.system = String::new();
    let (_, result) = run(&provider(&mock), &request).await;
    assert_eq!(result, Ok(FinishReason::EndTurn));
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(recorded.body.get("tools").is_none(), "{}", recorded.body);
    assert!(recorded.body.get("reasoning_effort").is_none(), "{}", recorded.body);
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
