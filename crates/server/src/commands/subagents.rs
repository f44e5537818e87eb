//! `launch_subagent` (docs/protocol.md §4.16): a controller launches a subagent of a
//! conversation, outside any turn of it; `monitor_stop`: a controller stops a monitor.

use std::sync::Arc;

use letta_app_server_protocol::{
    LaunchSubagent, LaunchSubagentResponse, MonitorStop, MonitorStopResponse, RuntimeScope, SubagentLaunchNotify,
};

use super::Caller;
use crate::engine::subagents::Launch;

/// Launches the subagent (always in the background) and answers the requester once its
/// conversation is known: `task_id`, `output_file`, `agent_id`, `conversation_id`, or
/// `success: false` with why. The requester is subscribed to the parent conversation, whose
/// subscribers get the subagent's deltas and snapshots; the parent's turn, if any, is not
/// touched.
pub(super) async fn launch(caller: &Arc<dyn Caller>, command: LaunchSubagent) {
    let scope = RuntimeScope::from(command.runtime.clone()).without_acting_user();
    let answer = |result: Result<LaunchSubagentResponse, String>| match result {
        Ok(answer) => answer,
        Err(error) => LaunchSubagentResponse {
            request_id: command.request_id.clone(),
            runtime: Some(command.runtime.clone()),
            success: false,
            error: Some(error),
            ..LaunchSubagentResponse::default()
        },
    };
    if let Err(error) = caller.subscribe(&scope, false).await {
        return caller.send(answer(Err(error.to_string())));
    }
    let args = command.args.clone();
    let launch = Launch {
        parent: scope,
        subagent_type: args.subagent_type,
        prompt: args.prompt,
        description: args.description,
        model: args.model,
        agent_id: args.agent_id,
        conversation_id: args.conversation_id,
        background: true,
        tool_call_id: command.tool_call_id.clone(),
        notify_caller: command.notify == Some(SubagentLaunchNotify::Caller),
        input_id: args.client_message_id,
        max_turns: args.max_turns,
    };
    let launched = caller
        .engine()
        .launch_subagent(launch)
        .await
        .map(|run| LaunchSubagentResponse {
            request_id: command.request_id.clone(),
            runtime: Some(command.runtime.clone()),
            success: true,
            task_id: Some(run.task_id.clone()),
            output_file: Some(run.output_file.display().to_string()),
            agent_id: Some(run.child.agent_id.clone()),
            conversation_id: Some(Some(run.child.conversation_id.clone())),
            error: None,
            error_code: None,
        });
    caller.send(answer(launched));
}

/// What a conversation's model is told when a controller stopped its monitor (real Letta's words).
const MONITOR_CANCELLED: &str = "The user cancelled this Monitor. Do not restart it unless the user asks.";

/// Stops a monitor of the command's conversation, with real Letta's answers: `Runtime is no
/// longer active`, `Monitor not found`, `Monitor does not belong to this conversation`, or
/// `success: true` with whether it was running (`stopped`). The model hears of it as an event.
pub(super) async fn monitor_stop(caller: &Arc<dyn Caller>, command: MonitorStop) {
    let scope = RuntimeScope::from(command.runtime.clone()).without_acting_user();
    let engine = caller.engine();
    let answer = |stopped: Result<bool, &str>| MonitorStopResponse {
        request_id: command.request_id.clone(),
        runtime: command.runtime.clone(),
        process_id: command.process_id.clone(),
        success: stopped.is_ok(),
        stopped: stopped == Ok(true),
        error: stopped.err().map(str::to_owned),
    };
    let Ok(conversation) = engine.conversation(&scope).await else {
        return caller.send(answer(Err("Runtime is no longer active")));
    };
    let Some(monitor) = engine.shells.monitor(&command.process_id) else {
        return caller.send(answer(Err("Monitor not found")));
    };
    if monitor.scope != scope {
        return caller.send(answer(Err("Monitor does not belong to this conversation")));
    }
    let stopped = engine.shells.stop(&monitor);
    caller.send(answer(Ok(stopped)));
    if stopped {
        let notice = engine.shells.event_of(&monitor, MONITOR_CANCELLED);
        conversation.notify(engine, notice).await;
    }
}
