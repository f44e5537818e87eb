//! One turn in which the agent calls a tool that this program serves.
//!
//! ```sh
//! cargo run -p letta-app-server -- --listen ws://127.0.0.1:4500 &
//! cargo run -p letta-app-server-client --example external_tool -- ws://127.0.0.1:4500
//! ```
//!
//! The built-in scripted model calls the tool because the message asks it to
//! (`[[tool: NAME {…}]]`); a real model decides by itself from the tool's description.

use futures_util::StreamExt;
use letta_app_server_client::types::{Delta, ExternalToolDefinition, RuntimeStart, ServerFrame};
use letta_app_server_client::{Client, Error};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:4500".into());
    let client = Client::connect(&url).await?;

    client.register_external_tool(
        ExternalToolDefinition::new(
            "lookup_weather",
            "Look up the current weather for a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ),
        |call| async move {
            let city = call.input.get("city").and_then(|c| c.as_str()).unwrap_or("nowhere");
            Ok::<_, String>(format!("Sunny and 21°C in {city}"))
        },
    );

    let started = client.runtime_start(RuntimeStart::new_agent("Weather agent")).await?;
    let runtime = started.runtime.expect("a started runtime has a scope");
    let agent = runtime.agent_id.as_deref().unwrap_or("(agent-free)");
    println!("runtime {agent} / {}", runtime.conversation_id);

    let mut turn = client
        .send_message(
            &runtime,
            r#"Weather in Paris? [[tool: lookup_weather {"city":"Paris"}]]"#,
        )
        .await?;
    while let Some(frame) = turn.next().await {
        match frame?.typed {
            Some(ServerFrame::ExternalToolCallRequest { tool_name, input, .. }) => {
                println!("tool call: {tool_name} {}", serde_json::Value::Object(input));
            }
            Some(ServerFrame::StreamDelta {
                delta: Delta::AssistantMessage { content, .. },
                ..
            }) => print!("{}", content.text()),
            Some(ServerFrame::TurnFinished { stop_reason, .. }) => println!("\nturn finished: {stop_reason:?}"),
            _ => {}
        }
    }
    client.close().await;
    Ok(())
}
