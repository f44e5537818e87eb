//! The models an OpenAI-compatible server offers: `GET {base}/models`, in OpenAI's list format
//! (`{"data": [{"id": …}, …]}`).

use std::time::Duration;

use http_body_util::{BodyExt, Limited};

use super::OpenAiCompatible;
use super::failure::{error_body_message, error_chain, truncate};
use crate::limits::MAX_ID_BYTES;

/// Largest model list read, in bytes.
const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;
/// Models taken from one list at most (the first ones).
pub const MAX_MODELS: usize = 1000;

impl OpenAiCompatible {
    /// The ids of the models the server lists, in its order, without repeats; ids longer than
    /// [`MAX_ID_BYTES`] are left out, and the list stops at [`MAX_MODELS`]. Fails when the server
    /// cannot be reached, answers with an error or something else than a model list, or has not
    /// answered completely within `timeout`.
    pub async fn list_models(&self, timeout: Duration) -> Result<Vec<String>, String> {
        let target = self.target.as_ref().map_err(Clone::clone)?;
        let request = target.models_request()?;
        let fetch = async {
            let response = (self.client.request(request).await)
                .map_err(|error| format!("request failed: {}", error_chain(&error)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_LIST_BYTES)
                .collect()
                .await
                .map_err(|error| format!("cannot read the model list: {error}"))?
                .to_bytes();
            if !status.is_success() {
                let detail = error_body_message(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(format!("{}: {}", status.as_u16(), truncate(detail.trim(), 256)));
            }
            model_ids(&body)
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .map_err(|_| format!("no model list within {}", humantime::format_duration(timeout)))?
    }
}

/// The ids of an OpenAI model list.
fn model_ids(body: &[u8]) -> Result<Vec<String>, String> {
    let list: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| format!("the model list is not JSON: {error}"))?;
    let data = list["data"]
        .as_array()
        .ok_or("the answer is not a model list (no `data` array)")?;
    let mut ids: Vec<String> = Vec::new();
    for id in data.iter().filter_map(|model| model["id"].as_str()) {
        if ids.len() == MAX_MODELS {
            break;
        }
        if !id.is_empty() && id.len() <= MAX_ID_BYTES && !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::model_ids;

    #[test]
    fn a_model_list_gives_its_ids_once_each() {
        let body = br#"{"object":"list","data":[{"id":"a"},{"id":"b"},{"id":"a"},{"id":""},{"name":"x"}]}"#;
        assert_eq!(model_ids(body).unwrap(), ["a", "b"]);
        let long = format!(r#"{{"data":[{{"id":"{}"}},{{"id":"ok"}}]}}"#, "x".repeat(300));
        assert_eq!(model_ids(long.as_bytes()).unwrap(), ["ok"]);
        assert!(model_ids(b"[]").unwrap_err().contains("no `data` array"));
        assert!(model_ids(b"<html>").unwrap_err().contains("not JSON"));
    }
}
