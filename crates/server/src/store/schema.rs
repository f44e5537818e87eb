//! The tables of the store ([`SCHEMA`]) and the upgrade of a database written by an earlier
//! version ([`migrate`]).

use rusqlite::Connection;

use super::StoreError;

pub(super) const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS scope_settings (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, mode TEXT, cwd TEXT, preferences TEXT,
        PRIMARY KEY (agent_id, conversation_id));
    CREATE TABLE IF NOT EXISTS inputs (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, client_message_id TEXT NOT NULL,
        disposition TEXT NOT NULL, request_id TEXT, payload TEXT NOT NULL, accepted_at TEXT NOT NULL,
        PRIMARY KEY (agent_id, conversation_id, client_message_id));
    CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        run_id TEXT, body TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (agent_id, conversation_id, seq);
    CREATE TABLE IF NOT EXISTS queue (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, item_no INTEGER NOT NULL,
        client_message_id TEXT NOT NULL, item TEXT NOT NULL, options TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        PRIMARY KEY (agent_id, conversation_id, item_no));
    CREATE TABLE IF NOT EXISTS turns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, turn_id TEXT NOT NULL,
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        client_message_ids TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
        started_at TEXT NOT NULL, finished_at TEXT);
    CREATE INDEX IF NOT EXISTS running_turns ON turns (agent_id, conversation_id) WHERE state = 'running';
    CREATE INDEX IF NOT EXISTS interrupted_turns ON turns (agent_id, conversation_id, seq) WHERE state = 'interrupted';
    CREATE TABLE IF NOT EXISTS partial_replies (
        run_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS compactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        summary_seq INTEGER, first_kept_seq INTEGER NOT NULL, summary TEXT, stats TEXT);
    CREATE INDEX IF NOT EXISTS compactions_by_conversation ON compactions (agent_id, conversation_id, id);
    CREATE INDEX IF NOT EXISTS agents_by_creation ON agents (created_at, id);
    CREATE TABLE IF NOT EXISTS toolset_preferences (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, preference TEXT NOT NULL,
        PRIMARY KEY (agent_id, conversation_id));
    CREATE TABLE IF NOT EXISTS server_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS reflection_settings (
        project TEXT NOT NULL, agent_id TEXT NOT NULL, settings TEXT NOT NULL,
        PRIMARY KEY (project, agent_id));
    CREATE TABLE IF NOT EXISTS memory_repositories (agent_id TEXT PRIMARY KEY, enabled_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS openai_chats (
        agent_id TEXT NOT NULL, chat_key TEXT NOT NULL, conversation_id TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (agent_id, chat_key));
    CREATE TABLE IF NOT EXISTS openai_outcomes (
        key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, outcome TEXT NOT NULL, stored_at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS openai_outcomes_by_age ON openai_outcomes (stored_at);
    CREATE TABLE IF NOT EXISTS cron_tasks (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, task TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS cron_tasks_by_agent ON cron_tasks (agent_id);
    CREATE TABLE IF NOT EXISTS cron_runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, ts INTEGER NOT NULL, entry TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS cron_runs_by_task ON cron_runs (task_id, seq);
    CREATE TABLE IF NOT EXISTS journals (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, last_seq INTEGER NOT NULL,
        PRIMARY KEY (agent_id, conversation_id));
    CREATE TABLE IF NOT EXISTS journal_events (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
        frame_type TEXT NOT NULL, coalesces INTEGER NOT NULL, prefix TEXT NOT NULL,
        PRIMARY KEY (agent_id, conversation_id, seq)) WITHOUT ROWID;
";

/// The schema version [`SCHEMA`] and [`migrate`] bring a database to (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 6;

/// Brings a database written by an earlier version up to [`SCHEMA_VERSION`].
pub(super) fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 1 {
        // Version 0 kept the queue in memory only: its inputs carry no state. Whatever they were,
        // they are not waiting any more, so they read as started (a retry does not run them).
        let has_state = connection
            .prepare("SELECT 1 FROM pragma_table_info('inputs') WHERE name = 'state'")?
            .exists([])?;
        if !has_state {
            connection.execute_batch("ALTER TABLE inputs ADD COLUMN state TEXT NOT NULL DEFAULT 'started'")?;
        }
    }
    if version < 2 {
        // Version 1 did not remember a conversation's `client_preferences`.
        let has_preferences = connection
            .prepare("SELECT 1 FROM pragma_table_info('scope_settings') WHERE name = 'preferences'")?
            .exists([])?;
        if !has_preferences {
            connection.execute_batch("ALTER TABLE scope_settings ADD COLUMN preferences TEXT")?;
        }
    }
    if version < 3 {
        // Version 2 listed no messages and no conversations: messages get the id the history
        // lists them under, conversations the columns their list sorts and filters by.
        let has = |table: &str, column: &str| -> Result<bool, StoreError> {
            Ok(connection
                .prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"))?
                .exists([column])?)
        };
        if !has("messages", "message_id")? {
            connection.execute_batch(
                "ALTER TABLE messages ADD COLUMN message_id TEXT;
                 UPDATE messages SET message_id = 'message-' || seq WHERE message_id IS NULL;",
            )?;
        }
        if !has("conversations", "listed_at")? {
            connection.execute_batch(
                "ALTER TABLE conversations ADD COLUMN listed_at TEXT NOT NULL DEFAULT '';
                 ALTER TABLE conversations ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
                 UPDATE conversations SET
                     listed_at = coalesce(json_extract(state, '$.last_message_at'),
                                          json_extract(state, '$.updated_at'), created_at),
                     hidden = coalesce(json_extract(state, '$.hidden'), 0) = 1,
                     archived = coalesce(json_extract(state, '$.archived'), 0) = 1;",
            )?;
        }
    }
    // Version 4 added the OpenAI-compatible API's tables (`openai_chats`, `openai_outcomes`),
    // version 5 the scheduled prompts' (`cron_tasks`, `cron_runs`), version 6 the resumable
    // stream's (`journals`, `journal_events`), which `SCHEMA` creates: nothing to convert.
    connection.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (message_id);
         CREATE INDEX IF NOT EXISTS conversations_by_agent ON conversations (agent_id, listed_at, id);
         CREATE INDEX IF NOT EXISTS conversations_by_time ON conversations (listed_at, id);
         CREATE INDEX IF NOT EXISTS conversations_by_creation ON conversations (created_at, id);",
    )?;
    connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::RuntimeScope;
    use rusqlite::Connection;

    use crate::store::{Admission, InputState, InterruptedTurn, ScopeSettings, Store, TurnStart};

    /// A database written before the queue was durable (schema version 0) is upgraded: its inputs
    /// read as started, and the new tables work.
    #[tokio::test]
    async fn a_version_0_database_is_upgraded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE inputs (
                agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, client_message_id TEXT NOT NULL,
                disposition TEXT NOT NULL, request_id TEXT, payload TEXT NOT NULL, accepted_at TEXT NOT NULL,
                PRIMARY KEY (agent_id, conversation_id, client_message_id));
             INSERT INTO inputs VALUES ('agent-1', 'default', 'cm-old', 'queued', NULL, '{}', 'then');",
        )
        .expect("a version 0 database");
        drop(old);

        let store = Store::open(&path, Default::default()).expect("upgraded");
        let scope = RuntimeScope::new("agent-1", "default");
        let retry = |id: &str| {
            let turn = TurnStart {
                turn_id: format!("turn-{id}"),
                client_ids: vec![id.to_owned()],
                user: None,
            };
            store.accept_input(&scope, None, "{}".into(), Admission::Started(turn))
        };
        assert_eq!(retry("cm-old").await.expect("stored"), Some(InputState::Started));
        assert_eq!(retry("cm-new").await.expect("stored"), None);
        assert_eq!(retry("cm-new").await.expect("stored"), Some(InputState::Started));
        let restored = store.restore(&scope).await.expect("restored");
        assert_eq!(
            restored.interrupted,
            [InterruptedTurn {
                turn_id: "turn-cm-new".into(),
                client_ids: vec!["cm-new".into()]
            }],
            "a turn left running is ended on the next load"
        );
        assert_eq!(
            store.restore(&scope).await.expect("restored").interrupted.len(),
            1,
            "reported on every load until a client was told"
        );
        store
            .turns_reported(&scope, vec!["turn-cm-new".into()])
            .await
            .expect("stored");
        assert!(store.restore(&scope).await.expect("restored").interrupted.is_empty());
    }

    /// A version 1 database (no remembered `client_preferences`) is upgraded: its settings stay,
    /// and preferences are saved and restored.
    #[tokio::test]
    async fn a_version_1_database_is_upgraded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE scope_settings (
                agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, mode TEXT, cwd TEXT,
                PRIMARY KEY (agent_id, conversation_id));
             INSERT INTO scope_settings VALUES ('agent-1', 'default', 'plan', '/old');
             PRAGMA user_version = 1;",
        )
        .expect("a version 1 database");
        drop(old);

        let store = Store::open(&path, Default::default()).expect("upgraded");
        let scope = RuntimeScope::new("agent-1", "default");
        let settings = store.restore(&scope).await.expect("restored").settings;
        let old = ScopeSettings {
            mode: Some("plan".into()),
            cwd: Some("/old".into()),
            preferences: None,
        };
        assert_eq!(settings, old);
        let new = ScopeSettings {
            preferences: Some(r#"{"toolset":{"include":["Grep"]}}"#.into()),
            ..old
        };
        store.save_scope_settings(&scope, new.clone()).await.expect("saved");
        assert_eq!(store.restore(&scope).await.expect("restored").settings, new);
    }
}
