//! The tool calls of a run: classified, asked about one at a time, then run in order
//! (docs/protocol.md §3.5, §3.9, §5 (c), (d)).

use std::path::Path;

use letta_app_server_protocol::{
    ApprovalClassificationEnd, CanUseToolRequest, ClientToolEnd, ClientToolStart, ControlSubtype, Delta, DiffPreview,
    FileOps, JsonObject,
};
use tokio_util::sync::CancellationToken;

use super::output::{RunOutput, status_of};
use super::{ApprovalAnswer, Asked, TurnHost, interrupted_results};
use crate::engine::context::LoadedTool;
use crate::engine::toolbox::{ToolRef, TurnTools};
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::{Verdict, classify, suggestion};
use crate::tools::{OutputLine, ToolContext, ToolResult};

/// What the permission rules or the controller decided for one tool call.
enum Decision {
    Run(JsonObject),
    Deny(String),
}

/// A tool call as classified before anything runs: decided by the rules, or to be asked about.
enum Classified<'t> {
    Decided(Decision),
    Ask(&'t ToolRef, JsonObject),
}

/// Asks about and runs the tool calls of a run. As in real Letta, every call is classified
/// first — auto-allowed, auto-denied (a tool this turn does not offer) or asked — and the
/// classification announced in `approval_classification_end`; then the asked calls get one
/// question at a time (`WAITING_ON_APPROVAL` only then), and the allowed calls run in order.
/// Returns one result per call; calls left when the turn is cancelled get `Interrupted by user`.
pub(super) async fn run_tools(
    host: &impl TurnHost,
    tools: &TurnTools,
    output: &RunOutput,
    cancel: &CancellationToken,
) -> Vec<HistoryMessage> {
    let calls = &output.tool_calls;
    let classified: Vec<Classified> = {
        let (mode, rules) = host.permissions().await;
        calls
            .iter()
            .map(|call| {
                let args: JsonObject = serde_json::from_str(&call.arguments).unwrap_or_default();
                match tools.find(&call.name) {
                    None => Classified::Decided(Decision::Deny(format!("Unknown tool: {}", call.name))),
                    Some(tool) => match classify(mode, &call.name, tool.subject(), &args, &rules) {
                        Verdict::Allow => Classified::Decided(Decision::Run(args)),
                        Verdict::Ask => Classified::Ask(tool, args),
                    },
                }
            })
            .collect()
    };
    let classification = ApprovalClassificationEnd {
        meta: output.lifecycle_meta(),
        auto_allowed_tool_call_ids: ids_where(calls, &classified, |c| {
            matches!(c, Classified::Decided(Decision::Run(_)))
        }),
        auto_denied_tool_call_ids: ids_where(calls, &classified, |c| {
            matches!(c, Classified::Decided(Decision::Deny(_)))
        }),
        user_input_tool_call_ids: ids_where(calls, &classified, |c| matches!(c, Classified::Ask(..))),
    };
    host.emit(vec![output.lifecycle(Delta::ApprovalClassificationEnd(classification))]);
    let mut decisions = Vec::new();
    for (call, classified) in calls.iter().zip(classified) {
        decisions.push(match classified {
            Classified::Decided(decision) => decision,
            Classified::Ask(tool, args) => match ask(host, tool, call, args, cancel).await {
                Some(decision) => decision,
                None => return interrupted_results(host, calls, &[]).await,
            },
        });
    }
    host.start_tools(ids_where(calls, &decisions, |d| matches!(d, Decision::Run(_))))
        .await;
    let mut results = Vec::new();
    for (call, decision) in calls.iter().zip(decisions) {
        if cancel.is_cancelled() {
            break;
        }
        let result = match decision {
            Decision::Run(args) => execute(host, tools, output, call, args, cancel).await,
            Decision::Deny(message) => ToolResult::error(message),
        };
        host.emit(vec![
            output.lifecycle(Delta::ClientToolEnd(ClientToolEnd {
                meta: output.approval_meta(&call.id),
                tool_call_id: call.id.clone(),
                status: status_of(&result),
            })),
            output.tool_return(&call.id, &result, false),
        ]);
        results.push(HistoryMessage::ToolResult {
            tool_call_id: call.id.clone(),
            content: result.text,
            is_error: result.is_error,
        });
    }
    host.end_tools(results.clone()).await;
    let done: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            HistoryMessage::ToolResult { tool_call_id, .. } => Some(tool_call_id.clone()),
            _ => None,
        })
        .collect();
    results.extend(interrupted_results(host, calls, &done).await);
    results
}

/// The ids of the calls whose item (same position) matches `keep`.
fn ids_where<T>(calls: &[ToolCall], items: &[T], keep: impl Fn(&T) -> bool) -> Vec<String> {
    calls
        .iter()
        .zip(items)
        .filter(|(_, item)| keep(item))
        .map(|(call, _)| call.id.clone())
        .collect()
}

