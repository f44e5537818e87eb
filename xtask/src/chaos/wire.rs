//! What every chaos client shares: websocket connections, the schema check of each frame the
//! server sends (both from the shared test support, `letta_app_server_tests::wire`), and the
//! frames a chaos client sends.

use std::time::Duration;

pub use letta_app_server_tests::wire::{Checker, Ended, Socket, next_text, shorten};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How long a client waits for a frame it expects before it gives up on the connection.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to `url`; `None` when the server does not answer within [`FRAME_TIMEOUT`] (e.g. it
/// is being restarted).
pub async fn connect(url: &str) -> Option<Socket> {
    letta_app_server_tests::wire::connect(url, FRAME_TIMEOUT).await
}

/// A `runtime_start` that resumes (`agent_id` + `conversation_id`) a conversation.
pub fn resume(request_id: &str, runtime: &Value) -> Value {
    json!({"type": "runtime_start", "request_id": request_id,
        "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})
}

/// Creates an agent and a conversation on `socket`; returns the scope once the replay is read.
pub async fn create_runtime(socket: &mut Socket, checker: &mut Checker, name: &str) -> Result<Value, String> {
    use futures_util::SinkExt;
    let request = json!({"type": "runtime_start", "request_id": format!("rs-{name}"),
        "create_agent": {"body": {"name": name}}});
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|e| format!("sending runtime_start: {e}"))?;
    let mut runtime = None;
    loop {
        let text = next_text(socket, FRAME_TIMEOUT)
            .await
            .map_err(|e| format!("runtime_start: {e}"))?;
        let Some(frame) = checker.check(&text) else { continue };
        match frame["type"].as_str() {
            Some("runtime_start_response") if frame["success"] == true => runtime = Some(frame["runtime"].clone()),
            Some("runtime_start_response" | "error") => return Err(format!("runtime_start failed: {text}")),
            Some("update_subagent_state") => {
                if let Some(runtime) = runtime {
                    return Ok(runtime);
                }
            }
            _ => {}
        }
    }
}
