//! Shape checks the types cannot express, as real Letta applies them (docs/protocol.md §1.8,
//! §3.11, §4.10): non-empty ids, one-of fields, non-empty and unique runtime lists, channel ids,
//! known operations in a client's `file_ops`.

use std::collections::HashSet;

use crate::parse::PathError;
use crate::{AgentRuntimeScope, ClientFrame, ExternalToolGroup, FileOpKind, InputPayload, RuntimeScope};

type Checked = Result<(), PathError>;

fn fail(path: impl Into<String>, reason: impl Into<String>) -> Checked {
    let path: String = path.into();
    Err(PathError {
        path: (!path.is_empty()).then_some(path),
        reason: reason.into(),
    })
}

fn non_empty(path: &str, value: &str) -> Checked {
    if value.is_empty() {
        fail(path, "must not be empty")
    } else {
        Ok(())
    }
}

fn optional_id(path: &str, value: Option<&String>) -> Checked {
    value.map_or(Ok(()), |value| non_empty(path, value))
}

/// The longest terminal consumer id (and `turn_finished_ack.idempotency_key`), as Letta 0.34.
const MAX_CONSUMER_ID_CHARS: usize = 256;

/// A terminal consumer id: 1–256 characters of `A-Z a-z 0-9 . _ ~ : % -`, as Letta 0.34 checks it.
fn consumer_id(path: &str, value: &str) -> Checked {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._~:%-".contains(c);
    if value.is_empty() || value.len() > MAX_CONSUMER_ID_CHARS || !value.chars().all(allowed) {
        return fail(
            path,
            "must be 1 to 256 characters of A-Z, a-z, 0-9, `.`, `_`, `~`, `:`, `%`, `-`",
        );
    }
    Ok(())
}

/// The bounds of `browser_device_mcp_oauth.timeout_ms`, as Letta 0.34 checks them.
const BROWSER_OAUTH_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=285_000;

/// The bounds of an external tool's `timeout_ms`, as Letta 0.34 checks them.
const EXTERNAL_TOOL_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1_000..=300_000;

fn tool_groups(path: &str, groups: &[ExternalToolGroup]) -> Checked {
    for (index, group) in groups.iter().enumerate() {
        for (position, tool) in group.tools.iter().enumerate() {
            if tool
                .timeout_ms
                .is_some_and(|ms| !EXTERNAL_TOOL_TIMEOUT_MS.contains(&ms))
            {
                return fail(
                    format!("{path}[{index}].tools[{position}].timeout_ms"),
                    "must be from 1000 to 300000 (milliseconds)",
                );
            }
        }
    }
    Ok(())
}

/// A messaging channel's id: `^[a-z0-9][a-z0-9_-]*$`, as Letta checks it.
fn channel_id(path: &str, value: &str) -> Checked {
    let mut chars = value.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return fail(
            path,
            "must start with a-z or 0-9 and hold only a-z, 0-9, `_` and `-` (like `telegram`)",
        );
    }
    Ok(())
}

fn scope(path: &str, scope: &RuntimeScope) -> Checked {
    if let Some(agent_id) = &scope.agent_id {
        non_empty(&format!("{path}.agent_id"), agent_id)?;
    }
    non_empty(&format!("{path}.conversation_id"), &scope.conversation_id)
}

/// A scope whose agent is required (Letta's `AgentRuntimeScope`).
fn agent_scope(path: &str, scope: &AgentRuntimeScope) -> Checked {
    non_empty(&format!("{path}.agent_id"), &scope.agent_id)?;
    non_empty(&format!("{path}.conversation_id"), &scope.conversation_id)
}

fn exactly_one(path: &str, first: (&str, bool), second: (&str, bool)) -> Checked {
    match (first.1, second.1) {
        (true, false) | (false, true) => Ok(()),
        _ => fail(
            path,
            format!("exactly one of `{}` and `{}` is required", first.0, second.0),
        ),
    }
}

