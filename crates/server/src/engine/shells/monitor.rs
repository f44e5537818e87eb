//! What makes a background command a monitor (`Monitor`): each stdout line is an event, sent to
//! the conversation as a `task_notification` a few lines at a time, at a bounded rate (real
//! Letta's batching and token bucket), and how it ended.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Shell, tell};
use crate::engine::Engine;
use crate::engine::notices::{monitor_event, task_notification};
use crate::sync::lock;
use crate::tools::ShellEnd;

/// Lines that arrive within this long are one event.
const BATCH: Duration = Duration::from_millis(200);
/// Characters of a line an event keeps.
const LINE_CHARS: usize = 500;
/// Characters of an event, after which it says `...(truncated)`.
const EVENT_CHARS: usize = 3000;
/// Events sent at once at most, then one per [`REFILL`].
const BURST: f64 = 10.0;
const REFILL: Duration = Duration::from_secs(2);
/// A monitor that printed too fast this long, without a quiet [`BATCH`], is stopped.
const FLOOD: Duration = Duration::from_secs(30);
/// Its events are held back while its conversation has this many items waiting (nobody works
/// them off while nobody watches it).
const MAX_WAITING: usize = 20;

/// A monitor's description, kind and pending events.
pub(crate) struct Monitor {
    pub(super) description: String,
    pub(super) persistent: bool,
    events: Mutex<Events>,
}

struct Events {
    pending: Vec<String>,
    /// Characters pending; lines past [`EVENT_CHARS`] are dropped (and the event says so).
    pending_chars: usize,
    dropped: bool,
    tokens: f64,
    refilled: Instant,
    /// Events held back since the last one sent.
    suppressed: u64,
    /// Since when events have been held back.
    flooding_since: Option<Instant>,
    /// Whether it ever printed a line.
    printed: bool,
}

/// What to send next.
enum Next {
    Nothing,
    Event(String),
    /// Held back for [`FLOOD`]: it stops.
    Flooded,
}

impl Monitor {
    pub(crate) fn new(description: String, persistent: bool) -> Self {
        Self {
            description,
            persistent,
            events: Mutex::new(Events {
                pending: Vec::new(),
                pending_chars: 0,
                dropped: false,
                tokens: BURST,
                refilled: Instant::now(),
                suppressed: 0,
                flooding_since: None,
                printed: false,
            }),
        }
    }

    /// A stdout line: part of the next event.
    pub(super) fn push(&self, mut line: String) {
        if let Some(cut) = line.char_indices().nth(LINE_CHARS).map(|(at, _)| at) {
            line.truncate(cut);
        }
        let mut events = lock(&self.events);
        events.printed = true;
        if events.pending_chars > EVENT_CHARS {
            events.dropped = true;
            return;
        }
        events.pending_chars += line.chars().count() + 1;
        events.pending.push(line);
    }

    /// An event that could not be sent: counted in the next.
    fn held_back(&self) {
        lock(&self.events).suppressed += 1;
    }

    /// The next event to send now, if the rate allows (always when `last`).
    fn next(&self, last: bool) -> Next {
        let mut events = lock(&self.events);
        if events.pending.is_empty() {
            // A quiet moment: it is not flooding.
            events.flooding_since = None;
            return Next::Nothing;
        }
        let now = Instant::now();
        let refill = now.duration_since(events.refilled).as_secs_f64() / REFILL.as_secs_f64();
        events.tokens = (events.tokens + refill).min(BURST);
        events.refilled = now;
        if events.tokens < 1.0 && !last {
            events.pending.clear();
            events.pending_chars = 0;
            events.dropped = false;
            events.suppressed += 1;
            let since = *events.flooding_since.get_or_insert(now);
            return if now.duration_since(since) > FLOOD {
                Next::Flooded
            } else {
                Next::Nothing
            };
        }
        events.tokens = (events.tokens - 1.0).max(0.0);
        let mut text = std::mem::take(&mut events.pending).join("\n");
        events.pending_chars = 0;
        let cut = text.char_indices().nth(EVENT_CHARS).map(|(at, _)| at);
        if let Some(cut) = cut {
            text.truncate(cut);
        }
        if cut.is_some() || std::mem::take(&mut events.dropped) {
            text.push_str("\n...(truncated)");
        }
        if events.suppressed > 0 {
            text = format!(
                "[{} events suppressed — output rate too high. Print less, or only what matters.]\n{text}",
                events.suppressed
            );
            events.suppressed = 0;
        }
        Next::Event(text)
    }

