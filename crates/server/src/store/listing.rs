//! Listing: conversations (`conversation_list`) and pages of a conversation's messages
//! (`conversation_messages_list`), read with the indexes on them so that a page costs the same
//! whatever else is stored.

use std::collections::HashMap;

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Savepoint, params, params_from_iter};
use serde_json::Value;

use super::context::seq_of;
use super::{Reply, Store, StoreError, key};
use crate::limits::MAX_PAGE_BYTES;
use crate::transcript::{StoredMessage, project};

/// A list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// Which conversations to list (Letta's `ConversationListParams`).
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    /// Only this agent's (`Some("")`: only agent-free ones).
    pub agent_id: Option<String>,
    /// Start after this conversation.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// By activity (or creation) time.
    pub order: Order,
    /// Sort by creation time instead of the last activity.
    pub by_creation: bool,
    /// `Some(false)`: unarchived only; `Some(true)`: archived only; `None`: both.
    pub archived: Option<bool>,
    /// List hidden conversations too.
    pub include_hidden: bool,
    /// Only those whose summary contains this (lower-cased) text.
    pub summary_search: Option<String>,
}

/// Which messages of a conversation to list (Letta's `MessageListParams`).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Only messages older than this one.
    pub before: Option<String>,
    /// Only messages newer than this one.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// Newest first (the default) or oldest first.
    pub order: Order,
    /// Only these `message_type`s.
    pub types: Option<Vec<String>>,
}

/// A page of messages, as `conversation_messages_list_response` carries it.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    /// The messages, in the asked order.
    pub messages: Vec<JsonObject>,
    /// The id of the oldest message of the page.
    pub next_before: Option<String>,
    /// Whether messages older than it exist.
    pub has_more: bool,
}

impl Store {
    /// Lists conversations; `None` when `after` names no conversation.
    pub fn list_conversations(&self, query: ConversationQuery) -> Reply<Option<Vec<JsonObject>>> {
        self.call(move |c| list_conversations(&c.savepoint()?, &query))
    }

    /// A page of a conversation's messages; `Err` names a cursor that is not one of its messages.
    pub fn messages_page(&self, scope: &RuntimeScope, query: MessageQuery) -> Reply<Result<MessagePage, String>> {
        let scope = scope.clone();
        self.call(move |c| Pages::new(&c.savepoint()?, &scope)?.page(&query))
    }
}

