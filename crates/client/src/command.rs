//! The commands that have an answer: what answers them, how their ids are numbered, and when
//! an answer means the command failed.

use serde::Deserialize;

use crate::frame::RawFrame;
use crate::{Error, PROTOCOL_VERSION};

/// A command with an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Command {
    /// The frame types that answer it (besides `error`).
    pub answers: &'static [&'static str],
    /// Generated request ids are `"<id_prefix>-<n>"`, as Letta Code's client helper numbers them.
    pub id_prefix: &'static str,
}

impl Command {
    /// The command of this `type`, if it has an answer.
    pub fn of(frame_type: &str) -> Option<Self> {
        let (answer, id_prefix) = match frame_type {
            "app_server_info" => (&["app_server_info_response"], "app-server-info"),
            "runtime_start" => (&["runtime_start_response"], "runtime-start"),
            "sync" => (&["sync_response"], "sync"),
            "abort_message" => (&["abort_message_response"], "abort"),
            "remove_queue_item" => (&["remove_queue_item_response"], "remove-queue-item"),
            "runtime_external_tools_update" => (&["runtime_external_tools_update_response"], "runtime-external-tools"),
            "input" => (&["input_accepted"], "input"),
            _ => return None,
        };
        Some(Self {
            answers: answer,
            id_prefix,
        })
    }

    /// Whether `answer` (of one of [`Command::answers`]) reports success.
    pub fn check(&self, answer: &RawFrame) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct Outcome {
            success: Option<bool>,
            accepted: Option<bool>,
            error: Option<String>,
            protocol_version: Option<u64>,
        }
        let outcome: Outcome = answer.parse()?;
        if outcome.success == Some(false) || outcome.accepted == Some(false) {
            return Err(Error::Rejected {
                request_id: answer.request_id().unwrap_or_default().to_owned(),
                frame_type: answer.frame_type().to_owned(),
                message: outcome.error.unwrap_or_else(|| "the server did not accept it".into()),
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
