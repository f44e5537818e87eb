//! A subagent's life as its parent sees it: started, its messages forwarded, finished (the end
//! reported, the notification queued), stopped, and dropped from the list later.

use std::sync::{Arc, Weak};

use letta_app_server_protocol::{
    AssistantMessage, Delta, DeltaMarker, DeltaMeta, ErrorMessage, ReasoningMessage, RuntimeEvent, StreamDelta,
    SubagentStatus, SubagentToolCall, ToolCallMessage, ToolReturnMessage,
};

use super::run::write_output;
use super::{KEPT_FOR, KEPT_PER_CONVERSATION, Run, Subagents, texts};
use crate::sync::lock;

/// The id prefix of a running tool's output snapshots, which are not forwarded.
const SNAPSHOT_ID_PREFIX: &str = "synthetic-tool-return-stream-";

impl Subagents {
    /// Its turn started: `running`.
    pub(crate) fn started(&self, run: &Run) {
        let changed = {
            let mut progress = lock(&run.progress);
            let pending = progress.status == SubagentStatus::Pending;
            if pending {
                progress.status = SubagentStatus::Running;
            }
            pending
        };
        if changed {
            self.publish(&run.parent);
        }
    }

    /// What the parent's subscribers get of an event of the subagent's turn: its messages, as
    /// `stream_delta`s with `subagent_id` (a tool call as a `tool_call_message`, since nobody is
    /// asked to approve it; results in their final form only), which also go to the output
    /// file. Its tool calls and token use update its snapshot.
    pub(crate) fn forward(&self, run: &Run, event: &RuntimeEvent) {
        let RuntimeEvent::StreamDelta(StreamDelta {
            delta,
            subagent_id: None,
        }) = event
        else {
            return;
        };
        let stamp = |meta: &DeltaMeta| DeltaMeta {
            kind: Some(DeltaMarker::Message),
            agent_id: run.child.agent_id.clone(),
            conversation_id: Some(run.child.conversation_id.clone()),
            ..meta.clone()
        };
        let mut changed = false;
        let delta = match delta {
            Delta::AssistantMessage(m) => Delta::AssistantMessage(AssistantMessage {
                meta: stamp(&m.meta),
                ..m.clone()
            }),
            Delta::ReasoningMessage(m) => Delta::ReasoningMessage(ReasoningMessage {
                meta: stamp(&m.meta),
                ..m.clone()
            }),
            Delta::ErrorMessage(m) => Delta::ErrorMessage(ErrorMessage {
                meta: stamp(&m.meta),
                ..m.clone()
            }),
            Delta::ApprovalRequestMessage(request) => {
                let call = &request.tool_call;
                let mut progress = lock(&run.progress);
                if let Some(id) = &call.tool_call_id
                    && !progress.tool_calls.iter().any(|c| &c.id == id)
                {
                    progress.tool_calls.push(SubagentToolCall {
                        id: id.clone(),
                        name: call.name.clone().unwrap_or_default(),
                        args: call.arguments.clone().unwrap_or_default(),
                    });
                    changed = true;
                }
                Delta::ToolCallMessage(ToolCallMessage {
                    meta: stamp(&request.meta),
                    tool_call: request.tool_call.clone(),
                    tool_calls: request.tool_calls.clone(),
                })
            }
            Delta::ToolReturnMessage(result)
                if !(result.meta.id.as_deref()).is_some_and(|id| id.starts_with(SNAPSHOT_ID_PREFIX)) =>
            {
                Delta::ToolReturnMessage(ToolReturnMessage {
                    meta: stamp(&result.meta),
                    ..result.clone()
                })
            }
            Delta::UsageStatistics(usage) => {
                lock(&run.progress).total_tokens += usage.total_tokens.unwrap_or(0);
                return self.publish(&run.parent);
            }
            _ => return,
        };
        if let Ok(line) = serde_json::to_value(&delta) {
            write_output(&mut lock(&run.progress), &line, false);
        }
        let forwarded = StreamDelta {
            delta,
            subagent_id: Some(run.subagent_id.clone()),
        };
        self.audience.broadcast(&run.parent, &forwarded.into());
        if changed {
            self.publish(&run.parent);
        }
    }

    /// Ends `run` with `report` unless it has ended already (see [`Run::settle`]), then reports
    /// its end (see [`Subagents::announce`]).
    pub(crate) async fn finish(&self, run: &Arc<Run>, report: Result<String, String>) {
        if run.settle(report) {
            self.announce(run).await;
        }
    }

    /// Reports a settled run's end: waiters wake, the parent's list and background processes
    /// are sent again, and a background run not stopped by `TaskStop` (nor launched with
    /// `notify: "caller"`) queues its `task_notification` on the parent conversation.
    pub(crate) async fn announce(&self, run: &Arc<Run>) {
        let Some(finished) = run.finished() else { return };
        // What its turn left running in the background goes with it.
        if let Ok(engine) = self.engine() {
            engine.shells.stop_all(|scope| *scope == run.child);
        }
        run.done.send_replace(true);
        self.publish(&run.parent);
        if run.background {
            self.processes_changed(&run.parent).await;
        }
        let stopped = lock(&run.progress).stopped && finished.report.is_err();
        if run.background
            && !run.notify_caller
            && !stopped
            && let Ok(engine) = self.engine()
            && let Ok(parent) = engine.conversation(&run.parent).await
        {
            parent.notify(&engine, texts::notification(run, &finished)).await;
        }
        lock(&run.progress).announced = true;
        self.forget_later(run);
    }

    /// Stops `run` (`TaskStop`, or the foreground call waiting on it cancelled): its turn is
    /// aborted, or, if none runs, it ends here; `false` if it had ended already.
    pub(crate) async fn stop(&self, run: &Arc<Run>) -> bool {
        {
            let mut progress = lock(&run.progress);
            if progress.finished.is_some() {
                return false;
            }
            progress.stopped = true;
        }
        let aborted = match self.engine() {
            Ok(engine) => match engine.loaded_conversation(&run.child) {
                Some(child) => child.withdraw(&engine, &run.input_id).await,
                None => false,
            },
            Err(_) => false,
        };
        // An aborted turn ends the run when it has unwound (the turn's end settles it).
        if !aborted {
            self.finish(run, Err("Aborted by user".into())).await;
        }
        true
    }

    /// Drops `run` from its parent's list after [`KEPT_FOR`], or earlier when its parent has more
    /// than [`KEPT_PER_CONVERSATION`] finished ones.
    fn forget_later(&self, run: &Arc<Run>) {
        {
            let mut registry = lock(&self.registry);
            let finished: Vec<Arc<Run>> = (registry.runs.iter())
                .filter(|r| r.parent == run.parent && r.is_finished())
                .cloned()
                .collect();
            let excess = finished.len().saturating_sub(KEPT_PER_CONVERSATION);
            if excess > 0 {
                let evicted = &finished[..excess];
                registry.runs.retain(|r| !evicted.iter().any(|e| Arc::ptr_eq(e, r)));
                self.broadcast_state(&registry.runs, &run.parent);
            }
        }
        let (engine, run) = (self.engine.get().cloned().unwrap_or_default(), Arc::downgrade(run));
        tokio::spawn(async move {
            tokio::time::sleep(KEPT_FOR).await;
            if let (Some(engine), Some(run)) = (engine.upgrade(), Weak::upgrade(&run)) {
                engine.subagents.remove(&run);
            }
        });
    }
}