fn list_conversations(t: &Savepoint<'_>, query: &ConversationQuery) -> Result<Option<Vec<JsonObject>>, StoreError> {
    let column = if query.by_creation { "created_at" } else { "listed_at" };
    let (direction, beyond) = match query.order {
        Order::Desc => ("DESC", "<"),
        Order::Asc => ("ASC", ">"),
    };
    let mut sql = String::from("SELECT state FROM conversations WHERE 1 = 1");
    let mut values: Vec<Sql> = Vec::new();
    if let Some(agent) = &query.agent_id {
        sql.push_str(" AND agent_id = ?");
        values.push(Sql::Text(agent.clone()));
    }
    if !query.include_hidden {
        sql.push_str(" AND hidden = 0");
    }
    if let Some(archived) = query.archived {
        sql.push_str(" AND archived = ?");
        values.push(Sql::Integer(archived.into()));
    }
    if let Some(search) = &query.summary_search {
        sql.push_str(" AND instr(lower(coalesce(json_extract(state, '$.summary'), '')), ?) > 0");
        values.push(Sql::Text(search.clone()));
    }
    if let Some(after) = &query.after {
        let Some(at) = t
            .query_row(
                &format!("SELECT {column} FROM conversations WHERE id = ?1"),
                [after],
                |row| row.get::<_, String>(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        // A row value, which SQLite reads as a range of the index.
        sql.push_str(&format!(" AND ({column}, id) {beyond} (?, ?)"));
        values.extend([Sql::Text(at), Sql::Text(after.clone())]);
    }
    sql.push_str(&format!(" ORDER BY {column} {direction}, id {direction} LIMIT ?"));
    values.push(Sql::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let mut statement = t.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), |row| row.get::<_, String>(0))?;
    let (mut conversations, mut bytes) = (Vec::new(), 0);
    for state in rows {
        // A page ends early past MAX_PAGE_BYTES: the next one starts after its last.
        let state = state?;
        bytes += state.len();
        conversations.push(serde_json::from_str(&state)?);
        if bytes > MAX_PAGE_BYTES {
            break;
        }
    }
    Ok(Some(conversations))
}

/// A listed message's place: its stored message's `seq` and its index among that message's
/// Letta messages.
type Position = (i64, usize);

/// Reads pages of one conversation's messages.
struct Pages<'t, 'c> {
    t: &'t Savepoint<'c>,
    scope: &'t RuntimeScope,
    agent: String,
    conversation: String,
    /// The compactions' summaries, by the `seq` of their message.
    summaries: HashMap<i64, (String, Value)>,
}

impl<'t, 'c> Pages<'t, 'c> {
    fn new(t: &'t Savepoint<'c>, scope: &'t RuntimeScope) -> Result<Self, StoreError> {
        let (agent, conversation) = key(scope);
        let summaries = t
            .prepare_cached(
                "SELECT summary_seq, summary, stats FROM compactions
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND summary_seq IS NOT NULL",
            )?
            .query_map([&agent, &conversation], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?
            .map(|row| {
                let (seq, summary, stats) = row?;
                Ok((seq, (summary, serde_json::from_str(&stats)?)))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            t,
            scope,
            agent,
            conversation,
            summaries,
        })
    }

    fn page(&self, query: &MessageQuery) -> Result<Result<MessagePage, String>, StoreError> {
        let mut bounds = [None, None];
        for (bound, cursor) in bounds.iter_mut().zip([&query.after, &query.before]) {
            if let Some(id) = cursor {
                match self.position(id)? {
                    Some(position) => *bound = Some(position),
                    None => return Ok(Err(format!("Message {id} not found"))),
                }
            }
        }
        let [after, before] = bounds;
        let desc = query.order == Order::Desc;
        let (listed, cut) = self.walk(after, before, desc, query.types.as_deref(), query.limit)?;
        let oldest = if desc { listed.last() } else { listed.first() };
        let next_before = oldest.and_then(|(_, m)| m.get("id")?.as_str().map(str::to_owned));
        // As Letta Code: a short page has nothing older; a full one (or one cut short by its
        // size) has if a message precedes its oldest, whatever `after` said.
        let has_more = match oldest {
            Some((position, _)) if listed.len() >= query.limit || cut => {
                let (older, _) = self.walk(None, Some(*position), true, query.types.as_deref(), 1)?;
                !older.is_empty()
            }
            _ => false,
        };
        Ok(Ok(MessagePage {
            messages: listed.into_iter().map(|(_, m)| m).collect(),
            next_before,
            has_more,
        }))
    }

    /// Where the listed message `id` is, if it is one of this conversation's.
    fn position(&self, id: &str) -> Result<Option<Position>, StoreError> {
        let Some(seq) = seq_of(self.t, &self.agent, &self.conversation, id)? else {
            return Ok(None);
        };
        let rows = self.rows(seq, seq, false, 1)?;
        let index = rows
            .first()
            .and_then(|(row, _)| self.project(row).iter().position(|m| m["id"] == id));
        Ok(index.map(|index| (seq, index)))
    }

    /// Up to `limit` listed messages strictly between `after` and `before`, newest first when
    /// `desc`, of the given types, and whether the page ended early at [`MAX_PAGE_BYTES`] of
    /// stored messages (at least one is listed).
    fn walk(
        &self,
        after: Option<Position>,
        before: Option<Position>,
        desc: bool,
        types: Option<&[String]>,
        limit: usize,
    ) -> Result<(Vec<(Position, JsonObject)>, bool), StoreError> {
        let (mut low, mut high) = (after.map_or(0, |p| p.0), before.map_or(i64::MAX, |p| p.0));
        let (mut listed, mut bytes) = (Vec::new(), 0);
        let batch = limit.clamp(16, 1024);
        while listed.len() < limit && low <= high {
            let rows = self.rows(low, high, desc, batch)?;
            let Some((last, _)) = rows.last() else { break };
            if desc {
                high = last.seq - 1;
            } else {
                low = last.seq + 1;
            }
            for (row, size) in &rows {
                if bytes > MAX_PAGE_BYTES {
                    return Ok((listed, true));
                }
                bytes += size;
                let mut parts: Vec<(usize, JsonObject)> = self.project(row).into_iter().enumerate().collect();
                if desc {
                    parts.reverse();
                }
                for (index, message) in parts {
                    let position = (row.seq, index);
                    let inside = after.is_none_or(|a| position > a) && before.is_none_or(|b| position < b);
                    let wanted = types.is_none_or(|types| {
                        types
                            .iter()
                            .any(|t| message.get("message_type").and_then(Value::as_str) == Some(t))
                    });
                    if inside && wanted {
                        listed.push((position, message));
                        if listed.len() == limit {
                            return Ok((listed, false));
                        }
                    }
                }
            }
            if rows.len() < batch {
                break;
            }
        }
        Ok((listed, false))
    }

    /// Stored messages with `low <= seq <= high`, at most `limit`, newest first when `desc`,
    /// each with its size as stored.
    fn rows(&self, low: i64, high: i64, desc: bool, limit: usize) -> Result<Vec<(StoredMessage, usize)>, StoreError> {
        let direction = if desc { "DESC" } else { "ASC" };
        let mut query = self.t.prepare_cached(&format!(
            "SELECT seq, message_id, run_id, created_at, body FROM messages
             WHERE agent_id = ?1 AND conversation_id = ?2 AND seq >= ?3 AND seq <= ?4
             ORDER BY seq {direction} LIMIT ?5"
        ))?;
        let rows = query.query_map(
            params![
                self.agent,
                self.conversation,
                low,
                high,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            },
        )?;
        let mut messages = Vec::new();
        for row in rows {
            let (seq, id, run_id, date, body) = row?;
            let stored = StoredMessage {
                seq,
                id,
                run_id,
                date,
                message: serde_json::from_str(&body)?,
                compaction: self.summaries.get(&seq).cloned(),
            };
            messages.push((stored, body.len()));
        }
        Ok(messages)
    }

    fn project(&self, row: &StoredMessage) -> Vec<JsonObject> {
        project(row, self.scope.agent_id.as_deref(), &self.scope.conversation_id)
    }
}
