//! The protocol crate's integration tests, one binary: parsing and the protocol table.

mod suite;
