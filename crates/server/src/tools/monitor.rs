//! `Monitor`: watches a command's output in the background; each line it prints reaches the
//! model as an event (docs/protocol.md §4.16, §6.2). The engine runs it (see [`super::Tasks`]).

use std::time::Duration;

use letta_app_server_protocol::JsonObject;
use serde_json::json;

use super::args::{object_schema, optional_bool, optional_str, optional_u64, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};

/// The timeout of a monitor that is not persistent, when none is given (ms).
const DEFAULT_TIMEOUT_MS: u64 = 300_000;
/// The timeouts a monitor may ask for (ms).
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;

/// A command to watch.
#[derive(Debug, Clone)]
pub struct MonitorRequest {
    /// What it watches, for the events' summary.
    pub description: String,
    /// The command whose stdout lines are the events.
    pub command: String,
    /// Killed after this long; `None` for a persistent monitor.
    pub timeout: Option<Duration>,
    pub cwd: std::path::PathBuf,
    /// The agent's secrets (those the command names go to its environment).
    pub secrets: std::collections::BTreeMap<String, String>,
}

/// `Monitor`: starts watching a command.
pub struct Monitor;

impl LocalTool for Monitor {
    fn name(&self) -> &'static str {
        "Monitor"
    }

    fn description(&self) -> &'static str {
        "Watches a command in the background (a log tail, a poll loop, a test watcher): each line it \
         prints to stdout is an event that reaches you as a <task-notification> message, a few lines \
         at a time. The call returns at once with the monitor's id (`monitor_1`); keep working \
         meanwhile. It stops when the command exits, after `timeout_ms` (default 300000, at most \
         3600000) unless `persistent`, or with TaskStop. Noisy output is rate-limited: print only \
         what matters."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "description": {"type": "string", "description": "What it watches, in a few words (shown with each event)."},
                "command": {"type": "string", "description": "The command to run with `bash -c`; each stdout line is an event."},
                "ws": {"type": "object", "description": "A websocket to watch instead (`url`, `protocols`): not supported by this server."},
                "timeout_ms": {"type": "integer", "minimum": 1000, "maximum": 3600000, "description": "Stop after this long (default 300000); ignored when persistent."},
                "persistent": {"type": "boolean", "description": "Run until stopped, without a timeout."}
            }),
            &["description"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Other
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let description = try_arg!(required_str(&args, "description")).to_owned();
            let command = try_arg!(optional_str(&args, "command"));
            let ws = args.get("ws").filter(|ws| !ws.is_null());
            let command = match (command, ws) {
                (Some(command), None) => command.to_owned(),
                (None, Some(_)) => {
                    return ToolResult::error("Monitor ws sources are not supported by this server: watch a command.");
                }
                _ => return ToolResult::error("Monitor requires exactly one of command or ws"),
            };
            // As real Letta checks it: what the approval question shows is what runs.
            if command.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return ToolResult::error(
                    "Monitor command contains control characters that would be hidden in the approval dialog",
                );
            }
            let persistent = try_arg!(optional_bool(&args, "persistent")).unwrap_or(false);
            let timeout_ms = try_arg!(optional_u64(&args, "timeout_ms")).unwrap_or(DEFAULT_TIMEOUT_MS);
            if !TIMEOUT_MS.contains(&timeout_ms) {
                return ToolResult::error("Monitor timeout_ms must be between 1000 and 3600000");
            }
            let request = MonitorRequest {
                description,
                command,
                timeout: (!persistent).then(|| Duration::from_millis(timeout_ms)),
                cwd: context.cwd.to_path_buf(),
                secrets: context.secrets.clone(),
            };
            context.tasks.monitor(request).await
        })
    }
}
