//! The server over real sockets, by area.

mod approvals;
mod cli;
mod durability;
mod letta034;
mod lifecycle;
mod limits;
mod models;
mod providers;
mod transport;
mod unsupported;
