//! The server over real sockets, by area.

mod agents;
mod approvals;
mod cli;
mod conversations;
mod durability;
mod letta034;
mod lifecycle;
mod limits;
mod models;
mod providers;
mod slash;
mod transport;
mod unsupported;
