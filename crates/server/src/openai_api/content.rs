//! OpenAI messages as the agent's input: the newest user message (text and images) and the
//! user/assistant transcript before it.

use letta_app_server_protocol::{ContentPart, ImagePart, ImageSource, MessageContent};
use serde_json::Value;

use super::ApiError;
use crate::history::HistoryMessage;

/// Messages one request may carry at most.
pub(super) const MAX_MESSAGES: usize = 1000;

/// What a request asks the agent: its newest user message, and the transcript before it (user
/// and assistant messages; other roles, and whatever follows the newest user message, are left
/// out).
#[derive(Debug)]
pub(super) struct Prompt {
    /// The transcript before the newest user message.
    pub history: Vec<HistoryMessage>,
    /// The newest user message.
    pub input: Vec<ContentPart>,
}

/// A role and content, of a chat message or of a Responses input item.
pub(super) struct Message<'a> {
    pub role: &'a str,
    pub content: &'a Value,
}

/// Reads the prompt of `messages` (whose JSON field is `param`, for errors).
pub(super) fn prompt(messages: &[Message<'_>], param: &'static str) -> Result<Prompt, ApiError> {
    if messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(format!("at most {MAX_MESSAGES} messages are accepted")).param(param));
    }
    let newest = messages
        .iter()
        .rposition(|message| message.role == "user")
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{param} must include a user message with text or image content"
            ))
            .param(param)
        })?;
    let input = user_parts(messages[newest].content, param)?;
    if input.is_empty() {
        return Err(ApiError::invalid(format!(
            "{param} must include a user message with text or image content"
        ))
        .param(param));
    }
    let mut history = Vec::new();
    for message in &messages[..newest] {
        match message.role {
            "user" => {
                let parts = user_parts(message.content, param)?;
                if !parts.is_empty() {
                    history.push(HistoryMessage::User {
                        content: content(parts),
                    });
                }
            }
            "assistant" => {
                let text = text(message.content);
                if !text.is_empty() {
                    history.push(HistoryMessage::Assistant {
                        id: None,
                        reasoning: None,
                        text,
                        tool_calls: Vec::new(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(Prompt { history, input })
}

/// Parts as message content: one text part as plain text.
pub(super) fn content(mut parts: Vec<ContentPart>) -> MessageContent {
    match parts.as_slice() {
        [ContentPart::Text(_)] => match parts.remove(0) {
            ContentPart::Text(text) => MessageContent::Text(text.text),
            other => MessageContent::Parts(vec![other]),
        },
        _ => MessageContent::Parts(parts),
    }
}

/// The text of OpenAI message content: a string, or its `text`, `input_text` and `output_text`
/// parts joined by newlines.
pub(super) fn text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|part| matches!(part["type"].as_str(), Some("text" | "input_text" | "output_text")))
            .filter_map(|part| part["text"].as_str())
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text and images of a user message's OpenAI content: a string, or `text` / `input_text`
/// parts and `image_url` / `input_image` parts (a `data:<type>;base64,` URL or an http(s) URL).
fn user_parts(content: &Value, param: &'static str) -> Result<Vec<ContentPart>, ApiError> {
    let parts = match content {
        Value::String(text) if text.is_empty() => return Ok(Vec::new()),
        Value::String(text) => return Ok(vec![ContentPart::text(text.clone())]),
        Value::Array(parts) => parts,
        Value::Null => return Ok(Vec::new()),
        _ => return Err(ApiError::invalid("message content must be a string or an array of parts").param(param)),
    };
    let mut read = Vec::new();
    for part in parts {
        match part["type"].as_str() {
            Some("text" | "input_text") => {
                if let Some(text) = part["text"].as_str().filter(|text| !text.is_empty()) {
                    read.push(ContentPart::text(text));
                }
            }
            Some("image_url" | "input_image") => {
                let url = part["image_url"].as_str().or_else(|| part["image_url"]["url"].as_str());
                let url = url.ok_or_else(|| ApiError::invalid("an image part needs an image_url").param(param))?;
                read.push(image(url).ok_or_else(|| {
                    ApiError::invalid("an image URL must be a data:<type>;base64, URL or an http(s) URL").param(param)
                })?);
            }
            _ => {}
        }
    }
    Ok(read)
}

fn image(url: &str) -> Option<ContentPart> {
    let source = if let Some(data) = url.strip_prefix("data:") {
        let (media_type, data) = data.split_once(";base64,")?;
        if media_type.is_empty() || media_type.contains([',', ';']) || data.is_empty() {
            return None;
        }
        ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        }
    } else if url.starts_with("https://") || url.starts_with("http://") {
        ImageSource::Url { url: url.to_owned() }
    } else {
        return None;
    };
    Some(ContentPart::Image(ImagePart { source }))
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::{ContentPart, ImageSource, MessageContent};
    use serde_json::json;

    use super::{Message, content, prompt};
    use crate::history::HistoryMessage;

    #[test]
    fn the_newest_user_message_is_the_input_and_the_transcript_before_it_the_history() {
        let values = [
            ("system", json!("be brief")),
            ("user", json!("hi")),
            ("assistant", json!([{"type": "text", "text": "hello"}])),
            ("tool", json!("ignored")),
            (
                "user",
                json!([{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]),
            ),
            ("assistant", json!("a prefill, ignored")),
        ];
        let messages: Vec<Message> = values.iter().map(|(role, content)| Message { role, content }).collect();
        let read = prompt(&messages, "messages").expect("a prompt");
        assert_eq!(
            read.history,
            [
                HistoryMessage::User {
                    content: MessageContent::Text("hi".into())
                },
                HistoryMessage::Assistant {
                    id: None,
                    reasoning: None,
                    text: "hello".into(),
                    tool_calls: Vec::new()
                },
            ]
        );
        assert_eq!(read.input.len(), 2);
        assert!(matches!(
            &read.input[1],
            ContentPart::Image(image) if image.source == ImageSource::Base64 { media_type: "image/png".into(), data: "AAAA".into() }
        ));
        assert_eq!(content(vec![ContentPart::text("x")]), MessageContent::Text("x".into()));
    }

    #[test]
    fn a_prompt_needs_a_user_message_with_content_and_usable_images() {
        let empty = json!("");
        let bad_image = json!([{"type": "image_url", "image_url": "file:///etc/passwd"}]);
        let answer = json!("hi");
        for messages in [
            vec![Message {
                role: "assistant",
                content: &answer,
            }],
            vec![Message {
                role: "user",
                content: &empty,
            }],
            vec![Message {
                role: "user",
                content: &bad_image,
            }],
        ] {
            assert!(prompt(&messages, "messages").is_err());
        }
    }
}
