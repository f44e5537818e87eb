//! Much stored, little loaded: a data directory holding 10,000 conversations of 1,000 messages
//! each. What the server costs to start over it (time, memory), and what `runtime_start` costs
//! on a conversation no runtime has loaded since.
//!
//! Ten million messages cannot be written through turns in a benchmark's time (a short turn
//! takes about a millisecond and a half), so the real server writes one conversation of 500
//! turns, and the benchmark copies that conversation's rows 9,999 times with SQL: every table
//! with a `conversation_id` column gets the template's rows under the new id (message ids, which
//! are unique, get the copy's number appended). The rows are the server's own, so the
//! benchmark knows little of the schema: those two column names, and the three tables whose rows
//! a conversation of plain turns does not have and that could not be copied as they are.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

use super::BenchResult;
use super::client::{self, Client};
use super::listing::fill_conversation;
use super::process::{ServerProcess, temp_dir};
use super::report::{Row, Unit};
use super::scenarios::{Bench, Stats, millis};

/// Stored conversations, the template included.
const CONVERSATIONS: usize = 10_000;
/// Messages of each (a user message and a reply per turn).
const MESSAGES: usize = 1_000;
/// Cold conversations started, one at a time.
const COLD_STARTS: usize = 200;
/// Server starts timed over each data directory.
const STARTS: usize = 7;
/// Conversations copied per transaction.
const BATCH: usize = 250;
/// A user message of about the length of a typed question, and a reply of a short paragraph.
const TURN_TEXT: &str = "Could you look at the failing test in the store module and tell me which assertion \
    breaks first, and why? [[reply: The first assertion to fail is the one on the restored queue: the item was \
    written after the turn ended, so the reload reads it as started rather than queued. Writing the item in the \
    same transaction as the turn's end fixes it; the test then passes.]]";
const MIB: f64 = 1024.0 * 1024.0;

