//! Reading `agent_list`'s `query` (Letta `AgentListParams`): the filters and the page this
//! server applies, each type-checked and bounded. Every other parameter (`project_id`,
//! `include`, `sort_by`, …) is accepted and has no effect, as in Letta Code's local backend.

use letta_app_server_protocol::JsonObject;

use crate::commands::params::Params;
use crate::engine::agents::not_found;
use crate::limits::{MAX_NAME_BYTES, MAX_PAGE_BYTES};
use crate::store::AgentQuery;

/// Agents in a page whose query names no `limit` (Letta Code's local default).
const DEFAULT_LIMIT: usize = 20;

/// The store query for `query`, or what is wrong with it.
pub(super) fn read_query(query: Option<&JsonObject>) -> Result<AgentQuery, String> {
    let params = Params::new(query, "query");
    // `ascending` is the deprecated spelling of `order`.
    let ascending = match params.choice("order", &["asc", "desc"])? {
        Some(order) => order == "asc",
        None => params.boolean("ascending")?.unwrap_or(false),
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in params.names("tags")?.unwrap_or_default() {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(AgentQuery {
        name: params.text("name", MAX_NAME_BYTES)?.map(str::to_owned),
        tags,
        match_all_tags: params.boolean("match_all_tags")?.unwrap_or(true),
        query_text: (params.text("query_text", MAX_NAME_BYTES)?)
            .filter(|text| !text.is_empty())
            .map(str::to_owned),
        after: params.id("after")?.map(str::to_owned),
        before: params.id("before")?.map(str::to_owned),
        ascending,
        limit: params.limit(DEFAULT_LIMIT)?,
        max_bytes: MAX_PAGE_BYTES,
    })
}

/// The answer for a cursor that names no agent.
pub(super) fn unknown_cursor(id: &str) -> String {
    not_found(id)
}
