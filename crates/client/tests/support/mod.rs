//! The shared test server (`letta-app-server-tests`), reached with this crate's client, and
//! helpers to read streams.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use letta_app_server_client::types::{Delta, RuntimeScope, RuntimeStart, ServerFrame};
use letta_app_server_client::{Client, ClientBuilder, Frame, Gap, Reconnect, Transport};
pub use letta_app_server_tests::server::TestServer;

/// How long a test waits for one frame.
pub const WAIT: Duration = Duration::from_secs(10);

/// This crate's client for a [`TestServer`].
pub trait Connect {
    /// A client builder for this server with fast reconnects, which resume the runtimes'
    /// event streams.
    fn builder(&self, transport: Transport) -> ClientBuilder;

    /// A client builder for this server with fast reconnects that replay each runtime's state
    /// instead of resuming its event stream.
    fn replaying(&self, transport: Transport) -> ClientBuilder;

    /// A client connected to this server over `transport`.
    fn rust_client(&self, transport: Transport) -> impl Future<Output = Client>;
}

impl Connect for TestServer {
    fn builder(&self, transport: Transport) -> ClientBuilder {
        Client::builder(&self.url(""))
            .transport(transport)
            .reconnect(fast(true))
    }

    fn replaying(&self, transport: Transport) -> ClientBuilder {
        Client::builder(&self.url(""))
            .transport(transport)
            .reconnect(fast(false))
    }

    fn rust_client(&self, transport: Transport) -> impl Future<Output = Client> {
        let builder = Client::builder(&self.url("")).transport(transport);
        async move { builder.connect().await.expect("client connects") }
    }
}

/// Reconnects 20 ms after a drop, waiting up to 200 ms between attempts, forever.
pub fn fast(resume: bool) -> Reconnect {
    Reconnect {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_attempts: None,
        resume,
    }
}

/// Starts a runtime for a new agent and returns its scope.
pub async fn new_runtime(client: &Client, name: &str) -> RuntimeScope {
    let response = client
        .runtime_start(RuntimeStart::new_agent(name))
        .await
        .expect("runtime_start succeeds");
    response.runtime.expect("a started runtime has a scope")
}

/// The next item of a stream, failing the test after [`WAIT`].
pub async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a frame in time")
        .expect("the stream goes on")
}

/// Reads frames until one satisfies `done`, returning all of them (gaps fail the test).
pub async fn frames_until<S>(stream: &mut S, done: impl Fn(&Frame) -> bool) -> Vec<Frame>
where
    S: Stream<Item = Result<Frame, Gap>> + Unpin,
{
    let mut frames = Vec::new();
    loop {
        let frame = next(stream).await.expect("no gap");
        let finished = done(&frame);
        frames.push(frame);
        if finished {
            return frames;
        }
    }
}

/// Every frame of a stream until it ends (gaps fail the test).
pub async fn collect<S>(stream: S) -> Vec<Frame>
where
    S: Stream<Item = Result<Frame, Gap>> + Unpin,
{
    tokio::time::timeout(WAIT, stream.map(|item| item.expect("no gap")).collect::<Vec<_>>())
        .await
        .expect("the stream ends in time")
}

/// The text of the assistant deltas among `frames`.
pub fn assistant_text(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter_map(|frame| match &frame.typed {
            Some(ServerFrame::StreamDelta {
                delta: Delta::AssistantMessage { content, .. },
                ..
            }) => Some(content.text()),
            _ => None,
        })
        .collect()
}

/// Each frame's type, with the message type of stream deltas and the status of loop statuses.
pub fn kinds(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| {
            let json = frame.raw.json();
            match frame.frame_type() {
                "stream_delta" => json["delta"]["message_type"].as_str().unwrap_or("?").to_owned(),
                "update_loop_status" => format!("loop {}", json["loop_status"]["status"].as_str().unwrap_or("?")),
                other => other.to_owned(),
            }
        })
        .collect()
}

/// The tool results the model got, one per tool call in call order (output snapshots streamed
/// while a tool runs are replaced by its final result).
pub fn tool_returns(frames: &[Frame]) -> Vec<String> {
    let mut results: Vec<(String, String)> = Vec::new();
    for frame in frames {
        let json = frame.raw.json();
        let delta = &json["delta"];
        if delta["message_type"] != "tool_return_message" {
            continue;
        }
        let call = delta["tool_returns"][0]["tool_call_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let text = delta["tool_return"].as_str().unwrap_or_default().to_owned();
        match results.iter_mut().find(|(known, _)| *known == call) {
            Some(result) => result.1 = text,
            None => results.push((call, text)),
        }
    }
    results.into_iter().map(|(_, text)| text).collect()
}
