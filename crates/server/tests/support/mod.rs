//! The shared test support, and the server binary the process tests start.

pub use letta_app_server_tests::{server::TestServer, wire};

/// Helpers for tests that drive commands and turns.
pub mod drive {
    use serde_json::{Value, json};

    use super::wire::{Client, user_input};

    /// Sends `command` with a fresh `request_id` and returns its answer (frames between are
    /// read and dropped).
    pub async fn call(client: &mut Client, mut command: Value) -> Value {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("{}-{n}", text(&command["type"]));
        command["request_id"] = json!(request_id);
        client.send(command).await;
        let frames = client.recv_until(|f| f["request_id"] == request_id.as_str()).await;
        frames.last().cloned().expect("the answer")
    }

    /// Sends `frame` and returns its response (the frame of type `<type>_response` with its
    /// `request_id`), after whatever came before it.
    pub async fn ask(client: &mut Client, frame: Value) -> Value {
        let response_type = format!("{}_response", text(&frame["type"]));
        let request_id = frame["request_id"].clone();
        client.send(frame).await;
        let frames = client
            .recv_until(|f| f["type"] == response_type.as_str() && f["request_id"] == request_id)
            .await;
        frames.last().cloned().expect("a response")
    }

    /// Runs a turn of `text` (input `in-<n>`, client message `cm-<n>`); returns its frames up
    /// to `turn_finished`.
    pub async fn turn(client: &mut Client, runtime: &Value, text: &str, n: usize) -> Vec<Value> {
        client
            .send(user_input(&format!("in-{n}"), runtime, text, &format!("cm-{n}")))
            .await;
        client.recv_until_type("turn_finished").await
    }

    /// A scripted-model directive calling `tool` with `args`, whose brackets are JSON escapes, so
    /// that it can sit inside another directive's arguments (a subagent's prompt).
    pub fn directive(tool: &str, args: Value) -> String {
        let args = args.to_string().replace('[', "\\u005b").replace(']', "\\u005d");
        format!("[[tool: {tool} {args}]]")
    }

    /// Sends `text` as input `n` and reads until `count` turns of the conversation have finished.
    pub async fn turns(client: &mut Client, runtime: &Value, text: &str, n: usize, count: usize) -> Vec<Value> {
        client
            .send(user_input(&format!("in-{n}"), runtime, text, &format!("cm-{n}")))
            .await;
        let mut frames = Vec::new();
        for _ in 0..count {
            frames.extend(client.recv_until_type("turn_finished").await);
        }
        frames
    }

