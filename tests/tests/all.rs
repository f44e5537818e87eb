//! The corpus tests, in one binary: `suite/` holds them by subject, `support/` what they share.

mod suite;
mod support;
