//! The client's errors as the Python exceptions of `letta_app_server.errors`.

use letta_app_server_client::Error;
use pyo3::prelude::*;

mod py {
    pyo3::import_exception!(letta_app_server.errors, AppServerError);
    pyo3::import_exception!(letta_app_server.errors, InvalidUrlError);
    pyo3::import_exception!(letta_app_server.errors, InvalidTlsError);
    pyo3::import_exception!(letta_app_server.errors, ConnectError);
    pyo3::import_exception!(letta_app_server.errors, DisconnectedError);
    pyo3::import_exception!(letta_app_server.errors, RequestTimeoutError);
    pyo3::import_exception!(letta_app_server.errors, ServerError);
    pyo3::import_exception!(letta_app_server.errors, RejectedError);
    pyo3::import_exception!(letta_app_server.errors, ClosedError);
    pyo3::import_exception!(letta_app_server.errors, ProtocolError);
}

/// The exception for a failed client call; its message is the Rust error's.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::InvalidUrl { .. } => py::InvalidUrlError::new_err(message),
        Error::InvalidTls { .. } => py::InvalidTlsError::new_err(message),
        Error::Connect { .. } => py::ConnectError::new_err(message),
        Error::Timeout { request_id, after } => {
            py::RequestTimeoutError::new_err((message, request_id, after.as_secs_f64()))
        }
        Error::Server { request_id, code, .. } => py::ServerError::new_err((message, code, request_id)),
        Error::Rejected {
            request_id, frame_type, ..
        } => py::RejectedError::new_err((message, request_id, frame_type)),
        Error::Disconnected { .. } => py::DisconnectedError::new_err(message),
        Error::Closed => py::ClosedError::new_err(message),
        Error::Protocol { .. } => py::ProtocolError::new_err(message),
        _ => py::AppServerError::new_err(message),
    }
}
