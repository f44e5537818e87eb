//! The golden frames, invalid frames and traces against the parsers and the schema.

mod agreement;
mod compat;
mod golden;
mod invalid;
mod traces;
