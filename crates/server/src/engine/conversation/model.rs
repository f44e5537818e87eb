//! What `update_model` and `update_toolset` change in a conversation runtime, and how its
//! watchers hear of it (docs/protocol.md §4.3).

use letta_app_server_protocol::{StatusLevel, ToolsetName, ToolsetPreference};

use super::Conversation;
use crate::engine::context::Context;
use crate::engine::toolbox::{TurnOptions, TurnTools};

impl Conversation {
    /// Sets the toolset preference (persisted) and loads the tools it selects at once, as real
    /// Letta does; returns the toolset now in use, or why it is not available (nothing changed
    /// then). The scope hears of it as of a model change ([`Conversation::announce`]).
    pub async fn set_toolset(&self, engine: &Context, preference: ToolsetPreference) -> Result<ToolsetName, String> {
        let mut state = self.state.lock().await;
        let options = TurnOptions::preferring(&state.preferences);
        let tools = TurnTools::select(engine, &self.scope, &options, None, &preference)?;
        (engine.store.save_toolset_preference(&self.scope, &preference).await)
            .map_err(|error| format!("Could not save the toolset preference: {error}"))?;
        let toolset = tools.toolset();
        let display = toolset_display_name(&toolset);
        let message = if preference == ToolsetPreference::Auto {
            format!("Toolset mode set to auto (currently {display}).")
        } else {
            format!("Switched toolset to {display} (manual override).")
        };
        state.loaded_tools = Some(tools.names());
        state.toolset = Some(toolset.clone());
        state.toolset_preference = preference;
        drop(state);
        self.announce(engine, message).await;
        Ok(toolset)
    }

    /// Tells the scope that its model or toolset changed: a `status` notice with `message`, then
    /// its loop and device status.
    pub async fn announce(&self, engine: &Context, message: String) {
        let state = self.state.lock().await;
        self.emit(
            engine,
            [
                Self::status_event(message, StatusLevel::Info, None),
                Self::loop_event(&state),
                self.device_event(&state),
            ],
        );
    }
}

/// Letta Code's display name of a toolset this server has.
fn toolset_display_name(toolset: &ToolsetName) -> &str {
    match toolset {
        ToolsetName::Default => "Claude",
        ToolsetName::None => "None",
        other => other.as_str(),
    }
}
