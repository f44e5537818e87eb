//! Reading `agent_list`'s `query` (Letta `AgentListParams`): the filters and the page this
//! server applies, each type-checked and bounded. Every other parameter (`project_id`,
//! `include`, `sort_by`, …) is accepted and has no effect, as in Letta Code's local backend.

use letta_app_server_protocol::JsonObject;
use serde_json::Value;

use crate::engine::agents::not_found;
use crate::limits::{MAX_ID_BYTES, MAX_LIST_ENTRIES, MAX_NAME_BYTES, MAX_PAGE_BYTES, MAX_PAGE_ITEMS};
use crate::store::AgentQuery;

/// Agents in a page whose query names no `limit` (Letta Code's local default).
const DEFAULT_LIMIT: usize = 20;

/// The store query for `query`, or what is wrong with it.
pub(super) fn read_query(query: Option<&JsonObject>) -> Result<AgentQuery, String> {
    let empty = JsonObject::new();
    let query = query.unwrap_or(&empty);
    // An absent parameter and a `null` one mean the same.
    let get = |key: &str| query.get(key).filter(|value| !value.is_null());
    let text = |key: &str, limit: usize| -> Result<Option<String>, String> {
        match get(key) {
            None => Ok(None),
            Some(Value::String(text)) if text.len() <= limit => Ok(Some(text.clone())),
            Some(_) => Err(invalid(key, &format!("a string of at most {limit} bytes, or null"))),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(invalid(key, "true, false or null")),
        }
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(limit) => limit
            .as_u64()
            .and_then(|limit| usize::try_from(limit).ok())
            .filter(|limit| (1..=MAX_PAGE_ITEMS).contains(limit))
            .ok_or_else(|| invalid("limit", &format!("an integer from 1 to {MAX_PAGE_ITEMS}")))?,
    };
    let ascending = match (text("order", MAX_NAME_BYTES)?.as_deref(), flag("ascending")?) {
        (Some("asc"), _) => true,
        (Some("desc"), _) => false,
        (Some(_), _) => return Err(invalid("order", "\"asc\", \"desc\" or null")),
        (None, ascending) => ascending.unwrap_or(false),
    };
    let tags = match get("tags") {
        None => Vec::new(),
        Some(Value::Array(tags)) if tags.len() <= MAX_LIST_ENTRIES => {
            let mut distinct: Vec<String> = Vec::new();
            for tag in tags {
                match tag.as_str() {
                    Some(tag) if tag.len() <= MAX_NAME_BYTES => {
                        if !distinct.iter().any(|known| known == tag) {
                            distinct.push(tag.to_owned());
                        }
                    }
                    _ => return Err(invalid("tags", &tags_expected())),
                }
            }
            distinct
        }
        Some(_) => return Err(invalid("tags", &tags_expected())),
    };
    Ok(AgentQuery {
        name: text("name", MAX_NAME_BYTES)?,
        tags,
        match_all_tags: flag("match_all_tags")?.unwrap_or(true),
        query_text: text("query_text", MAX_NAME_BYTES)?.filter(|text| !text.is_empty()),
        after: text("after", MAX_ID_BYTES)?,
        before: text("before", MAX_ID_BYTES)?,
        ascending,
        limit,
        max_bytes: MAX_PAGE_BYTES,
    })
}

/// The answer for a cursor that names no agent.
pub(super) fn unknown_cursor(id: &str) -> String {
    format!("Invalid agent_list query: the cursor is unknown: {}", not_found(id))
}

fn invalid(key: &str, expected: &str) -> String {
    format!("Invalid agent_list query: `{key}` must be {expected}")
}

fn tags_expected() -> String {
    format!("an array of at most {MAX_LIST_ENTRIES} strings of at most {MAX_NAME_BYTES} bytes each, or null")
}
