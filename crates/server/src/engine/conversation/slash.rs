//! Slash commands (`execute_command`, docs/protocol.md §4.11): each runs between a
//! `slash_command_start` and a `slash_command_end` delta sent to the conversation's
//! subscribers; the requester then gets `execute_command_response` with the same outcome.
//!
//! * `clear` — later turns are sent none of the messages so far (they stay listed).
//! * `compact [mode | help]` — [`Conversation::compact`].
//! * `context-limit` / `set-max-context [tokens | reset]` — the conversation's (or, for the
//!   default conversation, the agent's) `context_window_limit`.
//! * `doctor [symptom]` — queues a diagnostic prompt that the agent answers in a turn.
//! * `reload` — re-reads the conversation's settings and sends its device status again.
//!
//! Any other command is `Unknown command: <id>`, as real Letta answers it.

use std::sync::Arc;

use letta_app_server_protocol::{
    Delta, QueueItemKind, QueueItemSource, SlashCommandEnd, SlashCommandStart, StreamDelta,
};
use serde_json::json;

use super::Conversation;
use super::compact::Mode;
use crate::engine::context::Context;

/// The commands `execute_command` runs, as the device status lists them.
pub const SUPPORTED_COMMANDS: &[&str] = &["clear", "compact", "context-limit", "doctor", "reload"];

/// The smallest context limit a client may set (Letta Code's).
const MIN_CONTEXT_WINDOW: u64 = 30_000;
/// The largest.
const MAX_CONTEXT_WINDOW: u64 = 10_000_000;

impl Conversation {
    /// Runs slash command `command_id` with `args`: emits its start and end deltas and returns
    /// whether it succeeded and its output.
    pub async fn slash_command(
        self: &Arc<Self>,
        engine: &Arc<Context>,
        command_id: &str,
        args: Option<&str>,
    ) -> (bool, String) {
        let args = args.map(str::trim).filter(|a| !a.is_empty());
        let input = match args {
            Some(args) => format!("/{command_id} {args}"),
            None => format!("/{command_id}"),
        };
        self.emit(
            engine,
            [lifecycle(Delta::SlashCommandStart(SlashCommandStart {
                meta: Self::lifecycle_meta(None),
                command_id: command_id.to_owned(),
                input: input.clone(),
            }))],
        );
        let outcome = match command_id {
            "clear" => self
                .clear(engine)
                .await
                .map(|()| "Agent's in-context messages cleared & moved to conversation history".to_owned()),
            "compact" => self.compact_command(engine, args).await,
            "context-limit" | "set-max-context" => self.context_limit(engine, args).await,
            "doctor" => {
                let origin = (QueueItemKind::Message, QueueItemSource::System);
                self.queue_prompt(engine, origin, doctor_prompt(args))
                    .await
                    .map(|()| String::new())
            }
            "reload" => {
                let state = self.state.lock().await;
                self.emit(engine, [self.device_event(&state)]);
                Ok("Reloaded settings".to_owned())
            }
            _ => Err(format!("Unknown command: {command_id}")),
        };
        let (success, output) = match outcome {
            Ok(output) => (true, output),
            Err(error) if error.starts_with("Unknown command") => (false, error),
            Err(error) => (false, format!("Failed: {error}")),
        };
        self.emit(
            engine,
            [lifecycle(Delta::SlashCommandEnd(SlashCommandEnd {
                meta: Self::lifecycle_meta(None),
                command_id: command_id.to_owned(),
                input,
                output: output.clone(),
                success,
            }))],
        );
        (success, output)
    }

