//! The request interface: what commands, restores and tool handlers need of a connection —
//! numbering request ids, sending a frame, and sending one and waiting for its answer.

use std::future::Future;
use std::time::Duration;

use crate::Error;
use crate::frame::RawFrame;

/// Sends frames to the server and correlates answers with requests.
pub(crate) trait Requests: Send + Sync {
    /// `"<prefix>-<n>"`, `n` counting from 1 per client, as Letta Code's helper numbers them.
    fn next_request_id(&self, prefix: &str) -> String;

    /// Queues a frame for the socket. A `runtime_start`, `sync` or
    /// `runtime_external_tools_update` is tracked until its answer, so that a reconnect
    /// restores what it did.
    fn send(&self, text: String) -> impl Future<Output = Result<(), Error>> + Send;

    /// Sends `text` (a command with `request_id`, tracked as [`Requests::send`] tracks) and
    /// waits up to `timeout` for the first frame with that `request_id` whose type is one of
    /// `answers` (any type if `answers` is empty), or an `error` frame. Dropping the future
    /// withdraws the request.
    fn request(
        &self,
        text: String,
        request_id: &str,
        answers: &'static [&'static str],
        timeout: Duration,
    ) -> impl Future<Output = Result<RawFrame, Error>> + Send;
}
