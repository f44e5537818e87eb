//! Reading Letta's query and body objects (`AgentListParams`, `ConversationListParams`,
//! `MessageListParams`, …): each field's type and size is checked, and a wrong one gets a clear
//! error naming it (`Invalid query.limit: expected an integer from 1 to 1000`). An absent field
//! and a `null` one mean the same. Fields this server does not know are ignored, as Letta's API
//! ignores them.

use letta_app_server_protocol::JsonObject;
use serde_json::Value;

use crate::limits::{MAX_ID_BYTES, MAX_LIST_ENTRIES, MAX_NAME_BYTES, MAX_PAGE_ITEMS};

/// A Letta parameter object being read.
pub struct Params<'a> {
    object: Option<&'a JsonObject>,
    /// What it is, for errors (`query`, `body`).
    name: &'static str,
}

impl<'a> Params<'a> {
    /// Reads `object` (absent reads as empty), called `name` in errors.
    pub fn new(object: Option<&'a JsonObject>, name: &'static str) -> Self {
        Self { object, name }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object?.get(key).filter(|value| !value.is_null())
    }

    fn wrong(&self, key: &str, what: &str) -> String {
        format!("Invalid {}.{key}: expected {what}", self.name)
    }

    /// A string field of at most `limit` bytes.
    pub fn text(&self, key: &str, limit: usize) -> Result<Option<&'a str>, String> {
        self.get(key)
            .map(|value| {
                (value.as_str())
                    .filter(|text| text.len() <= limit)
                    .ok_or_else(|| self.wrong(key, &format!("a string of at most {limit} bytes")))
            })
            .transpose()
    }

    /// An id (a cursor, an agent): a string of at most [`MAX_ID_BYTES`].
    pub fn id(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.text(key, MAX_ID_BYTES)
    }

    /// A boolean field.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key)
            .map(|value| value.as_bool().ok_or_else(|| self.wrong(key, "true or false")))
            .transpose()
    }

    /// One of `allowed` (a string field).
    pub fn choice(&self, key: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, String> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|choice| value.as_str() == Some(**choice))
            .copied()
            .map(Some)
            .ok_or_else(|| self.wrong(key, &format!("one of {}", allowed.join(", "))))
    }

    /// `limit`: an integer from 1 to [`MAX_PAGE_ITEMS`], `default` when absent.
    pub fn limit(&self, default: usize) -> Result<usize, String> {
        let Some(value) = self.get("limit") else {
            return Ok(default);
        };
        (value.as_u64())
            .and_then(|limit| usize::try_from(limit).ok())
            .filter(|limit| (1..=MAX_PAGE_ITEMS).contains(limit))
            .ok_or_else(|| self.wrong("limit", &format!("an integer from 1 to {MAX_PAGE_ITEMS}")))
    }

    /// A list of at most [`MAX_LIST_ENTRIES`] names (strings of at most [`MAX_NAME_BYTES`]).
    pub fn names(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let names = (value.as_array())
            .filter(|items| items.len() <= MAX_LIST_ENTRIES)
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .filter(|name| name.len() <= MAX_NAME_BYTES)
                            .map(str::to_owned)
                    })
                    .collect::<Option<Vec<_>>>()
            });
        names.map(Some).ok_or_else(|| {
            let what = format!("a list of at most {MAX_LIST_ENTRIES} strings of at most {MAX_NAME_BYTES} bytes");
            self.wrong(key, &what)
        })
    }
}
