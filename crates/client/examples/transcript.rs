//! A controller that reconnects and rebuilds its transcript from the server's history, then
//! offers a model picker. The history lists each message under the id its `stream_delta`s
//! carried, so a transcript built from the stream and one rebuilt from the history agree.
//!
//! ```sh
//! cargo run -p letta-app-server -- --listen ws://127.0.0.1:4500 &
//! cargo run -p letta-app-server-client --example transcript -- ws://127.0.0.1:4500
//! ```

use futures_util::StreamExt;
use letta_app_server_client::types::{
    ConversationMessagesList, HistoryMessage, ListModels, RuntimeStart, UpdateModel, UpdateModelPayload,
};
use letta_app_server_client::{Client, Error};
use serde_json::json;

/// Every message of a conversation, oldest first, read page by page.
async fn transcript(client: &Client, conversation_id: &str) -> Result<Vec<HistoryMessage>, Error> {
    let mut messages = Vec::new();
    let mut before = serde_json::Value::Null;
    loop {
        let query = json!({"limit": 50, "before": before});
        let page = client
            .call(&ConversationMessagesList {
                conversation_id: conversation_id.to_owned(),
                query: query.as_object().cloned(),
                ..Default::default()
            })
            .await?;
        messages.extend(page.messages);
        match page.next_before {
            Some(next) if page.has_more => before = next.into(),
            _ => break,
        }
    }
    messages.reverse();
    Ok(messages)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:4500".into());
    let first = Client::connect(&url).await?;
    let started = first.runtime_start(RuntimeStart::new_agent("Transcript")).await?;
    let runtime = started.runtime.expect("a started runtime has a scope");
    let mut turn = first
        .send_message(&runtime, "Remember the word 'teal'. [[reply: Noted: teal.]]")
        .await?;
    while turn.next().await.is_some() {}
    first.close().await;

    // A new connection, as after a restart of the controller: the history is in the server.
    let client = Client::connect(&url).await?;
    for message in transcript(&client, &runtime.conversation_id).await? {
        if let "user_message" | "assistant_message" = message.message_type.as_str() {
            let parts = message.extra["content"].as_array().cloned().unwrap_or_default();
            let text: String = parts.iter().filter_map(|part| part["text"].as_str()).collect();
            println!("{}: {text}", message.message_type);
        }
    }
    // A model picker: the models the server can run now, then the choice, for this conversation.
    let models = client.call(&ListModels::default()).await?;
    for entry in &models.entries {
        let default = if entry.is_default == Some(true) {
            " (default)"
        } else {
            ""
        };
        println!("model: {}{default}", entry.handle);
    }
    let payload = UpdateModelPayload {
        model_handle: models.entries.first().map(|entry| entry.handle.clone()),
        ..Default::default()
    };
    let updated = client
        .call(&UpdateModel {
            runtime: runtime.clone(),
            payload,
            ..Default::default()
        })
        .await?;
    let applied = updated.applied_to.map(|a| a.to_string()).unwrap_or_default();
    println!(
        "now using {} for the {applied}",
        updated.model_handle.unwrap_or_default()
    );
    client.close().await;
    Ok(())
}
