//! Shape checks the types cannot express, as real Letta applies them (docs/protocol.md §1.8, §3.11):
//! non-empty ids, one-of fields, non-empty and unique runtime lists.

use std::collections::HashSet;

use crate::parse::PathError;
use crate::{
    AgentCreate, AgentDelete, AgentList, AgentRetrieve, AgentUpdate, ClientFrame, ConversationCompact,
    ConversationCreate, ConversationFork, ConversationList, ConversationMessagesList, ConversationRecompile,
    ConversationRetrieve, ConversationUpdate, CreateAgentCommand, InputPayload, RuntimeScope,
};

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

fn scope(path: &str, scope: &RuntimeScope) -> Checked {
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
        ClientFrame::RuntimeStart(start) => non_empty("request_id", &start.request_id),
        ClientFrame::Input(input) => {
            optional_id("request_id", input.request_id.as_ref())?;
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
        ClientFrame::ResumeQueue(resume) => {
            optional_id("request_id", resume.request_id.as_ref())?;
            scope("runtime", &resume.runtime)
        }
        ClientFrame::AgentList(AgentList { request_id, .. })
        | ClientFrame::AgentRetrieve(AgentRetrieve { request_id, .. })
        | ClientFrame::AgentCreate(AgentCreate { request_id, .. })
        | ClientFrame::AgentUpdate(AgentUpdate { request_id, .. })
        | ClientFrame::AgentDelete(AgentDelete { request_id, .. })
        | ClientFrame::CreateAgent(CreateAgentCommand { request_id, .. })
        | ClientFrame::ConversationList(ConversationList { request_id, .. })
        | ClientFrame::ConversationRetrieve(ConversationRetrieve { request_id, .. })
        | ClientFrame::ConversationCreate(ConversationCreate { request_id, .. })
        | ClientFrame::ConversationUpdate(ConversationUpdate { request_id, .. })
        | ClientFrame::ConversationRecompile(ConversationRecompile { request_id, .. })
        | ClientFrame::ConversationFork(ConversationFork { request_id, .. })
        | ClientFrame::ConversationMessagesList(ConversationMessagesList { request_id, .. })
        | ClientFrame::ConversationCompact(ConversationCompact { request_id, .. }) => {
            non_empty("request_id", request_id)
        }
        ClientFrame::LegacyMessage(message) => non_empty("agentId", &message.agent_id),
        ClientFrame::Pong(_) => Ok(()),
    }
}