    /// `/clear`: the context starts empty; refused while a turn runs.
    async fn clear(&self, engine: &Context) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state.turn.is_some() {
            return Err("Cannot clear the conversation while a turn is running".into());
        }
        if state.compacting {
            return Err("Cannot clear the conversation while it is being compacted".into());
        }
        (engine.store.clear_context(&self.scope).await).map_err(|e| e.to_string())?;
        Arc::make_mut(&mut state.history).clear();
        // The reminders went with the history: the next turn tells the secret names again.
        state.secret_names = None;
        Ok(())
    }

    async fn compact_command(self: &Arc<Self>, engine: &Arc<Context>, args: Option<&str>) -> Result<String, String> {
        let mode = args.and_then(|a| a.split_whitespace().next());
        if mode == Some("help") {
            return Ok(COMPACT_HELP.to_owned());
        }
        let parsed = match mode {
            None => Mode::SlidingWindow,
            Some(mode) => {
                Mode::from_wire(mode).ok_or_else(|| format!("Invalid mode \"{mode}\". Run /compact help for usage."))?
            }
        };
        let compaction = self.compact(engine, parsed).await?;
        let shown = mode.map(|m| format!(" (mode: {m})")).unwrap_or_default();
        Ok(format!(
            "Compaction completed{shown}. Message buffer length reduced from {} to {}.\n\nSummary: {}",
            compaction.num_messages_before, compaction.num_messages_after, compaction.summary
        ))
    }

    /// `/context-limit [tokens | reset]`: shows or sets the context limit of the conversation
    /// (of the agent, for its default conversation).
    async fn context_limit(&self, engine: &Context, args: Option<&str>) -> Result<String, String> {
        let store = &engine.store;
        let (target, current) = match self.scope.conversation_id.as_str() {
            // An agent keeps it in its model settings, where `agent_update` sets it too.
            "default" => {
                let agent = self.scope.agent_id.clone().unwrap_or_default();
                let state = (store.agent(agent).await).map_err(|e| e.to_string())?;
                let settings = state.as_ref().and_then(|s| s.get("model_settings"));
                ("Agent", settings.and_then(|s| s.get("context_window_limit")).cloned())
            }
            id => {
                let state = (store.conversation(id.to_owned()).await).map_err(|e| e.to_string())?;
                (
                    "Current conversation",
                    state.and_then(|s| s.get("context_window_limit").cloned()),
                )
            }
        };
        let value = match args {
            None => {
                let current = current.filter(|v| !v.is_null());
                return Ok(match current {
                    Some(limit) => format!("{target} max context is {limit} tokens."),
                    None => format!("{target} max context is the model's default."),
                });
            }
            Some("reset") => serde_json::Value::Null,
            Some(text) => {
                let tokens: u64 = (text.replace(['_', ','], "").parse())
                    .map_err(|_| format!("Invalid context limit \"{text}\": give a number of tokens or reset"))?;
                if !(MIN_CONTEXT_WINDOW..=MAX_CONTEXT_WINDOW).contains(&tokens) {
                    return Err(format!(
                        "The context limit must be from {MIN_CONTEXT_WINDOW} to {MAX_CONTEXT_WINDOW} tokens"
                    ));
                }
                json!(tokens)
            }
        };
        let mut patch = letta_app_server_protocol::JsonObject::new();
        let patched = match self.scope.conversation_id.as_str() {
            "default" => {
                let agent = self.scope.agent_id.clone().unwrap_or_default();
                let state = (store.agent(agent.clone()).await).map_err(|e| e.to_string())?;
                let mut settings = (state.as_ref())
                    .and_then(|s| s.get("model_settings")?.as_object().cloned())
                    .unwrap_or_default();
                settings.insert("context_window_limit".into(), value.clone());
                patch.insert("model_settings".into(), settings.into());
                store.patch_agent(agent, patch).await
            }
            id => {
                patch.insert("context_window_limit".into(), value.clone());
                store.patch_conversation(id.to_owned(), patch).await
            }
        };
        patched
            .map_err(|e| e.to_string())?
            .ok_or("The conversation no longer exists")?;
        Ok(match value.as_u64() {
            Some(tokens) => format!("{target} max context set to {tokens} tokens."),
            None => format!("{target} max context reset to the model's default."),
        })
    }
}

/// The help `/compact help` prints.
const COMPACT_HELP: &str = "/compact [mode]: summarise older messages so that later turns send the summary instead.\n\
Modes: sliding_window (the default: keeps the newest messages), all, self_compact_sliding_window, self_compact_all.";

/// The prompt `/doctor` queues.
fn doctor_prompt(symptom: Option<&str>) -> String {
    let symptom = symptom.map(|s| format!("\nThe user reports: {s}")).unwrap_or_default();
    format!(
        "Run a health check of this agent and its environment: say which model and tools you have, \
         check the working directory is usable, and report anything that looks wrong, with a fix.{symptom}"
    )
}

fn lifecycle(delta: Delta) -> letta_app_server_protocol::RuntimeEvent {
    StreamDelta {
        delta,
        subagent_id: None,
    }
    .into()
}
