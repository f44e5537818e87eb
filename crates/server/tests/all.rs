//! The server's integration tests, in one binary: `suite/` holds the tests by area, `support/`
//! binds the shared test support (`letta-app-server-tests`) to this crate's binary.

mod suite;
mod support;
