//! Agents as a collection: one page of a filtered listing, an update applied in one
//! transaction, and deleting an agent with everything it owns (docs/protocol.md §4.6). Reading
//! and inserting one agent is in [`super::catalog`].

use letta_app_server_protocol::JsonObject;
use rusqlite::{OptionalExtension, params};

use super::{Reply, Store};

/// What one page of `agent_list` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentQuery {
    /// Only agents with exactly this name.
    pub name: Option<String>,
    /// Only agents carrying these tags (distinct): all of them, or any of them when
    /// `match_all_tags` is false.
    pub tags: Vec<String>,
    /// Whether an agent must carry every tag of `tags`.
    pub match_all_tags: bool,
    /// Only agents whose name, description, id or model contains this text, ignoring case.
    pub query_text: Option<String>,
    /// Only agents after this one, in the listing's order.
    pub after: Option<String>,
    /// Only agents before this one, in the listing's order.
    pub before: Option<String>,
    /// Oldest first (else newest first).
    pub ascending: bool,
    /// At most this many agents.
    pub limit: usize,
    /// At most about this many bytes of stored agents (at least one agent).
    pub max_bytes: usize,
}

/// An agent `agent_list` cannot page from: its cursor names no agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCursor(pub String);

impl Store {
    /// One page of agents, ordered by creation (`created_at`, then `id`). A page holds the
    /// agents next to its cursor: the first ones after `after`, or, with only `before`, the
    /// last ones before it (in the listing's order either way). Hidden agents are left out, as
    /// Letta Code's local backend does: `hidden: true`, or no `hidden` and the tag
    /// `role:subagent`.
    pub fn list_agents(&self, query: AgentQuery) -> Reply<Result<Vec<JsonObject>, UnknownCursor>> {
        self.call(move |c| {
            for cursor in [&query.after, &query.before].into_iter().flatten() {
                let known = c
                    .prepare_cached("SELECT 1 FROM agents WHERE id = ?1")?
                    .exists([cursor])?;
                if !known {
                    return Ok(Err(UnknownCursor(cursor.clone())));
                }
            }
            let (later, earlier) = if query.ascending { (">", "<") } else { ("<", ">") };
            // With only `before`, the page is read backwards from it, then turned around.
            let backwards = query.before.is_some() && query.after.is_none();
            let order = if query.ascending != backwards { "ASC" } else { "DESC" };
            let tags_match = if query.match_all_tags {
                "(SELECT count(DISTINCT value) FROM json_each(agents.state, '$.tags')
                  WHERE value IN (SELECT value FROM json_each(?2))) = json_array_length(?2)"
            } else {
                "EXISTS (SELECT 1 FROM json_each(agents.state, '$.tags')
                  WHERE value IN (SELECT value FROM json_each(?2)))"
            };
            let sql = format!(
                "SELECT id, state FROM agents
                 WHERE NOT coalesce(json_extract(state, '$.hidden'), EXISTS (
                     SELECT 1 FROM json_each(agents.state, '$.tags') WHERE value = 'role:subagent'))
                   AND (?1 IS NULL OR json_extract(state, '$.name') = ?1)
                   AND (?2 IS NULL OR {tags_match})
                   AND (?3 IS NULL OR (created_at, id) {later} (SELECT created_at, id FROM agents WHERE id = ?3))
                   AND (?4 IS NULL OR (created_at, id) {earlier} (SELECT created_at, id FROM agents WHERE id = ?4))
                 ORDER BY created_at {order}, id {order}"
            );
            let tags = (!query.tags.is_empty())
                .then(|| serde_json::to_string(&query.tags))
                .transpose()?;
            let needle = query.query_text.as_deref().map(str::to_lowercase);
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query(params![query.name, tags, query.after, query.before])?;
            let mut page = Vec::new();
            let mut bytes = 0;
            while page.len() < query.limit {
                let Some(row) = rows.next()? else { break };
                let state: String = row.get(1)?;
                if !page.is_empty() && bytes + state.len() > query.max_bytes {
                    break;
                }
                let mut agent: JsonObject = serde_json::from_str(&state)?;
                if let Some(needle) = &needle {
                    let id: String = row.get(0)?;
                    if !mentions(&agent, &id, needle) {
                        continue;
                    }
                }
                // The row's id is the agent's, whatever its stored state says.
                agent.insert("id".into(), row.get::<_, String>(0)?.into());
                bytes += state.len();
                page.push(agent);
            }
            if backwards {
                page.reverse();
            }
            Ok(Ok(page))
        })
    }

    /// Applies `change` to an agent's state and saves it, in one transaction; the new state, or
    /// `None` when there is no such agent.
    pub fn update_agent(
        &self,
        id: String,
        change: impl FnOnce(&mut JsonObject) + Send + 'static,
    ) -> Reply<Option<JsonObject>> {
        self.transaction(move |t| {
            let state: Option<String> = t
                .query_row("SELECT state FROM agents WHERE id = ?1", [&id], |row| row.get(0))
                .optional()?;
            let Some(state) = state else { return Ok(None) };
            let mut state: JsonObject = serde_json::from_str(&state)?;
            change(&mut state);
            t.execute(
                "UPDATE agents SET state = ?1 WHERE id = ?2",
                params![serde_json::to_string(&state)?, id],
            )?;
            Ok(Some(state))
        })
    }

    /// Deletes an agent and everything stored under it: its conversations (the default one
    /// included) with their messages, partial replies, turns, input ledger, queue and settings.
    /// `false` when there is no such agent (then nothing is touched: agent-free conversations,
    /// keyed by an empty agent id, are never reached through an id that names no agent).
    pub fn delete_agent(&self, id: String) -> Reply<bool> {
        self.transaction(move |t| {
            if t.execute("DELETE FROM agents WHERE id = ?1", [&id])? == 0 {
                return Ok(false);
            }
            for table in OWNED_BY_AN_AGENT {
                t.execute(&format!("DELETE FROM {table} WHERE agent_id = ?1"), [&id])?;
            }
            Ok(true)
        })
    }
}

