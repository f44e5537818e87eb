//! The commands that have an answer: what answers them, how their ids are numbered, when an
//! answer means the command failed, and sending one.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::frame::RawFrame;
use crate::requests::Requests;
use crate::{Error, JsonObject, PROTOCOL_VERSION, meta};

/// Sends a command with an answer, given as a JSON object (an absent or empty `request_id` is
/// filled in), and returns its answer as received once [`Command::check`] passed; an `error`
/// frame is [`Error::Server`].
pub(crate) async fn send(
    requests: &impl Requests,
    mut frame: JsonObject,
    timeout: Duration,
) -> Result<RawFrame, Error> {
    let frame_type = frame.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let command = Command::of(&frame_type).ok_or_else(|| Error::Protocol {
        message: format!("`{frame_type}` is not a command with an answer (send it with `send` or `request`)"),
    })?;
    let request_id = match frame.get("request_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => requests.next_request_id(command.id_prefix),
    };
    frame.insert("request_id".into(), request_id.clone().into());
    let text = serde_json::to_string(&frame).map_err(|e| Error::Protocol {
        message: format!("the command cannot be serialised: {e}"),
    })?;
    let answer = requests.request(text, &request_id, command.answers, timeout).await?;
    refuse_error_frame(&answer)?;
    command.check(&answer)?;
    Ok(answer)
}

/// A typed command as the JSON object [`send`] takes.
pub(crate) fn to_object(command: &impl Serialize) -> Result<JsonObject, Error> {
    match serde_json::to_value(command) {
        Ok(Value::Object(frame)) => Ok(frame),
        Ok(_) => Err(Error::Protocol {
            message: "a command serialises to a JSON object".into(),
        }),
        Err(e) => Err(Error::Protocol {
            message: format!("the command cannot be serialised: {e}"),
        }),
    }
}

/// An `error` frame answering a command becomes [`Error::Server`].
pub(crate) fn refuse_error_frame(raw: &RawFrame) -> Result<(), Error> {
    if raw.frame_type() != "error" {
        return Ok(());
    }
    // The code as a string: a newer server's code must not hide the refusal.
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        request_id: Option<String>,
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let refusal: Refusal = raw.parse()?;
    Err(Error::Server {
        request_id: refusal.request_id,
        code: refusal.code,
        message: refusal.message,
    })
}

/// A command with an answer.
#[derive(Debug, Clone, Copy)]
struct Command {
    /// The frame types that answer it (besides `error`).
    answers: &'static [&'static str],
    /// Generated request ids are `"<id_prefix>-<n>"`, as Letta Code's client helper numbers them.
    id_prefix: &'static str,
}

impl Command {
    /// The command of this `type`, if it has an answer.
    fn of(frame_type: &str) -> Option<Self> {
        meta::request(frame_type).map(|request| Self {
            answers: std::slice::from_ref(&request.answer),
            id_prefix: request.request_id_prefix,
        })
    }

    /// Whether `answer` (of one of [`Command::answers`]) reports success.
    fn check(&self, answer: &RawFrame) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct Outcome {
            success: Option<bool>,
            accepted: Option<bool>,
            // A string, or (`chatgpt_usage_read_response`) an object with a `message`.
            error: Option<Value>,
            protocol_version: Option<u64>,
        }
        let outcome: Outcome = answer.parse()?;
        if outcome.success == Some(false) || outcome.accepted == Some(false) {
            let message = match &outcome.error {
                Some(Value::String(message)) => Some(message.clone()),
                Some(error) => error["message"].as_str().map(str::to_owned),
                None => None,
            };
            return Err(Error::Rejected {
                request_id: answer.request_id().unwrap_or_default().to_owned(),
                frame_type: answer.frame_type().to_owned(),
                message: message.unwrap_or_else(|| "the server did not accept it".into()),
            });
        }
        match outcome.protocol_version {
            Some(version) if version != u64::from(PROTOCOL_VERSION) => Err(Error::Protocol {
                message: format!(
                    "the server speaks protocol version {version}, this client version {PROTOCOL_VERSION}"
                ),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_frame_with_a_code_this_version_does_not_know_is_still_a_refusal() {
        let frame = RawFrame::from(
            r#"{"type":"error","request_id":"rs-1","code":"quota_exceeded","message":"too many runtimes"}"#.to_owned(),
        );
        match refuse_error_frame(&frame) {
            Err(Error::Server {
                request_id,
                code,
                message,
            }) => {
                assert_eq!(request_id.as_deref(), Some("rs-1"));
                assert_eq!(code, "quota_exceeded");
                assert_eq!(message, "too many runtimes");
            }
            other => panic!("expected a server error, got {other:?}"),
        }
        assert!(refuse_error_frame(&RawFrame::from(r#"{"type":"pong"}"#.to_owned())).is_ok());
    }
}
