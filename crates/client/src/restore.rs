//! After a reconnect: subscribe again to the runtimes this client used and register its
//! external tools again (a server forgets both when a socket closes).

use std::sync::Arc;

use crate::shared::{Shared, Subscribed};
use crate::types::{self, ExternalToolsUpdate, RuntimeExternalToolsUpdate, RuntimeStart};

/// Re-runs `runtime_start` for every runtime this client started (with the external tools it
/// registered for it), `sync` for every runtime it only synced, and one
/// `runtime_external_tools_update` for tools it registered without subscribing. Each replays the
/// runtime's state, including pending approvals (which streams do not see twice).
pub(crate) async fn runtimes(shared: Arc<Shared>) {
    let timeout = shared.options.request_timeout;
    let mut updates = Vec::new();
    for (scope, in_use) in shared.runtimes() {
        let (request_id, text, answer) = match in_use.subscribed {
            Some(Subscribed::RuntimeStart) => {
                let request_id = shared.next_request_id("runtime-start");
                let command = RuntimeStart {
                    type_: "runtime_start".into(),
                    request_id: request_id.clone(),
                    agent_id: Some(scope.agent_id.clone()),
                    conversation_id: Some(scope.conversation_id.clone()),
                    external_tools: in_use.tools,
                    ..RuntimeStart::default()
                };
                (request_id, serde_json::to_string(&command), &["runtime_start_response"])
            }
            Some(Subscribed::Sync) => {
                if let Some(tools) = in_use.tools {
                    updates.push(ExternalToolsUpdate {
                        runtimes: vec![scope.clone()],
                        external_tools: tools,
                    });
                }
                let request_id = shared.next_request_id("sync");
                let command = types::Sync {
                    type_: "sync".into(),
                    request_id: Some(request_id.clone()),
                    runtime: scope,
                    force_device_status: None,
                    recover_approvals: None,
                };
                (request_id, serde_json::to_string(&command), &["sync_response"])
            }
            None => {
                if let Some(tools) = in_use.tools {
                    updates.push(ExternalToolsUpdate {
                        runtimes: vec![scope],
                        external_tools: tools,
                    });
                }
                continue;
            }
        };
        if let Ok(text) = text {
            // A failure here surfaces to the caller through the events (the runtime's frames
            // stop) and through their next command; there is no one to return it to.
            let _ = shared.request(text, &request_id, answer, timeout).await;
        }
    }
    if !updates.is_empty() {
        let request_id = shared.next_request_id("runtime-external-tools");
        let command = RuntimeExternalToolsUpdate {
            type_: "runtime_external_tools_update".into(),
            request_id: request_id.clone(),
            updates,
        };
        if let Ok(text) = serde_json::to_string(&command) {
            let _ = shared
                .request(text, &request_id, &["runtime_external_tools_update_response"], timeout)
                .await;
        }
    }
}
