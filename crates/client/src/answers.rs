//! What an answer frame says: this server's `error` frame refusing the command, or a response
//! that reports failure (`success: false`, `accepted: false`) or another protocol version.

use serde::Deserialize;

use crate::frame::RawFrame;
use crate::{Error, PROTOCOL_VERSION};

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

/// Whether `answer` (a frame answering a command) reports success: `success: false` or
/// `accepted: false` is [`Error::Rejected`], another protocol version [`Error::Protocol`].
pub(crate) fn check_answer(answer: &RawFrame) -> Result<(), Error> {
    #[derive(Deserialize)]
    struct Outcome {
        success: Option<bool>,
        accepted: Option<bool>,
        // A string, or (`chatgpt_usage_read_response`) an object with a `message`.
        error: Option<serde_json::Value>,
        // `execute_command_response` says why in its `output`.
        output: Option<String>,
        protocol_version: Option<u64>,
    }
    let outcome: Outcome = answer.parse()?;
    if outcome.success == Some(false) || outcome.accepted == Some(false) {
        let message = match outcome.error {
            Some(serde_json::Value::String(message)) => Some(message),
            Some(error) => error["message"].as_str().map(str::to_owned),
            None => outcome.output.filter(|output| !output.is_empty()),
        };
        return Err(Error::Rejected {
            request_id: answer.request_id().unwrap_or_default().to_owned(),
            frame_type: answer.frame_type().to_owned(),
            message: message.unwrap_or_else(|| "the server did not accept it".into()),
        });
    }
    match outcome.protocol_version {
        Some(version) if version != u64::from(PROTOCOL_VERSION) => Err(Error::Protocol {
            message: format!("the server speaks protocol version {version}, this client version {PROTOCOL_VERSION}"),
        }),
        _ => Ok(()),
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

    #[test]
    fn a_failed_slash_command_is_rejected_with_its_output() {
        let frame = RawFrame::from(
            r#"{"type":"execute_command_response","request_id":"c-1","success":false,"output":"Unknown command: x"}"#
                .to_owned(),
        );
        match check_answer(&frame) {
            Err(Error::Rejected { message, .. }) => assert_eq!(message, "Unknown command: x"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
