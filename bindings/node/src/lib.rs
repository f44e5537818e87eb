//! The native half of the `letta-app-server` npm package: a [`client::NativeClient`] over the
//! Rust client, and [`stream::FrameStream`]s that hand frames to JavaScript in batches.
//!
//! Frames never cross into JavaScript one at a time. [`stream::FrameStream::next`] waits for at
//! least one item and returns every item buffered (up to a limit) as the text of one JSON
//! array, which the JavaScript layer reads with a single `JSON.parse`: one boundary crossing
//! and one string per batch rather than per frame. In that array a frame is an object, exactly
//! as the server sent it, and a gap is an array: `["lagged", missed]`,
//! `["disconnected", reason]`, `["reconnected"]`, or `["gap", description]` for a kind of gap
//! this binding does not know.
//!
//! [`validate::validate_frame`] checks a frame against the bundled schema.
//!
//! The hand-written JavaScript layer (`lib/*.js`) gives these the official client helper's API.

pub mod client;
mod error;
pub mod stream;
pub mod terminal;
pub mod validate;

/// Threads of the addon's tokio runtime. One reads the socket and runs the client's tasks; the
/// work per frame is small, and a second thread would mostly add wake-ups across threads.
const WORKER_THREADS: usize = 1;

/// Gives napi-rs the runtime its `async` functions run on (its default has a thread per core).
#[napi_derive::module_init]
fn init() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("letta-app-server-client")
        .enable_all()
        .build();
    // Should it fail, napi-rs builds its default runtime instead.
    if let Ok(runtime) = runtime {
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }
}