    /// The notification that ends it, if any: a timeout is an event saying so; an exit is
    /// reported as the end of its stream (or its script's failure).
    pub(super) fn ending(&self, shell: &Shell, end: ShellEnd) -> Option<String> {
        let printed = lock(&self.events).printed;
        let description = &self.description;
        let (status, summary, code) = match end {
            ShellEnd::Interrupted => return None,
            ShellEnd::TimedOut => {
                return Some(monitor_event(
                    &shell.id,
                    description,
                    "[Monitor timed out — re-arm if needed.]",
                ));
            }
            ShellEnd::Exited(code) => {
                let shown = code.map_or_else(|| "signal".to_owned(), |code| code.to_string());
                match (code, printed) {
                    (_, false) => (
                        "failed",
                        format!("Monitor \"{description}\" ended without producing output (exit {shown})"),
                        shown,
                    ),
                    (Some(0), true) => ("completed", format!("Monitor \"{description}\" stream ended"), shown),
                    (_, true) => (
                        "failed",
                        format!("Monitor \"{description}\" script failed (exit {shown})"),
                        shown,
                    ),
                }
            }
        };
        Some(task_notification(
            &shell.id,
            status,
            &summary,
            &format!("Exit code: {code}"),
            &[format!("duration_ms: {}", shell.started.elapsed().as_millis())],
            &shell.output_file,
        ))
    }
}

/// Sends `shell`'s events every [`BATCH`] while it runs; stops it when it floods.
pub(super) async fn pump(engine: Arc<Engine>, shell: Arc<Shell>) {
    let Some(monitor) = shell.monitor.as_ref() else { return };
    let mut done = shell.done.subscribe();
    loop {
        tokio::select! {
            _ = done.wait_for(|done| *done) => return,
            () = tokio::time::sleep(BATCH) => {}
        }
        match monitor.next(false) {
            Next::Nothing => {}
            Next::Event(text) => {
                let waiting = match engine.conversation(&shell.scope).await {
                    Ok(conversation) => conversation.waiting().await,
                    Err(_) => 0,
                };
                if waiting >= MAX_WAITING {
                    monitor.held_back();
                } else {
                    let event = monitor_event(&shell.id, &monitor.description, &text);
                    tell(&engine, &shell.scope, event).await;
                }
            }
            Next::Flooded => {
                let notice = "[Monitor stopped — too much output. Re-arm it with a command that prints less.]";
                tell(
                    &engine,
                    &shell.scope,
                    monitor_event(&shell.id, &monitor.description, notice),
                )
                .await;
                engine.shells.stop(&shell);
                return;
            }
        }
    }
}

/// The events still pending when `shell` ended (sent whatever the rate).
pub(super) fn last_event(shell: &Shell) -> Option<String> {
    let monitor = shell.monitor.as_ref()?;
    match monitor.next(true) {
        Next::Event(text) => Some(monitor_event(&shell.id, &monitor.description, &text)),
        Next::Nothing | Next::Flooded => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(next: Next) -> Option<String> {
        match next {
            Next::Event(text) => Some(text),
            Next::Nothing | Next::Flooded => None,
        }
    }

    #[test]
    fn a_burst_of_events_is_held_back_then_counted_in_the_next() {
        let monitor = Monitor::new("d".into(), false);
        let sent: Vec<Option<String>> = (0..12)
            .map(|n| {
                monitor.push(format!("line {n}"));
                event(monitor.next(false))
            })
            .collect();
        assert!(sent[..10].iter().all(Option::is_some), "{sent:?}");
        assert_eq!(sent[10..], [None, None]);
        lock(&monitor.events).refilled -= REFILL;
        monitor.push("later".into());
        assert_eq!(
            event(monitor.next(false)).as_deref(),
            Some("[2 events suppressed — output rate too high. Print less, or only what matters.]\nlater")
        );
    }

    #[test]
    fn a_monitor_printing_too_fast_for_long_without_a_pause_is_stopped() {
        let monitor = Monitor::new("d".into(), true);
        lock(&monitor.events).tokens = 0.0;
        monitor.push("one".into());
        assert!(matches!(monitor.next(false), Next::Nothing));
        lock(&monitor.events).flooding_since = Some(Instant::now() - FLOOD - Duration::from_secs(1));
        lock(&monitor.events).tokens = 0.0;
        monitor.push("two".into());
        assert!(matches!(monitor.next(false), Next::Flooded));
        // A quiet moment forgives it.
        assert!(matches!(monitor.next(false), Next::Nothing));
        assert!(lock(&monitor.events).flooding_since.is_none());
    }

    #[test]
    fn long_lines_and_events_are_cut() {
        let monitor = Monitor::new("d".into(), true);
        monitor.push("x".repeat(LINE_CHARS + 10));
        for _ in 0..10 {
            monitor.push("y".repeat(LINE_CHARS));
        }
        let text = event(monitor.next(true)).expect("an event");
        assert!(text.starts_with(&format!("{}\n", "x".repeat(LINE_CHARS))));
        assert!(text.ends_with("\n...(truncated)"));
        assert_eq!(text.chars().count(), EVENT_CHARS + "\n...(truncated)".len());
    }
}
