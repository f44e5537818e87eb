//! The server over real sockets, by area.

mod agents;
mod approvals;
mod auth;
mod cli;
mod conversations;
mod cwd;
mod durability;
mod files;
mod git;
mod letta034;
mod lifecycle;
mod limits;
mod memfs;
mod models;
mod openai;
mod providers;
mod resume_queue;
mod search;
mod secrets;
mod settings;
mod slash;
mod terminal;
mod tls;
mod transport;
mod unsupported;
mod watch;
