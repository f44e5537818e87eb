//! `validate`: a frame checked against the bundled schema and this version's parser.

use std::sync::OnceLock;

use letta_app_server_protocol::compat::{Direction, Validator};
use napi::bindgen_prelude::{Error, Result};
use napi_derive::napi;

/// One way a frame breaks the protocol.
#[napi(object)]
pub struct Violation {
    /// The offending value (`payload.decision`, `messages[0].content`); empty for the whole frame.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Every violation of the frame whose JSON text is `text`, sent by `direction` (`client` or
/// `server`; by default the sender of its type). Empty when the frame is valid.
#[napi]
pub fn validate_frame(text: String, direction: Option<String>) -> Result<Vec<Violation>> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(Validator::current);
    let direction = direction
        .map(|direction| direction.parse::<Direction>())
        .transpose()
        .map_err(Error::from_reason)?;
    Ok(validator
        .validate_message(direction, &text)
        .into_iter()
        .map(|violation| Violation {
            path: violation.path,
            reason: violation.reason,
        })
        .collect())
}
