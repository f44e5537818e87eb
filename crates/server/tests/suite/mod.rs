//! The server over real sockets, by area.

mod agents;
mod approvals;
mod cli;
mod durability;
mod letta034;
mod lifecycle;
mod limits;
mod providers;
mod transport;
mod unsupported;
