//! Reading Letta's query and body objects (`ConversationListParams`, `MessageListParams`, …):
//! each field's type is checked and a wrong one gets a clear error naming it. Fields this server
//! does not know are ignored, as Letta's API ignores them.

use letta_app_server_protocol::JsonObject;
use serde_json::Value;

/// The largest page a list command returns.
pub const MAX_PAGE: u64 = 1000;

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

    /// A string field (`null` reads as absent).
    pub fn string(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.get(key)
            .map(|value| value.as_str().ok_or_else(|| self.wrong(key, "a string")))
            .transpose()
    }

    /// A boolean field.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key)
            .map(|value| value.as_bool().ok_or_else(|| self.wrong(key, "true or false")))
            .transpose()
    }

    /// One of `allowed` (a string field).
    pub fn choice(&self, key: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, String> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|choice| **choice == value)
            .copied()
            .map(Some)
            .ok_or_else(|| self.wrong(key, &format!("one of {}", allowed.join(", "))))
    }

    /// `limit`: an integer from 1 to [`MAX_PAGE`], `default` when absent.
    pub fn limit(&self, default: u64) -> Result<usize, String> {
        let Some(value) = self.get("limit") else {
            return Ok(default as usize);
        };
        match value.as_u64() {
            Some(limit @ 1..=MAX_PAGE) => Ok(limit as usize),
            _ => Err(self.wrong("limit", &format!("an integer from 1 to {MAX_PAGE}"))),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let strings = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
        strings.map(Some).ok_or_else(|| self.wrong(key, "a list of strings"))
    }
}