impl Bench<'_> {
    /// Fills a data directory with [`CONVERSATIONS`] conversations of [`MESSAGES`] messages,
    /// then times server starts over it (against an empty one), its idle memory, and
    /// `runtime_start` on conversations not loaded since the start.
    pub async fn stored_suite(&mut self) -> BenchResult<()> {
        let data = temp_dir("stored")?;
        let empty = temp_dir("empty")?;
        let template = self.write_template(data.path()).await?;
        let seeding = Instant::now();
        let database = data.path().join("letta-app-server.sqlite3");
        let copies = {
            let (database, template) = (database.clone(), template.clone());
            tokio::task::spawn_blocking(move || copy_conversation(&database, &template, CONVERSATIONS - 1))
                .await
                .map_err(|e| format!("copying the conversation: {e}"))??
        };
        let size = std::fs::metadata(&database).map_or(0, |m| m.len());
        self.notes.push(format!(
            "stored: copying the {MESSAGES}-message conversation {} times took {:.1} s; the store is {:.2} GiB",
            copies.len(),
            seeding.elapsed().as_secs_f64(),
            size as f64 / MIB / 1024.0
        ));

        let (empty_start, empty_rss) = self.starts(empty.path()).await?;
        let (stored_start, stored_rss) = self.starts(data.path()).await?;
        self.rows.push(
            Row::new(
                "startup over 10,000 stored conversations × 1,000 messages, median",
                "scripted",
                stored_start.median,
                Unit::Millis,
                Some(100.0),
            )
            .detail(format!(
                "spawn → listening, {STARTS} starts, max {}; over an empty data directory: {}",
                Unit::Millis.show(stored_start.max),
                Unit::Millis.show(empty_start.median)
            )),
        );
        self.rows.push(
            Row::new(
                "RSS idle over 10,000 × 1,000 stored messages, minus an empty store's",
                "scripted",
                (stored_rss as f64 - empty_rss as f64).max(0.0) / MIB,
                Unit::Mib,
                Some(4.0),
            )
            .detail(format!(
                "{} in all; {} over an empty data directory",
                Unit::Mib.show(stored_rss as f64 / MIB),
                Unit::Mib.show(empty_rss as f64 / MIB)
            )),
        );
        self.cold_starts(data.path(), &template, &copies).await
    }

    /// Writes the template conversation through the real server: 500 turns on a new agent and
    /// conversation. Returns its scope.
    async fn write_template(&self, data: &Path) -> BenchResult<Value> {
        let server = ServerProcess::start_in(self.binary, data, &[]).await?;
        let mut client = Client::connect(&server.url).await?;
        let started = client::start_runtime(&mut client, "rs-template", None).await?;
        fill_conversation(&mut client, &started.runtime, MESSAGES / 2, TURN_TEXT).await?;
        client.close().await;
        server.stop().await?;
        Ok(started.runtime)
    }

    /// Starts the server over `data` [`STARTS`] times; the times from spawning it to its
    /// listening line, and its `VmRSS` 300 ms after the last start.
    async fn starts(&self, data: &Path) -> BenchResult<(Stats, u64)> {
        let mut times = Vec::with_capacity(STARTS);
        let mut rss = 0;
        for n in 0..STARTS {
            let spawned = Instant::now();
            let server = ServerProcess::start_in(self.binary, data, &[]).await?;
            times.push(millis(spawned.elapsed()));
            if n + 1 == STARTS {
                tokio::time::sleep(Duration::from_millis(300)).await;
                rss = server.memory()?.rss;
            }
            server.stop().await?;
        }
        Ok((Stats::of(times), rss))
    }

    /// Starts runtimes on [`COLD_STARTS`] stored conversations, one at a time on one socket,
    /// none loaded since the server started.
    async fn cold_starts(&mut self, data: &Path, template: &Value, copies: &[String]) -> BenchResult<()> {
        let server = ServerProcess::start_in(self.binary, data, &[]).await?;
        let mut client = Client::connect(&server.url).await?;
        let before = server.memory()?.rss;
        let (mut responses, mut replays) = (Vec::new(), Vec::new());
        let step = copies.len() / COLD_STARTS;
        for (n, conversation) in copies.iter().step_by(step.max(1)).take(COLD_STARTS).enumerate() {
            let mut runtime = template.clone();
            runtime["conversation_id"] = Value::from(conversation.as_str());
            let started = client::resume_runtime(&mut client, &format!("cold-{n}"), &runtime).await?;
            responses.push(millis(started.response));
            replays.push(millis(started.replayed));
        }
        let rss = server.memory()?.rss;
        client.close().await;
        server.stop().await?;
        let (response, replay) = (Stats::of(responses), Stats::of(replays));
        self.rows.push(
            Row::new(
                "runtime_start on a cold stored conversation (1,000 messages) → response, median",
                "scripted",
                response.median,
                Unit::Millis,
                Some(5.0),
            )
            .detail(format!(
                "p99 {}; replay complete: median {}, p99 {}; {COLD_STARTS} conversations",
                Unit::Millis.show(response.p99),
                Unit::Millis.show(replay.median),
                Unit::Millis.show(replay.p99),
            )),
        );
        self.rows.push(
            Row::new(
                "RSS per loaded 1,000-message conversation",
                "scripted",
                (rss as f64 - before as f64).max(0.0) / COLD_STARTS as f64 / MIB,
                Unit::Mib,
                None,
            )
            .detail(format!(
                "(RSS after the {COLD_STARTS} cold starts − before) / {COLD_STARTS}: {} → {}; the context \
                 stays in memory until the runtime is evicted",
                Unit::Mib.show(before as f64 / MIB),
                Unit::Mib.show(rss as f64 / MIB)
            )),
        );
        Ok(())
    }
}

