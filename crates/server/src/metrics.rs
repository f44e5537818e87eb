//! The server's metrics, served by `GET /metrics` in the Prometheus text format (0.0.4).
//!
//! One [`Metrics`] per server: tests run many servers in one process, so nothing is global.
//! Counters and histograms are updated where things happen; what exists at the moment of a
//! scrape (subscribed runtimes, loaded conversations) is read by the scrape itself
//! ([`Metrics::render`]). An update is an atomic add, a histogram's a short uncontended lock:
//! a delta pays one counter, added once per written batch.
//!
//! The README's "Operating the server" lists every name, in the order they are served; a test
//! keeps the list and [`Metrics::new`] in step.

use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A metric's one label: its name and value.
pub type Label = [(&'static str, String); 1];

/// A histogram family with the same buckets for every label value.
pub type Histograms = Family<Label, Histogram, fn() -> Histogram>;

/// What exists at the moment of a scrape, counted by the scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Runtimes (agent + conversation) at least one connection is subscribed to.
    pub subscribed_runtimes: i64,
    /// Conversations held in memory.
    pub loaded_conversations: i64,
}

/// One unit of a gauge, held until dropped (an approval waiting for its answer).
#[derive(Debug)]
pub struct Held(Gauge);

impl Held {
    /// Adds one to `gauge` until the result is dropped.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open websocket connections (each socket of a split session counts).
    pub connections: Gauge,
    /// Websocket connections accepted.
    pub connections_opened: Counter,
    /// Websocket connections ended, by close code (`none`: a close frame without a code, or
    /// none at all: the connection broke or went silent).
    pub connections_closed: Family<Label, Counter>,
    subscribed_runtimes: Gauge,
    loaded_conversations: Gauge,
    /// Turns started.
    pub turns_started: Counter,
    /// Turns ended, by stop reason.
    pub turns_finished: Family<Label, Counter>,
    /// `stream_delta` frames written to sockets.
    pub deltas_sent: Counter,
    /// Frames of every type written to sockets.
    pub frames_sent: Counter,
    /// Status snapshots replaced, in a backed-up queue, by a newer one.
    pub frames_coalesced: Counter,
    /// Frames discarded because their connection's queue had been closed.
    pub frames_dropped: Counter,
    /// Connections closed because their outbound queue overflowed (a reader too slow).
    pub overflow_closes: Counter,
    /// Frames waiting in a connection's queue each time its writer takes a batch.
    pub queue_depth: Histogram,
    /// `error` frames sent, by code.
    pub error_frames: Family<Label, Counter>,
    /// Model requests, each attempt: the time to the response's status line (or the failure),
    /// by provider.
    pub provider_latency: Histograms,
    /// Failed model request attempts, by HTTP status (`none`: no response).
    pub provider_errors: Family<Label, Counter>,
    /// How long each store write (all-or-nothing operation) took on the store's thread.
    pub store_write: Histogram,
    /// Store operations that failed.
    pub store_errors: Counter,
    /// Tool approvals asked of clients.
    pub approvals_asked: Counter,
    /// Tool approvals asked and not answered yet.
    pub approvals_pending: Gauge,
}

/// Buckets of durations in seconds: 0.1 ms to about 105 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 21))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered under the `letta` prefix, at zero.
    pub fn new() -> Self {
        let mut this = Self {
            registry: Registry::with_prefix("letta"),
            connections: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed: Family::default(),
            subscribed_runtimes: Gauge::default(),
            loaded_conversations: Gauge::default(),
            turns_started: Counter::default(),
            turns_finished: Family::default(),
            deltas_sent: Counter::default(),
            frames_sent: Counter::default(),
            frames_coalesced: Counter::default(),
            frames_dropped: Counter::default(),
            overflow_closes: Counter::default(),
            queue_depth: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            error_frames: Family::default(),
            provider_latency: Family::new_with_constructor(seconds),
            provider_errors: Family::default(),
            store_write: seconds(),
            store_errors: Counter::default(),
            approvals_asked: Counter::default(),
            approvals_pending: Gauge::default(),
        };
        let r = &mut this.registry;
        r.register("connections", "Open websocket connections", this.connections.clone());
        r.register(
            "connections_opened",
            "Websocket connections accepted",
            this.connections_opened.clone(),
        );
        r.register(
            "connections_closed",
            "Websocket connections ended, by close code (none: no code, or cut off)",
            this.connections_closed.clone(),
        );
        r.register(
            "subscribed_runtimes",
            "Runtimes with at least one subscribed connection",
            this.subscribed_runtimes.clone(),
        );
        r.register(
            "loaded_conversations",
            "Conversations held in memory",
            this.loaded_conversations.clone(),
        );
        r.register("turns_started", "Turns started", this.turns_started.clone());
        r.register(
            "turns_finished",
            "Turns ended, by stop reason",
            this.turns_finished.clone(),
        );
        r.register(
            "deltas_sent",
            "stream_delta frames written to sockets",
            this.deltas_sent.clone(),
        );
        r.register("frames_sent", "Frames written to sockets", this.frames_sent.clone());
        r.register(
            "frames_coalesced",
            "Status frames replaced by a newer one in a backed-up queue",
            this.frames_coalesced.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames discarded because their connection's queue was closed",
            this.frames_dropped.clone(),
        );
        r.register(
            "overflow_closes",
            "Connections closed because their outbound queue overflowed",
            this.overflow_closes.clone(),
        );
        r.register(
            "outbound_queue_depth",
            "Frames queued for a connection each time its writer takes a batch",
            this.queue_depth.clone(),
        );
        r.register("error_frames", "error frames sent, by code", this.error_frames.clone());
        r.register_with_unit(
            "provider_request_duration",
            "Model request attempts: time to the response status, by provider",
            Unit::Seconds,
            this.provider_latency.clone(),
        );
        r.register(
            "provider_errors",
            "Failed model request attempts, by HTTP status (none: no response)",
            this.provider_errors.clone(),
        );
        r.register_with_unit(
            "store_write_duration",
            "Store writes (all-or-nothing operations): time on the store thread",
            Unit::Seconds,
            this.store_write.clone(),
        );
        r.register(
            "store_errors",
            "Store operations that failed",
            this.store_errors.clone(),
        );
        r.register(
            "approvals_asked",
            "Tool approvals asked of clients",
            this.approvals_asked.clone(),
        );
        r.register(
            "approvals_pending",
            "Tool approvals waiting for an answer",
            this.approvals_pending.clone(),
        );
        this
    }

    /// The counter of `family` for one label value.
    pub fn count(family: &Family<Label, Counter>, name: &'static str, value: impl Into<String>) {
        family.get_or_create(&[(name, value.into())]).inc();
    }

    /// Records a model request attempt of `provider`: how long it took to its status, and the
    /// status when it failed (`None` for no response).
    pub fn provider_attempt(&self, provider: &str, took: Duration, failed: Option<Option<u16>>) {
        (self
            .provider_latency
            .get_or_create(&[("provider", provider.to_owned())]))
        .observe(took.as_secs_f64());
        if let Some(status) = failed {
            let status = status.map_or_else(|| "none".to_owned(), |status| status.to_string());
            Self::count(&self.provider_errors, "status", status);
        }
    }

    /// Every metric in the Prometheus text format, with the gauges of `now`.
    pub fn render(&self, now: Snapshot) -> String {
        self.subscribed_runtimes.set(now.subscribed_runtimes);
        self.loaded_conversations.set(now.loaded_conversations);
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_with_their_names_labels_and_units() {
        let metrics = Metrics::new();
        metrics.connections.inc();
        Metrics::count(&metrics.turns_finished, "stop_reason", "end_turn");
        metrics.provider_attempt("llama.cpp", Duration::from_millis(3), Some(Some(503)));
        let text = metrics.render(Snapshot {
            subscribed_runtimes: 2,
            loaded_conversations: 5,
        });
        for line in [
            "letta_connections 1",
            "letta_turns_finished_total{stop_reason=\"end_turn\"} 1",
            "letta_provider_errors_total{status=\"503\"} 1",
            "letta_provider_request_duration_seconds_count{provider=\"llama.cpp\"} 1",
            "letta_subscribed_runtimes 2",
            "letta_loaded_conversations 5",
            "# TYPE letta_store_write_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn the_readme_lists_every_metric_and_no_other() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
        let listed: Vec<&str> = (readme.lines())
            .filter_map(|line| line.strip_prefix("| `letta_"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        let metrics = Metrics::new();
        // A labelled family is rendered once it has a member.
        for family in [
            &metrics.connections_closed,
            &metrics.turns_finished,
            &metrics.error_frames,
        ] {
            Metrics::count(family, "label", "value");
        }
        metrics.provider_attempt("provider", Duration::ZERO, Some(None));
        let text = metrics.render(Snapshot::default());
        let served: Vec<&str> = (text.lines())
            .filter_map(|line| line.strip_prefix("# TYPE letta_"))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        assert_eq!(
            listed, served,
            "README's metrics table (\"Operating the server\") and Metrics::new"
        );
    }
}