/// Checks a parsed client frame; the error names the offending field.
pub(crate) fn validate(frame: &ClientFrame) -> Checked {
    match frame {
        ClientFrame::AppServerInfo(info) => non_empty("request_id", &info.request_id),
        ClientFrame::RuntimeStart(start) => {
            non_empty("request_id", &start.request_id)?;
            tool_groups("external_tools", start.external_tools.as_deref().unwrap_or_default())
        }
        ClientFrame::Input(input) => {
            optional_id("request_id", input.request_id.as_ref())?;
            if let Some(consumer) = &input.terminal_consumer_id {
                consumer_id("terminal_consumer_id", consumer)?;
            }
            scope("runtime", &input.runtime)?;
            match &input.payload {
                InputPayload::ApprovalResponse(answer) => {
                    non_empty("payload.request_id", &answer.request_id)?;
                    exactly_one(
                        "payload",
                        ("decision", answer.decision.is_some()),
                        ("error", answer.error.is_some()),
                    )
                }
                InputPayload::CreateMessage(_) => Ok(()),
                InputPayload::TeleportContinue(teleport) => non_empty("payload.teleport_id", &teleport.teleport_id),
            }
        }
        ClientFrame::Sync(sync) => {
            optional_id("request_id", sync.request_id.as_ref())?;
            scope("runtime", &sync.runtime)
        }
        ClientFrame::AbortMessage(abort) => {
            optional_id("request_id", abort.request_id.as_ref())?;
            scope("runtime", &abort.runtime)
        }
        ClientFrame::ChangeDeviceState(change) => scope("runtime", &change.runtime),
        ClientFrame::RemoveQueueItem(remove) => {
            non_empty("request_id", &remove.request_id)?;
            scope("runtime", &remove.runtime)
        }
        ClientFrame::RuntimeExternalToolsUpdate(update) => {
            non_empty("request_id", &update.request_id)?;
            let mut seen = HashSet::new();
            for (index, entry) in update.updates.iter().enumerate() {
                if entry.runtimes.is_empty() {
                    return fail(format!("updates[{index}].runtimes"), "must not be empty");
                }
                for (position, runtime) in entry.runtimes.iter().enumerate() {
                    let path = format!("updates[{index}].runtimes[{position}]");
                    scope(&path, runtime)?;
                    if !seen.insert((&runtime.agent_id, &runtime.conversation_id)) {
                        return fail(path, "a runtime may appear only once across all updates");
                    }
                }
                tool_groups(&format!("updates[{index}].external_tools"), &entry.external_tools)?;
            }
            Ok(())
        }
        ClientFrame::ExternalToolCallResponse(response) => {
            non_empty("request_id", &response.request_id)?;
            exactly_one(
                "",
                ("result", response.result.is_some()),
                ("error", response.error.is_some()),
            )
        }
        ClientFrame::TurnFinishedAck(ack) => {
            non_empty("runtime.conversation_id", &ack.runtime.conversation_id)?;
            if ack.idempotency_key.is_empty() || ack.idempotency_key.chars().count() > MAX_CONSUMER_ID_CHARS {
                return fail("idempotency_key", "must have 1 to 256 characters");
            }
            consumer_id("consumer_id", &ack.consumer_id)
        }
        ClientFrame::ResumeQueue(resume) => {
            optional_id("request_id", resume.request_id.as_ref())?;
            scope("runtime", &resume.runtime)
        }
        ClientFrame::ExecuteCommand(command) => {
            non_empty("request_id", &command.request_id)?;
            non_empty("command_id", &command.command_id)?;
            agent_scope("runtime", &command.runtime)
        }
        ClientFrame::MonitorStop(stop) => {
            non_empty("request_id", &stop.request_id)?;
            agent_scope("runtime", &stop.runtime)?;
            non_empty("process_id", &stop.process_id)
        }
        ClientFrame::LaunchSubagent(launch) => {
            non_empty("request_id", &launch.request_id)?;
            agent_scope("runtime", &launch.runtime)?;
            let args = &launch.args;
            // As Letta checks them: the prompt and description say something, the optional
            // strings are not empty, `max_turns` is positive.
            non_empty("args.prompt", args.prompt.trim())?;
            non_empty("args.description", args.description.trim())?;
            for (path, value) in [
                ("args.subagent_type", &args.subagent_type),
                ("args.client_message_id", &args.client_message_id),
                ("args.model", &args.model),
                ("args.agent_id", &args.agent_id),
                ("args.conversation_id", &args.conversation_id),
            ] {
                optional_id(path, value.as_ref())?;
            }
            optional_id("tool_call_id", launch.tool_call_id.as_ref())?;
            if args.max_turns == Some(0) {
                return fail("args.max_turns", "must be a positive integer");
            }
            Ok(())
        }
        ClientFrame::BrowserDeviceMcpOAuth(oauth) => {
            non_empty("request_id", &oauth.request_id)?;
            non_empty("handoff_key", &oauth.handoff_key)?;
            non_empty("service", &oauth.service)?;
            non_empty("server_url", &oauth.server_url)?;
            if !BROWSER_OAUTH_TIMEOUT_MS.contains(&oauth.timeout_ms) {
                return fail("timeout_ms", "must be from 1 to 285000 (milliseconds)");
            }
            Ok(())
        }
        ClientFrame::BrowserDeviceMcpOAuthCancel(cancel) => non_empty("operation_id", &cancel.operation_id),
        ClientFrame::GetReflectionSettings(get) => {
            non_empty("request_id", &get.request_id)?;
            agent_scope("runtime", &get.runtime)
        }
        ClientFrame::SetReflectionSettings(set) => {
            non_empty("request_id", &set.request_id)?;
            agent_scope("runtime", &set.runtime)
        }
        ClientFrame::TeleportProbe(probe) => {
            non_empty("request_id", &probe.request_id)?;
            agent_scope("runtime", &probe.runtime)
        }
        ClientFrame::TeleportRequest(request) => {
            non_empty("request_id", &request.request_id)?;
            non_empty("teleport_id", &request.teleport_id)?;
            agent_scope("runtime", &request.runtime)
        }
        ClientFrame::TeleportFailed(failed) => {
            non_empty("teleport_id", &failed.teleport_id)?;
            agent_scope("runtime", &failed.runtime)
        }
        ClientFrame::FileOps(file_ops) => {
            for (index, op) in file_ops.ops.iter().enumerate() {
                if let FileOpKind::Other(_) = op.kind {
                    return fail(format!("ops[{index}].type"), "must be `ins` or `del`");
                }
            }
            Ok(())
        }
        ClientFrame::LegacyMessage(message) => non_empty("agentId", &message.agent_id),
        ClientFrame::Pong(_) => Ok(()),
        // Commands with nothing to check beyond their `request_id` (shapes the types enforce),
        // and for a messaging-channels command its `channel_id` and `runtime`.
        other => {
            other.request_id().map_or(Ok(()), |id| non_empty("request_id", id))?;
            let Some((channel, runtime)) = other.channel_addressing() else {
                return Ok(());
            };
            channel.map_or(Ok(()), |id| channel_id("channel_id", id))?;
            runtime.map_or(Ok(()), |runtime| agent_scope("runtime", runtime))
        }
    }
}