/// Asks about one call the classification left to the user: the host sends the
/// `control_request` and the answer is awaited. The host classifies the call again just before,
/// as an earlier answer may have saved a rule or the mode may have changed; `None` when the turn
/// is cancelled meanwhile.
async fn ask(
    host: &impl TurnHost,
    tool: &ToolRef,
    call: &ToolCall,
    args: JsonObject,
    cancel: &CancellationToken,
) -> Option<Decision> {
    let subject = tool.subject();
    let diffs = preview(tool, &args, host.cwd().await).await;
    let request = CanUseToolRequest {
        subtype: ControlSubtype::CanUseTool,
        tool_name: call.name.clone(),
        input: args.clone(),
        tool_call_id: call.id.clone(),
        permission_suggestions: suggestion(&call.name, subject, &args).into_iter().collect(),
        blocked_path: None,
        diffs,
    };
    let (answered, pending) = match host.ask(format!("perm-{}", call.id), request, subject, cancel).await {
        Asked::Allowed => return Some(Decision::Run(args)),
        Asked::Cancelled => return None,
        Asked::Waiting(answered, pending) => (answered, pending),
    };
    let answer = tokio::select! {
        answer = answered => answer.ok()?,
        () = cancel.cancelled() => return None,
    };
    drop(pending);
    let allowed = matches!(answer, ApprovalAnswer::Allow { .. });
    tracing::info!(tool = call.name, allowed, "approval answered");
    Some(match answer {
        ApprovalAnswer::Allow { updated_input, save } => {
            if save {
                host.save_rule(&call.name, subject, &args).await;
            }
            Decision::Run(updated_input.unwrap_or(args))
        }
        ApprovalAnswer::Deny(message) => Decision::Deny(message),
    })
}

/// The preview of a call's file changes for its approval question, made on the blocking pool:
/// it reads and diffs files, which must not hold up the event loop.
async fn preview(tool: &ToolRef, args: &JsonObject, cwd: String) -> Option<Vec<DiffPreview>> {
    let (tool, args) = (tool.clone(), args.clone());
    tokio::task::spawn_blocking(move || tool.preview(&args, Path::new(&cwd)))
        .await
        .ok()
        .flatten()
}

/// Runs one approved call: `client_tool_start`, the tool (with streamed output snapshots),
/// and its side effects on the conversation (new working directory, `memory_updated`, `file_ops`).
async fn execute(
    host: &impl TurnHost,
    tools: &TurnTools,
    output: &RunOutput,
    call: &ToolCall,
    args: JsonObject,
    cancel: &CancellationToken,
) -> ToolResult {
    host.emit(vec![output.lifecycle(Delta::ClientToolStart(ClientToolStart {
        meta: output.approval_meta(&call.id),
        tool_call_id: call.id.clone(),
        tool_name: Some(call.name.clone()),
        tool_args: Some(serde_json::to_string(&args).unwrap_or_default()),
    }))]);
    let cwd = std::path::PathBuf::from(host.cwd().await);
    let secrets = host.secrets();
    let memory = match call.name.as_str() {
        "memory" | "Skill" => host.memory().await,
        _ => None,
    };
    let result = match tools.find(&call.name) {
        Some(ToolRef::Local(LoadedTool { tool, .. })) => {
            let mut snapshot = Snapshot::new(call.id.clone());
            let mut on_output = |line: OutputLine| {
                if let Some(partial) = snapshot.push(line) {
                    host.emit(vec![output.tool_return(&call.id, &partial, true)]);
                }
            };
            let context = ToolContext {
                cwd: &cwd,
                cancel,
                call_id: &call.id,
                secrets: &secrets,
                memory: memory.as_ref(),
                skills: host.skills(),
                tasks: host.tasks(),
                output: &mut on_output,
            };
            let result = tool.run(args, context).await;
            if let Some(partial) = snapshot.finish() {
                host.emit(vec![output.tool_return(&call.id, &partial, true)]);
            }
            result
        }
        Some(ToolRef::External(registration)) => host.call_external(registration, &call.id, args, cancel).await,
        None => ToolResult::error(format!("Unknown tool: {}", call.name)),
    };
    if let Some(new_cwd) = &result.new_cwd {
        host.set_cwd(new_cwd.display().to_string()).await;
    }
    if !result.memory_changed.is_empty() {
        host.memory_updated(result.memory_changed.clone());
    }
    if let Some((path, content)) = &result.changed_file {
        host.emit(vec![
            FileOps::agent_edit(path.display().to_string(), content.clone()).into(),
        ]);
    }
    result
}

/// Cumulative output of a running tool, released at most every 100 ms (docs/protocol.md §3.5).
struct Snapshot {
    stdout: Vec<String>,
    stderr: Vec<String>,
    last: Option<std::time::Instant>,
    unsent: bool,
    tool_call_id: String,
}

/// Lines a snapshot keeps at most.
const SNAPSHOT_LINES: usize = 200;

impl Snapshot {
    fn new(tool_call_id: String) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            last: None,
            unsent: false,
            tool_call_id,
        }
    }

    fn push(&mut self, line: OutputLine) -> Option<ToolResult> {
        let lines = match line {
            OutputLine::Stdout(text) => (&mut self.stdout, text),
            OutputLine::Stderr(text) => (&mut self.stderr, text),
        };
        if lines.0.len() < SNAPSHOT_LINES {
            lines.0.push(lines.1);
        }
        self.unsent = true;
        let due = self
            .last
            .is_none_or(|last| last.elapsed() >= std::time::Duration::from_millis(100));
        due.then(|| self.release())
    }

    fn finish(&mut self) -> Option<ToolResult> {
        self.unsent.then(|| self.release())
    }

    fn release(&mut self) -> ToolResult {
        self.last = Some(std::time::Instant::now());
        self.unsent = false;
        let _ = &self.tool_call_id;
        ToolResult {
            text: self.stdout.join("\n"),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            ..ToolResult::default()
        }
    }
}
