//! `app_server_info` (docs/protocol.md §3.1): what this server is and can do.

use letta_app_server_protocol::{AppServerInfoResponse, Backend, Capabilities, PROTOCOL_VERSION};

/// The `app_server_info_response` body (also served at `GET /app-server-info`).
pub fn app_server_info(request_id: String) -> AppServerInfoResponse {
    AppServerInfoResponse {
        request_id,
        success: true,
        backend: Backend::Local,
        letta_code_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        capabilities: Capabilities {
            // The agents, conversations and memory groups are implemented (docs/protocol.md
            // §4.6, §4.7, §4.2).
            agent_management: true,
            conversation_management: true,
            memory_management: true,
            runtime_start: true,
            runtime_workspace_sandbox: Some(false),
            runtime_external_tools_update: Some(true),
            split_channels: true,
            // Subagents (docs/protocol.md §4.16), with `notify: "caller"`.
            launch_subagent: Some(true),
            structured_outputs: None,
            // Letta 0.34's two new flags: agent-free conversations (`runtime_start` without an
            // agent) and `launch_subagent`'s `notify: "caller"` are implemented.
            agent_free_conversations: Some(true),
            launch_subagent_notify_caller: Some(true),
            // This server's resumable event stream (docs/protocol.md §2.2).
            event_resume: Some(true),
        },
    }
}
