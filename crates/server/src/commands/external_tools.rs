//! Controller-owned tools (docs/protocol.md §3.11): `runtime_external_tools_update` registers
//! them, `external_tool_call_response` answers a call.

use letta_app_server_protocol::{
    ExternalToolCallResponse, RuntimeExternalToolsUpdate, RuntimeExternalToolsUpdateResponse, RuntimeScope,
};

use super::Caller;

/// `runtime_external_tools_update`: registers without subscribing.
pub(super) fn update(caller: &dyn Caller, update: RuntimeExternalToolsUpdate) {
    let registered = update.updates.iter().try_for_each(|entry| {
        let scopes: Vec<RuntimeScope> = entry.runtimes.iter().map(RuntimeScope::without_acting_user).collect();
        caller
            .engine()
            .external
            .replace(caller.id(), &scopes, &entry.external_tools)
    });
    caller.send(RuntimeExternalToolsUpdateResponse {
        request_id: update.request_id,
        success: registered.is_ok(),
        error: registered.err(),
    });
}

/// `external_tool_call_response`: unknown or late answers are ignored, as on real Letta.
pub(super) fn answer(caller: &dyn Caller, response: ExternalToolCallResponse) {
    caller.engine().external.answer(response);
}
