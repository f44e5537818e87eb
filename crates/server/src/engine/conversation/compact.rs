//! Compaction (`conversation_compact`, `/compact`): the model summarises the older part of the
//! conversation's context, and later turns send the summary instead (docs/protocol.md §4.7).
//!
//! Modes, as Letta Code's: `sliding_window` (the default) summarises the oldest messages and
//! keeps the newest [`KEPT_SHARE`] of them, starting at a user message so that no tool call is
//! parted from its result (with no such start it falls back to `all`); `all` summarises every
//! message. The `self_compact_*` modes are the same here: the conversation's own model writes
//! the summary either way.

use std::sync::Arc;

use letta_app_server_protocol::{Compaction, MessageContent};
use serde_json::json;

use super::{Agent, Conversation};
use crate::engine::context::Context;
use crate::history::HistoryMessage;
use crate::provider::{ModelRequest, ProviderEvent, SUMMARY_REQUEST, SUMMARY_SYSTEM};
use crate::store::CompactionRecord;

/// The share of the context a `sliding_window` compaction keeps (Letta Code's default).
const KEPT_SHARE: f64 = 0.3;

/// Why a compaction was asked for (Letta's `compaction_stats.trigger`).
pub const MANUAL: &str = "manual";

/// How much to compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything.
    All,
    /// The oldest part.
    SlidingWindow,
}

impl Mode {
    /// Reads Letta's `compaction_settings.mode`; `None` for an unknown one.
    pub fn from_wire(mode: &str) -> Option<Self> {
        match mode {
            "all" | "self_compact_all" => Some(Self::All),
            "sliding_window" | "self_compact_sliding_window" => Some(Self::SlidingWindow),
            _ => None,
        }
    }
}

impl Conversation {
    /// Compacts the context: the model summarises its older part, the summary is stored and
    /// replaces that part for later turns. Refused while a turn runs, while another compaction
    /// runs, or when there is nothing to compact; inputs arriving meanwhile are queued and start
    /// when it ends.
    pub async fn compact(self: &Arc<Self>, engine: &Arc<Context>, mode: Mode) -> Result<Compaction, String> {
        let in_memory = {
            let mut state = self.state.lock().await;
            if state.turn.is_some() {
                return Err("Cannot compact the conversation while a turn is running".into());
            }
            if state.compacting {
                return Err("The conversation is already being compacted".into());
            }
            if self.is_deleted() {
                return Err("The conversation's agent was deleted".into());
            }
            state.compacting = true;
            state.history.len()
        };
        let compacted = self.summarise_context(engine, mode, in_memory).await;
        // Inputs that came meanwhile waited in the queue; they start now.
        let mut state = self.state.lock().await;
        state.compacting = false;
        if compacted.is_ok() {
            // The summary replaced the reminders: the next turn tells the secret names again.
            state.secret_names = None;
        }
        if state.turn.is_none() && state.pending.is_none() {
            self.start_next_batch(engine, &mut state).await;
        }
        compacted
    }

    /// The compaction itself, while no turn can start: summarise, store, and replace the first
    /// `in_memory` messages of the history.
    async fn summarise_context(&self, engine: &Context, mode: Mode, in_memory: usize) -> Result<Compaction, String> {
        let context = (engine.store.context(&self.scope).await).map_err(|e| e.to_string())?;
        if context.is_empty() {
            return Err("Nothing to compact: the conversation has no messages".into());
        }
        let split = match mode {
            Mode::All => context.len(),
            Mode::SlidingWindow => window_start(&context).unwrap_or(context.len()),
        };
        let (compacted, kept) = context.split_at(split);
        let summary = summarise(engine, self, compacted.iter().map(|(_, m)| m.clone()).collect()).await?;
        let before = context.len() as u64;
        let after = 1 + kept.len() as u64;
        let stats = json!({
            "trigger": MANUAL,
            "messages_count_before": before,
            "messages_count_after": after,
            "context_window": null,
        });
        let note = json!({
            "type": "system_alert",
            "message": format!(
                "{} earlier messages of this conversation were replaced by this summary of them:\n{summary}",
                compacted.len()
            ),
            "time": crate::clock::now_iso(),
            "compaction_stats": stats,
        });
        let message = HistoryMessage::User {
            content: MessageContent::Text(note.to_string()),
        };
        let record = CompactionRecord {
            summary: summary.clone(),
            message: message.clone(),
            first_kept_seq: kept.first().map(|(seq, _)| *seq),
            stats,
        };
        (engine.store.compact(&self.scope, record).await).map_err(|e| e.to_string())?;
        // No turn ran meanwhile, so the history is still what the context was read from.
        let mut state = self.state.lock().await;
        let history = Arc::make_mut(&mut state.history);
        history.drain(..in_memory.min(history.len()));
        history.splice(
            0..0,
            std::iter::once(message).chain(kept.iter().map(|(_, m)| m.clone())),
        );
        Ok(Compaction {
            num_messages_before: before,
            num_messages_after: after,
            summary,
        })
    }
}

/// Where a `sliding_window` compaction's kept messages start: the first user message from
/// which at most [`KEPT_SHARE`] of the context is kept; `None` when there is none after the
/// first message.
fn window_start(context: &[(i64, HistoryMessage)]) -> Option<usize> {
    let earliest = context.len() - (context.len() as f64 * KEPT_SHARE).floor() as usize;
    (earliest.max(1)..context.len()).find(|&i| matches!(context[i].1, HistoryMessage::User { .. }))
}

/// The summary the conversation's model writes of `messages`.
async fn summarise(
    engine: &Context,
    conversation: &Conversation,
    mut messages: Vec<HistoryMessage>,
) -> Result<String, String> {
    let agent = Agent::resolve(engine, &conversation.scope).await?;
    let (provider, model) = engine.providers.resolve(agent.model.as_deref())?;
    messages.push(HistoryMessage::User {
        content: MessageContent::Text(SUMMARY_REQUEST.into()),
    });
    let request = ModelRequest {
        model,
        system: SUMMARY_SYSTEM.into(),
        reasoning_effort: None,
        messages: Arc::new(messages),
        tools: Arc::new([]),
    };
    let mut summary = String::new();
    let mut sink = |event| {
        if let ProviderEvent::Text(text) = event {
            summary.push_str(&text);
        }
    };
    (provider.stream(&request, &mut sink).await).map_err(|e| format!("The model could not summarise: {e}"))?;
    let summary = summary.trim().to_owned();
    if summary.is_empty() {
        return Err("The model could not summarise: it answered with no text".into());
    }
    Ok(summary)
}
