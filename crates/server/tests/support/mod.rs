//! The shared test support, and the server binary the process tests start.

pub use letta_app_server_tests::{server::TestServer, wire};

/// The server binary as a child process: the shared [`letta_app_server_tests::process`] started
/// with this crate's `letta-app-server`.
pub mod binary {
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use letta_app_server_tests::process;
    pub use letta_app_server_tests::process::ServerProcess;

    /// The binary cargo built for these tests.
    const BINARY: &str = env!("CARGO_BIN_EXE_letta-app-server");

    /// The binary with `--listen` (a free port), `--data-dir data_dir` and `args`.
    pub fn command(data_dir: &Path, args: &[&str]) -> Command {
        process::command(Path::new(BINARY), data_dir, args)
    }

    /// Starts the binary with `--listen` (a free port), `--data-dir data_dir` and `args`; returns
    /// it and its websocket URL once it printed its four address lines.
    pub fn spawn_server(data_dir: &Path, args: &[&str]) -> (ServerProcess, String) {
        spawn(command(data_dir, args))
    }

    /// Starts `command` (the binary, listening); returns it and its websocket URL once it
    /// printed its four address lines.
    pub fn spawn(command: Command) -> (ServerProcess, String) {
        let server = ServerProcess::spawn(command).unwrap_or_else(|e| panic!("{e}"));
        let base = server.url.strip_suffix("/ws").expect("a websocket URL").to_owned();
        let line = || server.next_line(Duration::from_secs(10)).expect("a line");
        assert_eq!(line(), format!("WebSocket: {base}/ws"));
        assert_eq!(line(), format!("Control channel: {base}/ws?channel=control"));
        assert_eq!(line(), format!("Stream channel: {base}/ws?channel=stream"));
        let url = server.url.clone();
        (server, url)
    }

    /// Runs the binary with `args` and expects it to refuse them, with `expected` on stderr.
    pub fn refused(args: &[&str], expected: &str) {
        process::refused(Path::new(BINARY), args, expected);
    }
}
