//! Failures: error statuses, broken and stalled streams, timeouts, refused connections and
//! unusable settings, and which of them are retried.

use super::*;

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
async fn unusable_settings_fail_as_request_errors() {
    for base_url in ["", "not a url", "ftp://example.com/v1"] {
        let provider = OpenAiCompatible::new(settings(base_url));
        let (events, result) = run(&provider, &simple_request()).await;
        assert!(events.is_empty());
        assert_eq!(error_kind(&result), ProviderErrorKind::Request, "{base_url:?}");
    }
}
