//! The commands that have an answer: what answers them, how their ids are numbered, when an
//! answer means the command failed, and sending one.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::answers::{check_answer, refuse_error_frame};
use crate::frame::RawFrame;
use crate::requests::Requests;
use crate::responses::RawResponses;
use crate::shared::Shared;
use crate::{Error, JsonObject, meta};

/// A command the server answers with one frame, and the type of that frame: what
/// [`Client::call`](crate::Client::call) takes. `cargo xtask codegen` implements it for every
/// such command of the protocol table (in [`meta`]).
pub trait Call: Serialize {
    /// The command's `type`.
    const TYPE: &'static str;
    /// The frame that answers it.
    type Response: DeserializeOwned;
}

/// A command the server answers with frames correlated by `request_id` until one carries
/// `done: true`, and the type of those frames: what
/// [`Client::call_stream`](crate::Client::call_stream) takes. `cargo xtask codegen` implements
/// it for every such command of the protocol table (in [`meta`]).
pub trait StreamCall: Serialize {
    /// The command's `type`.
    const TYPE: &'static str;
    /// The frames that answer it.
    type Response: DeserializeOwned;
}

/// Sends a command answered by one frame, given as a JSON object (an absent or empty
/// `request_id` is filled in), and returns its answer as received once [`check_answer`] passed;
/// an `error` frame is [`Error::Server`], a command answered by a stream [`Error::Protocol`].
pub(crate) async fn send(requests: &impl Requests, frame: JsonObject, timeout: Duration) -> Result<RawFrame, Error> {
    let frame_type = frame_type(&frame);
    let command = Command::of(&frame_type).ok_or_else(|| Error::Protocol {
        message: format!("`{frame_type}` is not a command with an answer (send it with `send` or `request`)"),
    })?;
    if command.stream == meta::Answers::Stream {
        // Its first frame alone would drop the rest of the answer.
        return Err(Error::Protocol {
            message: format!("`{frame_type}` is answered by a stream of frames (send it with `command_stream`)"),
        });
    }
    let (request_id, text) = numbered(requests, frame, command.id_prefix)?;
    let answer = requests.request(text, &request_id, command.answers, timeout).await?;
    refuse_error_frame(&answer)?;
    check_answer(&answer)?;
    Ok(answer)
}

/// Sends a command answered by a stream, given as a JSON object (an absent or empty
/// `request_id` is filled in), and returns the stream of its answer frames as received. A
/// command the protocol table does not list (a newer server's) is answered by every frame with
/// its `request_id`, and its ids are numbered `"<type>-<n>"`.
pub(crate) async fn send_stream(
    shared: &Arc<Shared>,
    frame: JsonObject,
    timeout: Duration,
) -> Result<RawResponses, Error> {
    let frame_type = frame_type(&frame);
    let (answers, id_prefix) = match Command::of(&frame_type) {
        Some(command) if command.stream == meta::Answers::Stream => (command.answers, command.id_prefix),
        Some(_) => {
            return Err(Error::Protocol {
                message: format!("`{frame_type}` is answered by one frame, not a stream (send it with `command`)"),
            });
        }
        None if frame_type.is_empty() => {
            return Err(Error::Protocol {
                message: "a command needs a `type`".into(),
            });
        }
        None => (&[][..], frame_type.as_str()),
    };
    let (request_id, text) = numbered(&**shared, frame, id_prefix)?;
    let frames = shared.request_stream(text, &request_id, answers).await?;
    Ok(RawResponses::new(frames, request_id, timeout, Arc::clone(shared)))
}

/// The `type` of a command given as a JSON object (`""` if it has none).
fn frame_type(frame: &JsonObject) -> String {
    frame.get("type").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `frame`'s `request_id` (`"<id_prefix>-<n>"` when absent or empty) and its text with it.
fn numbered(requests: &impl Requests, mut frame: JsonObject, id_prefix: &str) -> Result<(String, String), Error> {
    let request_id = match frame.get("request_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => requests.next_request_id(id_prefix),
    };
    frame.insert("request_id".into(), request_id.clone().into());
    let text = serde_json::to_string(&frame).map_err(|e| Error::Protocol {
        message: format!("the command cannot be serialised: {e}"),
    })?;
    Ok((request_id, text))
}

/// A typed command of `type` `frame_type` as the JSON object [`send`] takes (its `type` set).
pub(crate) fn typed_object(command: &impl Serialize, frame_type: &str) -> Result<JsonObject, Error> {
    let mut frame = to_object(command)?;
    frame.insert("type".into(), frame_type.into());
    Ok(frame)
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

/// A command with an answer.
#[derive(Debug, Clone, Copy)]
struct Command {
    /// The frame types that answer it (besides `error`).
    answers: &'static [&'static str],
    /// One answer frame, or a stream of them.
    stream: meta::Answers,
    /// Generated request ids are `"<id_prefix>-<n>"`, as Letta Code's client helper numbers them.
    id_prefix: &'static str,
}

impl Command {
    /// The command of this `type`, if it has an answer.
    fn of(frame_type: &str) -> Option<Self> {
        meta::request(frame_type).map(|request| Self {
            answers: std::slice::from_ref(&request.answer),
            stream: request.answers,
            id_prefix: request.request_id_prefix,
        })
    }
}
