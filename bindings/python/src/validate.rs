//! `validate`: a frame checked against the bundled schema and this version's parser.

use std::sync::OnceLock;

use letta_app_server_protocol::compat::{Direction, Validator};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert;

/// Every violation of `frame` (a dict, or the text of a message) sent by `direction` (`client`
/// or `server`; by default the sender of its type), as `(path, reason)` pairs.
#[pyfunction]
#[pyo3(signature = (frame, direction = None))]
pub fn validate_frame(frame: &Bound<'_, PyAny>, direction: Option<&str>) -> PyResult<Vec<(String, String)>> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    let text = match frame.cast::<PyString>() {
        Ok(text) => text.to_str()?.to_owned(),
        Err(_) => convert::py_to_value(frame)?.to_string(),
    };
    let direction = direction
        .map(|direction| direction.parse::<Direction>())
        .transpose()
        .map_err(PyValueError::new_err)?;
    let validator = VALIDATOR.get_or_init(Validator::current);
    Ok(frame
        .py()
        .detach(|| validator.validate_message(direction, &text))
        .into_iter()
        .map(|violation| (violation.path, violation.reason))
        .collect())
}
