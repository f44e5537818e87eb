//! The client's integration tests against the real server, in one binary: `suite/` holds the
//! tests by area, `support/` the shared test server reached with this crate's client.

mod suite;
mod support;
