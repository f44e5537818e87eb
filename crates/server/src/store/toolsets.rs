//! The toolset preference `update_toolset` sets for a scope.

use letta_app_server_protocol::{RuntimeScope, ToolsetPreference};
use rusqlite::{OptionalExtension, params};

use super::{Reply, Store, key};

impl Store {
    /// Saves the toolset preference of a scope.
    pub fn save_toolset_preference(&self, scope: &RuntimeScope, preference: &ToolsetPreference) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let preference = preference.as_str().to_owned();
        self.call(move |c| {
            c.execute(
                "INSERT INTO toolset_preferences (agent_id, conversation_id, preference) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent_id, conversation_id) DO UPDATE SET preference = excluded.preference",
                params![agent, conversation, preference],
            )?;
            Ok(())
        })
    }

    /// The toolset preference of a scope (`auto` when it never set one).
    pub fn toolset_preference(&self, scope: &RuntimeScope) -> Reply<ToolsetPreference> {
        let (agent, conversation) = key(scope);
        self.call(move |c| {
            let preference: Option<String> = c
                .query_row(
                    "SELECT preference FROM toolset_preferences WHERE agent_id = ?1 AND conversation_id = ?2",
                    [agent, conversation],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(preference.map_or(ToolsetPreference::Auto, ToolsetPreference::from))
        })
    }
}
