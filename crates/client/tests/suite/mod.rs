//! The client against the real server, by area.

mod auth;
mod bindings;
mod calls;
mod example;
mod golden;
mod lifecycles;
mod patient;
mod resilience;
mod resume;
mod terminal;
mod watch;
