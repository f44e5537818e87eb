//! The native half of the `letta-app-server` npm package: a [`client::NativeClient`] over the
//! Rust client, and [`stream::FrameStream`]s that hand frames to JavaScript in batches.
//!
//! Frames never cross into JavaScript one at a time. [`stream::FrameStream::next`] waits for at
//! least one item and returns every item buffered (up to a limit) as the text of one JSON
//! array, which the JavaScript layer reads with a single `JSON.parse`: one boundary crossing
//! and one string per batch rather than per frame. In that array a frame is an object, exactly
//! as the server sent it, and a gap is an array: `["lagged", missed]`,
//! `["disconnected", reason]` or `["reconnected"]`.
//!
//! The hand-written JavaScript layer (`lib/*.js`) gives these the official client helper's API.

pub mod client;
pub mod stream;