/// Copies the rows of the `template` runtime's conversation `copies` times in the SQLite file at
/// `path`, the server being stopped; returns the new conversations' ids (`<template>-<n>`).
fn copy_conversation(path: &Path, template: &Value, copies: usize) -> BenchResult<Vec<String>> {
    let failed = |e: rusqlite::Error| format!("copying the conversation: {e}");
    let template = template["conversation_id"]
        .as_str()
        .ok_or("the template runtime has no conversation_id")?;
    let mut connection = Connection::open(path).map_err(failed)?;
    // Nothing to recover from: a failed run starts again in a new directory.
    connection
        .execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
        .map_err(failed)?;
    // Rows that point at other rows by number (a compaction's message seqs) or hold another
    // unique key (a checkpointed reply's run, a pinned chat) would not copy as they are; a
    // conversation of plain turns, as the template is, has none.
    for table in ["compactions", "partial_replies", "openai_chats"] {
        let rows: i64 = connection
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE conversation_id = ?1"),
                [template],
                |row| row.get(0),
            )
            .map_err(failed)?;
        if rows > 0 {
            return Err(format!(
                "the template conversation has rows in `{table}`, which cannot be copied"
            ));
        }
    }
    let statements = copy_statements(&connection, template).map_err(failed)?;
    let ids: Vec<String> = (1..=copies).map(|n| format!("{template}-{n}")).collect();
    for batch in ids.chunks(BATCH) {
        let transaction = connection.transaction().map_err(failed)?;
        for id in batch {
            for statement in &statements {
                let mut statement = transaction.prepare_cached(statement).map_err(failed)?;
                for (name, value) in [(":new", id.as_str()), (":copy", &id[template.len()..])] {
                    if let Some(index) = statement.parameter_index(name).map_err(failed)? {
                        statement.raw_bind_parameter(index, value).map_err(failed)?;
                    }
                }
                statement.raw_execute().map_err(failed)?;
            }
        }
        transaction.commit().map_err(failed)?;
    }
    connection.execute_batch("PRAGMA journal_mode = WAL;").map_err(failed)?;
    Ok(ids)
}

/// One `INSERT … SELECT` per table holding conversation rows: the rows of conversation
/// `template` under a new conversation id (`:new`), message ids (unique) with the copy's suffix
/// (`:copy`).
fn copy_statements(connection: &Connection, template: &str) -> rusqlite::Result<Vec<String>> {
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut statements = Vec::new();
    for table in tables {
        // (name, declared type, part of the primary key)
        let columns: Vec<(String, String, bool)> = connection
            .prepare("SELECT name, type, pk FROM pragma_table_info(?1)")?
            .query_map([&table], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? > 0))
            })?
            .collect::<Result<_, _>>()?;
        let key = if table == "conversations" {
            "id"
        } else {
            "conversation_id"
        };
        // The resumable stream's retained events are not the conversation's content, and their
        // numbers are never given twice: a copy starts without any, as a conversation nobody
        // subscribed to with `resume_after`.
        if !columns.iter().any(|(name, _, _)| name == key) || ["journals", "journal_events"].contains(&table.as_str()) {
            continue;
        }
        // A lone INTEGER PRIMARY KEY is the rowid: the copy gets a new one.
        let key_columns: Vec<_> = columns.iter().filter(|(_, _, pk)| *pk).collect();
        let rowid = match key_columns.as_slice() {
            [(name, kind, _)] if kind.eq_ignore_ascii_case("INTEGER") => Some(name.as_str()),
            _ => None,
        };
        let copied: Vec<&(String, String, bool)> = columns
            .iter()
            .filter(|(name, _, _)| Some(name.as_str()) != rowid)
            .collect();
        let names: Vec<&str> = copied.iter().map(|(name, _, _)| name.as_str()).collect();
        let values: Vec<String> = names
            .iter()
            .map(|&name| match name {
                _ if name == key => ":new".to_owned(),
                "message_id" => "message_id || :copy".to_owned(),
                "state" if table == "conversations" => "json_set(state, '$.id', :new)".to_owned(),
                other => other.to_owned(),
            })
            .collect();
        // The template's rows are read once, into a table of their own: selecting them from a
        // table that grows with every copy would scan it where no index leads with the key.
        connection.execute(
            &format!(
                "CREATE TEMP TABLE template_{table} AS SELECT * FROM main.{table} WHERE {key} = ?1 ORDER BY rowid"
            ),
            [template],
        )?;
        statements.push(format!(
            "INSERT INTO main.{table} ({}) SELECT {} FROM temp.template_{table} ORDER BY rowid",
            names.join(", "),
            values.join(", ")
        ));
    }
    Ok(statements)
}