    /// The last frame of `frame_type` among `frames`.
    pub fn last_of<'f>(frames: &'f [Value], frame_type: &str) -> &'f Value {
        (frames.iter().rev())
            .find(|f| f["type"] == frame_type)
            .unwrap_or_else(|| panic!("no {frame_type} among {} frames", frames.len()))
    }

    /// The results of the conversation's own tool calls among `frames` (not its subagents'), in
    /// order.
    pub fn tool_returns(frames: &[Value]) -> Vec<&str> {
        frames
            .iter()
            .filter(|f| f["delta"]["message_type"] == "tool_return_message" && f.get("subagent_id").is_none())
            .map(|f| text(&f["delta"]["tool_return"]))
            .collect()
    }

    /// The prompt tokens a turn's `usage_statistics` reports (the scripted model counts the
    /// words it was sent).
    pub fn prompt_tokens(frames: &[Value]) -> u64 {
        frames
            .iter()
            .find(|f| f["delta"]["message_type"] == "usage_statistics")
            .expect("usage")["delta"]["prompt_tokens"]
            .as_u64()
            .expect("tokens")
    }

    /// A string field.
    pub fn text(value: &Value) -> &str {
        value.as_str().unwrap_or_else(|| panic!("a string, not {value}"))
    }

    /// A list field.
    pub fn items(value: &Value) -> &Vec<Value> {
        value.as_array().unwrap_or_else(|| panic!("a list, not {value}"))
    }

    /// The head (status line and headers) of the answer to `request`, read without waiting for
    /// the connection to end (an accepted upgrade stays open).
    pub async fn response_head(server: &super::TestServer, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = server.server.as_ref().expect("running").local_addr();
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.expect("a byte"));
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// The status line of the answer to `request`.
    pub async fn status_line(server: &super::TestServer, request: &str) -> String {
        let head = response_head(server, request).await;
        head.lines().next().unwrap_or_default().to_owned()
    }

    /// Sends a raw HTTP/1.1 request to `server` and reads until it closes the connection;
    /// returns the status line and the body.
    pub async fn http(server: &super::TestServer, request: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = server.server.as_ref().expect("running").local_addr();
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        split_response(&response)
    }

    /// The status line and the body of a whole HTTP/1.1 response.
    pub fn split_response(response: &str) -> (String, String) {
        let status = response.lines().next().unwrap_or_default().to_owned();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

/// The server binary as a child process: the shared [`letta_app_server_tests::process`] started
/// with this crate's `letta-app-server`.
pub mod binary {
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use letta_app_server_tests::process;
    pub use letta_app_server_tests::process::ServerProcess;

    /// The binary cargo built for these tests.
    const BINARY: &str = env!("CARGO_BIN_EXE_letta-app-server");

    /// The binary with `--listen` (a free port), `--data-dir data_dir` and `args`.
    pub fn command(data_dir: &Path, args: &[&str]) -> Command {
        process::command(Path::new(BINARY), data_dir, args)
    }

    /// The binary with only `args` (no `--listen` of its own).
    pub fn bare_command(args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.args(args).stdin(std::process::Stdio::null());
        command
    }

    /// Starts the binary with `--listen` (a free port), `--data-dir data_dir` and `args`; returns
    /// it and its websocket URL once it printed its four address lines.
    pub fn spawn_server(data_dir: &Path, args: &[&str]) -> (ServerProcess, String) {
        spawn(command(data_dir, args))
    }

    /// Starts `command` (the binary, listening); returns it and its websocket URL once it
    /// printed its four address lines.
    pub fn spawn(command: Command) -> (ServerProcess, String) {
        let server = ServerProcess::spawn(command).unwrap_or_else(|e| panic!("{e}"));
        let base = server.url.strip_suffix("/ws").expect("a websocket URL").to_owned();
        let line = || server.next_line(Duration::from_secs(10)).expect("a line");
        assert_eq!(line(), format!("WebSocket: {base}/ws"));
        assert_eq!(line(), format!("Control channel: {base}/ws?channel=control"));
        assert_eq!(line(), format!("Stream channel: {base}/ws?channel=stream"));
        let url = server.url.clone();
        (server, url)
    }

    /// Runs the binary with `args` and expects it to refuse them, with `expected` on stderr.
    pub fn refused(args: &[&str], expected: &str) {
        process::refused(Path::new(BINARY), args, expected);
    }
}

/// `GET /metrics`, read with a Prometheus text-format parser as a scraper reads it.
pub mod metrics {
    use prometheus_parse::{Scrape, Value};

    use super::TestServer;
    use super::drive::http;

    /// Scrapes `server` (without authentication) and parses the answer.
    pub async fn scrape(server: &TestServer) -> Scrape {
        let (status, body) = http(
            server,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        parse(&body)
    }

    /// Parses a scrape's body.
    pub fn parse(body: &str) -> Scrape {
        Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("the Prometheus text format")
    }

    /// The value of the sample `name` whose labels include `labels` (a histogram's count); 0
    /// when there is none (a labelled counter appears once it counted).
    pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = scrape.samples.iter().find(|sample| {
            sample.metric == name
                && labels
                    .iter()
                    .all(|(label, value)| sample.labels.get(label) == Some(*value))
        });
        match found.map(|sample| &sample.value) {
            None => 0.0,
            Some(Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value)) => *value,
            Some(Value::Histogram(buckets)) => buckets.last().map_or(0.0, |bucket| bucket.count),
            Some(Value::Summary(_)) => panic!("{name} is a summary"),
        }
    }

    /// Scrapes `server` until `done` holds for a scrape (up to five seconds); returns it.
    pub async fn until(server: &TestServer, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let scrape = scrape(server).await;
            if done(&scrape) || tokio::time::Instant::now() > deadline {
                return scrape;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
