//! The server's logs: `tracing` spans and events, written to stderr by [`install`].
//!
//! Spans: `connection` (`id`, `peer`, `channel`) around everything a websocket's reader does,
//! and `turn` (`agent`, `conversation`, `turn_id`, `run_id`) around a turn. Events at `info`:
//! connections opened and closed (who closed, the code, the reason), turns started and finished
//! (stop reason), `error` frames sent (code), model requests (provider, status, latency,
//! attempt) and retries, approvals asked and answered (tool, allowed); at `warn`: closes the
//! server had to make (overflow, violations), failed model requests; at `error`: store
//! failures. Nothing at `info` or above holds message text, tool arguments, tokens or secrets;
//! texts that may quote them (an error frame's message, a turn's error) are at `debug`.
//!
//! The library only emits; a program chooses where the events go. The `letta-app-server`
//! binary calls [`install`] with its `--log-level` and `--log-format`.

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event, for people: time, level, spans with their fields, target, message
    /// and fields.
    Text,
    /// One JSON object per line, for collectors: `timestamp`, `level`, `message`, the event's
    /// fields, `target`, and `spans` (outermost first, each with its `name` and fields).
    Json,
}

impl LogFormat {
    /// The format named `text` or `json`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Writes this process's log events to stderr from now on: those `filter` enables, a level
/// (`error`, `warn`, `info`, `debug`, `trace`, `off`) and/or `target=level` directives,
/// comma-separated (`info,letta_app_server::transport=debug`: `RUST_LOG`'s form without span
/// and field filters), in `format`. Fails on a filter that does not parse, or when the process
/// already has a subscriber.
///
/// The filter is `tracing-subscriber`'s `Targets`, not its `EnvFilter`: `EnvFilter` looks up
/// every span entered in a locked map (for its span directives), and a turn's span is entered
/// at each step of its model stream; `Targets` decides once per call site.
pub fn install(filter: &str, format: LogFormat) -> Result<(), String> {
    let targets: Targets = filter
        .parse()
        .map_err(|error| format!("invalid log filter `{filter}`: {error}"))?;
    let ansi = std::io::stderr().is_terminal();
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    (tracing_subscriber::registry().with(targets).with(lines))
        .try_init()
        .map_err(|error| format!("cannot install the logger: {error}"))
}
