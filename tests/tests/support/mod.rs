//! Helpers shared by the corpus tests.

pub use letta_app_server_tests::schema::{Direction, Schemas};

/// Panics with every failure, one per line, if there are any.
pub fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} {what}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
