//! After a reconnect: subscribe again to the runtimes this client used, resuming their event
//! streams where they left off when they can, and register its external tools again (a server
//! forgets both when a socket closes).

use std::time::Duration;

use crate::command::{self, to_object};
use crate::requests::Requests;
use crate::tracked::{InUse, Subscribed};
use crate::types::{self, ExternalToolsUpdate, RuntimeExternalToolsUpdate, RuntimeScope, RuntimeStart};

/// Re-runs `runtime_start` for every runtime this client started (with the external tools it
/// registered for it), `sync` for every runtime it only synced, and one
/// `runtime_external_tools_update` for the tools it registered for the other runtimes (synced,
/// or not subscribed at all). Each replays the runtime's state, including pending approvals
/// (which a stream delivers once per connection), or, for a runtime subscribed with
/// `resume_after`, sends the events after its cursor. Each command waits up to `timeout`.
/// Returns whether every command was answered.
pub(crate) async fn runtimes(
    requests: &impl Requests,
    runtimes: Vec<(RuntimeScope, InUse)>,
    timeout: Duration,
) -> bool {
    let mut commands = Vec::new();
    let mut updates = Vec::new();
    for (scope, in_use) in runtimes {
        match in_use.subscribed {
            Some(Subscribed::RuntimeStart) => {
                commands.push(to_object(&RuntimeStart {
                    type_: "runtime_start".into(),
                    external_tools: in_use.tools,
                    resume_after: in_use.cursor,
                    ..RuntimeStart::join(&scope)
                }));
                continue;
            }
            Some(Subscribed::Sync) => commands.push(to_object(&types::Sync {
                resume_after: in_use.cursor,
                ..types::Sync::new(&scope)
            })),
            None => {}
        }
        updates.extend(in_use.tools.map(|tools| ExternalToolsUpdate {
            runtimes: vec![scope],
            external_tools: tools,
        }));
    }
    if !updates.is_empty() {
        commands.push(to_object(&RuntimeExternalToolsUpdate {
            type_: "runtime_external_tools_update".into(),
            request_id: String::new(),
            updates,
        }));
    }
    let mut answered = true;
    for frame in commands.into_iter().flatten() {
        // A failure here surfaces to the caller through the events (a gap, and the runtime's
        // frames stop) and through their next command; there is no one to return it to.
        answered &= command::send(requests, frame, timeout).await.is_ok();
    }
    answered
}
