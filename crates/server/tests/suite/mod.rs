//! The server over real sockets, by area.

mod approvals;
mod cli;
mod cwd;
mod durability;
mod letta034;
mod lifecycle;
mod limits;
mod memfs;
mod providers;
mod resume_queue;
mod settings;
mod transport;
mod unsupported;
