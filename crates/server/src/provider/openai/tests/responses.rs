//! Reading response bodies: SSE split anywhere, how a stream may end, error chunks, a
//! non-streamed answer, and dropping the request mid-stream.

use super::*;

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