/// The tables whose rows belong to the agent in their `agent_id` column.
const OWNED_BY_AN_AGENT: [&str; 15] = [
    "conversations",
    "reflection_settings",
    "memory_repositories",
    "compactions",
    "toolset_preferences",
    "scope_settings",
    "inputs",
    "queue",
    "turns",
    "messages",
    "partial_replies",
    "openai_chats",
    "openai_outcomes",
    "journals",
    "journal_events",
];

/// Whether an agent's name, description, id or model contains `needle` (lowercase), ignoring
/// case, as Letta Code's local backend searches `query_text`.
fn mentions(agent: &JsonObject, id: &str, needle: &str) -> bool {
    let text = |key: &str| agent.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    [text("name"), text("description"), id, text("model")]
        .iter()
        .any(|field| field.to_lowercase().contains(needle))
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::{
        JsonObject, MessageContent, QueueItemKind, QueueItemSource, QueueMessage, RuntimeScope,
    };
    use serde_json::json;

    use super::{AgentQuery, OWNED_BY_AN_AGENT};
    use crate::history::HistoryMessage;
    use crate::store::{Admission, QueueEntry, ScopeSettings, Store, TurnStart};

    fn object(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().expect("an object")
    }

    /// Stores rows of every kind for `scope`: its conversation, settings, a started turn with
    /// its user message, a queued input and a partial reply.
    async fn fill(store: &Store, scope: &RuntimeScope, n: usize) {
        if scope.conversation_id != "default" {
            let state = object(json!({"id": scope.conversation_id}));
            store
                .insert_conversation(scope, &state, "t".into())
                .await
                .expect("conversation");
        }
        store
            .save_scope_settings(scope, ScopeSettings::default())
            .await
            .expect("settings");
        let user = HistoryMessage::User {
            content: MessageContent::Text("hi".into()),
        };
        let turn = TurnStart {
            turn_id: format!("turn-{n}"),
            client_ids: vec![format!("cm-{n}")],
            user: Some(user.clone()),
        };
        store
            .accept_input(scope, None, "{}".into(), Admission::Started(turn))
            .await
            .expect("started");
        let item = QueueMessage {
            id: "q-1".into(),
            client_message_id: format!("cm-q-{n}"),
            kind: QueueItemKind::Message,
            source: QueueItemSource::User,
            content: MessageContent::Text("later".into()),
            enqueued_at: "t".into(),
            paused: None,
        };
        let queued = Admission::Queued {
            entries: vec![QueueEntry {
                item,
                options: "{}".into(),
            }],
            evicted: Vec::new(),
        };
        store
            .accept_input(scope, None, "{}".into(), queued)
            .await
            .expect("queued");
        store
            .save_partial(scope, format!("run-{n}"), &user)
            .await
            .expect("partial");
        store.clear_context(scope).await.expect("a compaction");
        store
            .save_toolset_preference(scope, &letta_app_server_protocol::ToolsetPreference::None)
            .await
            .expect("a toolset preference");
        let agent = scope.agent_id.clone().unwrap_or_default();
        let row = crate::store::ReflectionRow {
            project: format!("/project-{n}"),
            agent_id: agent.clone(),
            settings: "{}".into(),
        };
        store.save_reflection(vec![row]).await.expect("reflection settings");
        store
            .save_memory_repository(agent.clone(), "t".into())
            .await
            .expect("a memory repository");
        store
            .save_chat_conversation(
                agent.clone(),
                format!("chat-{n}"),
                scope.conversation_id.clone(),
                "t".into(),
            )
            .await
            .expect("a pinned chat");
        store
            .save_idempotent_outcome(format!("outcome-{n}"), agent, "{}".into(), 0)
            .await
            .expect("an outcome");
        let event = crate::store::StoredEvent {
            seq: 7,
            frame_type: "update_queue".into(),
            coalesces: true,
            prefix: "{}".into(),
        };
        store.write_journal(scope, vec![event], 7, 7).await.expect("a journal");
    }

    /// Rows per table: `agent-a`'s and all.
    async fn counts(store: &Store) -> Vec<(String, i64, i64)> {
        store
            .call(|c| {
                let mut counts = Vec::new();
                let tables = std::iter::once(("agents", "id")).chain(OWNED_BY_AN_AGENT.map(|t| (t, "agent_id")));
                for (table, column) in tables {
                    let count = |filter: &str| -> rusqlite::Result<i64> {
                        c.query_row(&format!("SELECT count(*) FROM {table} {filter}"), [], |row| row.get(0))
                    };
                    let mine = count(&format!("WHERE {column} = 'agent-a'"))?;
                    counts.push((table.to_owned(), mine, count("")?));
                }
                Ok(counts)
            })
            .await
            .expect("counted")
    }

    /// Deleting an agent removes every row of its conversations, and nothing of another agent's
    /// or of an agent-free conversation.
    #[tokio::test]
    async fn deleting_an_agent_removes_everything_it_owns_and_nothing_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        for agent in ["agent-a", "agent-b"] {
            let state = object(json!({"id": agent, "name": agent}));
            store
                .insert_agent(agent.into(), &state, "t".into())
                .await
                .expect("agent");
        }
        let scopes = [
            RuntimeScope::new("agent-a", "default"),
            RuntimeScope::new("agent-a", "conv-a"),
            RuntimeScope::new("agent-b", "conv-b"),
            RuntimeScope::agent_free("local-conv-c"),
        ];
        for (n, scope) in scopes.iter().enumerate() {
            fill(&store, scope, n).await;
        }
        let before = counts(&store).await;
        assert!(
            before.iter().all(|(_, mine, all)| *mine > 0 && all > mine),
            "{before:?}"
        );

        assert!(store.delete_agent("agent-a".into()).await.expect("deleted"));
        let after = counts(&store).await;
        for ((table, mine, all), (_, gone, left)) in before.iter().zip(&after) {
            assert_eq!((*gone, *left), (0, all - mine), "{table}");
        }
        assert!(!store.delete_agent("agent-a".into()).await.expect("answered"));
        assert!(
            !store.delete_agent(String::new()).await.expect("answered"),
            "the empty agent id of agent-free conversations names no agent"
        );
        assert_eq!(counts(&store).await, after);
    }

    /// Deleting a conversation removes the rows of that conversation only.
    #[tokio::test]
    async fn deleting_a_conversation_removes_its_rows_and_nothing_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let state = object(json!({"id": "agent-a", "name": "a"}));
        store
            .insert_agent("agent-a".into(), &state, "t".into())
            .await
            .expect("agent");
        let (gone, kept) = (
            RuntimeScope::new("agent-a", "conv-1"),
            RuntimeScope::new("agent-a", "conv-2"),
        );
        fill(&store, &gone, 1).await;
        fill(&store, &kept, 2).await;
        let rows = |conversation: &'static str| {
            store.call(move |c| {
                let mut rows = 0;
                for table in [
                    "conversations",
                    "scope_settings",
                    "inputs",
                    "messages",
                    "queue",
                    "turns",
                ]
                .into_iter()
                .chain(["partial_replies", "compactions", "toolset_preferences", "openai_chats"])
                {
                    let column = if table == "conversations" {
                        "id"
                    } else {
                        "conversation_id"
                    };
                    let count: i64 = c.query_row(
                        &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
                        [conversation],
                        |row| row.get(0),
                    )?;
                    assert!(count > 0 || conversation == "conv-1", "{table}");
                    rows += count;
                }
                Ok(rows)
            })
        };
        let before = rows("conv-2").await.expect("counted");
        assert!(store.delete_conversation(&gone).await.expect("deleted"));
        assert_eq!(rows("conv-1").await.expect("counted"), 0);
        assert_eq!(rows("conv-2").await.expect("counted"), before);
        assert!(!store.delete_conversation(&gone).await.expect("answered"));
    }

    /// A page stops at its byte budget, but never comes back empty while agents remain.
    #[tokio::test]
    async fn a_page_of_large_agents_ends_at_its_byte_budget() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        for n in 0..5 {
            let id = format!("agent-{n}");
            let state = object(json!({"id": id, "name": "big", "system": "x".repeat(1000)}));
            store.insert_agent(id, &state, format!("t{n}")).await.expect("agent");
        }
        let page = |max_bytes| {
            store.list_agents(AgentQuery {
                limit: 10,
                ascending: true,
                max_bytes,
                ..AgentQuery::default()
            })
        };
        let ids = |page: Vec<JsonObject>| -> Vec<String> {
            page.iter()
                .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let listed = |reply: Result<Result<Vec<JsonObject>, super::UnknownCursor>, _>| {
            ids(reply.expect("listed").expect("a page"))
        };
        assert_eq!(listed(page(2500).await), ["agent-0", "agent-1"]);
        assert_eq!(listed(page(10).await), ["agent-0"]);
        assert_eq!(listed(page(usize::MAX).await).len(), 5);
    }
}
