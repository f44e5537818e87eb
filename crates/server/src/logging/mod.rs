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
//! binary calls [`install`] with its `--log-level`, `--log-format` and `--otlp-endpoint`: with
//! the last (and the `otlp` feature, on by default) the same spans, with their events, are also
//! exported to an OpenTelemetry collector (`logging/otlp.rs`).

#[cfg(feature = "otlp")]
mod otlp;

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

/// What [`install`] set up that needs winding up: the OTLP exporter, if any.
#[must_use = "shut it down before the process ends, or the last spans are not exported"]
pub struct Logging {
    #[cfg(feature = "otlp")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Logging {
    /// Exports the spans not exported yet (waiting up to the exporter's timeout) and stops the
    /// exporter. Call it on the runtime [`install`] ran on, after the server stopped.
    pub async fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(traces) = self.traces {
            // The exporter's thread sends through this runtime: wait for it elsewhere.
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
    }
}

/// Writes this process's log events to stderr from now on: those `filter` enables, a level
/// (`error`, `warn`, `info`, `debug`, `trace`, `off`) and/or `target=level` directives,
/// comma-separated (`info,letta_app_server::transport=debug`: `RUST_LOG`'s form without span
/// and field filters), in `format`; with an `otlp_endpoint` (an OTLP/HTTP collector's URL:
/// `http://HOST:4318`, the spans go to its `/v1/traces`), the enabled spans also go there, sent
/// from the current Tokio runtime. Fails on a filter or endpoint that does not parse, on an
/// endpoint in a build without the `otlp` feature, or when the process already has a
/// subscriber.
///
/// The filter is `tracing-subscriber`'s `Targets`, not its `EnvFilter`: `EnvFilter` looks up
/// every span entered in a locked map (for its span directives), and a turn's span is entered
/// at each step of its model stream; `Targets` decides once per call site.
pub fn install(filter: &str, format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Logging, String> {
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
    #[cfg(feature = "otlp")]
    let traces = otlp_endpoint
        .map(|endpoint| otlp::provider(endpoint, tokio::runtime::Handle::current()))
        .transpose()?;
    #[cfg(feature = "otlp")]
    let export = traces.as_ref().map(otlp::layer);
    #[cfg(not(feature = "otlp"))]
    if otlp_endpoint.is_some() {
        return Err("--otlp-endpoint needs a build with the `otlp` feature (on by default)".into());
    }
    #[cfg(not(feature = "otlp"))]
    let export = tracing_subscriber::layer::Identity::new();
    (tracing_subscriber::registry().with(targets).with(lines).with(export))
        .try_init()
        .map_err(|error| format!("cannot install the logger: {error}"))?;
    Ok(Logging {
        #[cfg(feature = "otlp")]
        traces,
    })
}
