//! Chat Completions stream chunks and their SSE framing.

use bytes::Bytes;
use serde_json::{Value, json};

/// The event that ends a stream.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// `data: <value>\n\n`.
pub(crate) fn sse_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `{"choices":[{"index":0,"delta":{"content":text}}]}`.
pub fn text_chunk(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
}

/// `{"choices":[{"index":0,"delta":{"reasoning_content":text}}]}`.
pub fn reasoning_chunk(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"reasoning_content": text}}]})
}

/// A tool-call fragment; `None` fields are left out.
pub fn tool_chunk(index: u64, id: Option<&str>, name: Option<&str>, arguments: Option<&str>) -> Value {
    let mut function = serde_json::Map::new();
    if let Some(name) = name {
        function.insert("name".to_owned(), json!(name));
    }
    if let Some(arguments) = arguments {
        function.insert("arguments".to_owned(), json!(arguments));
    }
    let mut call = json!({"index": index, "function": function});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
}

/// A chunk with an empty delta and a finish reason.
pub fn finish_chunk(reason: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

/// The final usage chunk of `stream_options.include_usage`.
pub fn usage_chunk(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Value {
    json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    })
}
