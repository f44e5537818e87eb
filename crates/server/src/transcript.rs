//! The stored history as Letta messages (`conversation_messages_list`, docs/protocol.md §4.7):
//! each stored message becomes one or more Letta messages, as Letta Code's local backend
//! projects its own.
//!
//! A reply lists its reasoning, its text and each tool call as separate messages. Their ids are
//! the ones the reply's `stream_delta`s carried: the text has the reply's id, the reasoning and
//! each tool call an id derived from it (`<id>:reasoning`, `<id>:tool:<call id>:request`), so a
//! client that rendered the stream and then reads the history sees the same messages.

use letta_app_server_protocol::{ContentPart, JsonObject, MessageContent};
use serde_json::{Value, json};

use crate::history::HistoryMessage;

/// One stored message, with what listing it needs.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its position in the store (older messages have smaller ones).
    pub seq: i64,
    /// The id it is listed under.
    pub id: String,
    /// The run that produced it (none for user messages).
    pub run_id: Option<String>,
    /// When it was stored (ISO-8601).
    pub date: String,
    /// The message.
    pub message: HistoryMessage,
    /// Set when it is the summary a compaction left: the summary and its statistics.
    pub compaction: Option<(String, Value)>,
}

/// The id of the reasoning of the reply `message_id` (stream and history).
pub fn reasoning_id(message_id: &str) -> String {
    format!("{message_id}:reasoning")
}

/// The id of the `approval_request_message` of tool call `call_id` of the reply `message_id`.
pub fn tool_call_message_id(message_id: &str, call_id: &str) -> String {
    format!("{message_id}:tool:{call_id}:request")
}

/// The stored message an id listed by [`project`] belongs to (the id before any `:`).
pub fn stored_id(listed_id: &str) -> &str {
    listed_id.split(':').next().unwrap_or(listed_id)
}

/// The Letta messages of one stored message, oldest first. `agent_id` is `None` for an
/// agent-free conversation.
pub fn project(stored: &StoredMessage, agent_id: Option<&str>, conversation_id: &str) -> Vec<JsonObject> {
    let message = |id: String, message_type: &str, fields: Value| {
        let mut object = JsonObject::new();
        object.insert("id".into(), json!(id));
        object.insert("date".into(), json!(stored.date));
        object.insert("agent_id".into(), json!(agent_id));
        object.insert("conversation_id".into(), json!(conversation_id));
        object.insert("message_type".into(), json!(message_type));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        if let Some(run_id) = &stored.run_id {
            object.insert("run_id".into(), json!(run_id));
        }
        object
    };
    if let Some((summary, stats)) = &stored.compaction {
        let fields = json!({"summary": summary, "compaction_stats": stats});
        return vec![message(stored.id.clone(), "summary_message", fields)];
    }
    match &stored.message {
        HistoryMessage::User { content } => {
            let fields = json!({"role": "user", "content": parts(content)});
            vec![message(stored.id.clone(), "user_message", fields)]
        }
        HistoryMessage::Assistant {
            reasoning,
            text,
            tool_calls,
            ..
        } => {
            let mut messages = Vec::new();
            if let Some(reasoning) = reasoning {
                let fields = json!({"reasoning": reasoning, "source": "reasoner_model"});
                messages.push(message(reasoning_id(&stored.id), "reasoning_message", fields));
            }
            if !text.is_empty() {
                let fields = json!({"role": "assistant", "content": [{"type": "text", "text": text}]});
                messages.push(message(stored.id.clone(), "assistant_message", fields));
            }
            for call in tool_calls {
                let tool_call = json!({"tool_call_id": call.id, "name": call.name, "arguments": call.arguments});
                let fields = json!({"tool_call": tool_call, "tool_calls": [tool_call]});
                let id = tool_call_message_id(&stored.id, &call.id);
                messages.push(message(id, "approval_request_message", fields));
            }
            messages
        }
        HistoryMessage::ToolResult {
            tool_call_id,
            content,
            is_error,
        } => {
            let status = if *is_error { "error" } else { "success" };
            let fields = json!({"tool_call_id": tool_call_id, "status": status, "tool_return": content});
            vec![message(stored.id.clone(), "tool_return_message", fields)]
        }
        HistoryMessage::Error { message: text } => {
            let fields = json!({"error_type": "llm_error", "message": text});
            vec![message(stored.id.clone(), "error_message", fields)]
        }
    }
}

/// User content as Letta content parts (plain text becomes one text part, as Letta lists it).
fn parts(content: &MessageContent) -> Value {
    match content {
        MessageContent::Text(text) => json!([ContentPart::text(text.clone())]),
        MessageContent::Parts(parts) => json!(parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ToolCall;

    fn stored(message: HistoryMessage) -> StoredMessage {
        StoredMessage {
            seq: 1,
            id: "message-1".into(),
            run_id: Some("run-1".into()),
            date: "2026-12-02T00:00:00.000Z".into(),
            message,
            compaction: None,
        }
    }

    #[test]
    fn a_reply_lists_reasoning_text_and_each_call_under_ids_derived_from_its_own() {
        let reply = stored(HistoryMessage::Assistant {
            id: Some("message-1".into()),
            reasoning: Some("thinking".into()),
            text: "done".into(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "Bash".into(),
                arguments: "{}".into(),
            }],
        });
        let listed = project(&reply, Some("agent-1"), "conv-1");
        let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["message-1:reasoning", "message-1", "message-1:tool:call_1:request"]
        );
        assert!(ids.iter().all(|id| stored_id(id) == "message-1"));
        let types: Vec<&str> = listed.iter().map(|m| m["message_type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["reasoning_message", "assistant_message", "approval_request_message"]
        );
        assert_eq!(listed[2]["tool_call"]["name"], "Bash");
        assert!(
            listed
                .iter()
                .all(|m| m["run_id"] == "run-1" && m["agent_id"] == "agent-1")
        );
    }

    #[test]
    fn a_compaction_summary_is_listed_as_a_summary_message() {
        let mut summary = stored(HistoryMessage::User {
            content: MessageContent::Text("packed".into()),
        });
        summary.compaction = Some(("short".into(), json!({"trigger": "manual"})));
        let listed = project(&summary, None, "conv-1");
        assert_eq!(listed[0]["message_type"], "summary_message");
        assert_eq!(listed[0]["summary"], "short");
        assert_eq!(listed[0]["agent_id"], Value::Null);
    }
}
