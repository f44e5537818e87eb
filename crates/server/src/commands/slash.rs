//! `execute_command` (docs/protocol.md §4.11): runs a slash command in the conversation of
//! its `runtime`, to which the requester is subscribed, and answers with its outcome.

use std::sync::Arc;

use letta_app_server_protocol::{ExecuteCommand, ExecuteCommandResponse, FrameType, RuntimeScope};

use super::{Caller, scoped};
use crate::engine::conversation::Conversation;

/// Runs the command; its deltas go to the conversation's subscribers, the response to the
/// requester.
pub(super) async fn execute_command(caller: &Arc<dyn Caller>, command: ExecuteCommand) -> Option<Arc<Conversation>> {
    let scope = RuntimeScope::from(command.runtime.clone());
    let request_id = Some(&command.request_id);
    let conversation = scoped(caller, &scope, (ExecuteCommand::TYPE, request_id)).await?;
    let (success, output) = conversation
        .slash_command(caller.engine(), &command.command_id, command.args.as_deref())
        .await;
    caller.send(ExecuteCommandResponse {
        request_id: command.request_id,
        success,
        output,
    });
    Some(conversation)
}
