//! One turn of the API, run as an in-process client of the websocket protocol: a session of its
//! own subscribes to the conversation, forces it to `unrestricted`, sends the user message as an
//! `input` (without interactive tools) and follows the conversation's events until its own turn
//! ends — the same path as a websocket client's turn.
//!
//! The turn runs in a task of its own, so an HTTP client that goes away does not stop it: it
//! runs to its end (or to the timeout), its reply is kept in the conversation, and its outcome
//! still reaches an idempotent retry. A tool call that asks for approval ends it with
//! [`APPROVAL_NOTE`]; the timeout, or the server stopping, ends it with an error. Either way the
//! session is abandoned, which stops the turn it started (and only that turn) and drops its
//! queued input.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use letta_app_server_protocol::{
    ChangeDeviceState, ClientFrame, CreateMessage, Delta, DeviceStateChange, Input, InputPayload, MessageContent,
    MessageCreate, RemovalDisposition, RequestedPermissionMode, RuntimeScope, StopReason, StreamDelta, ToolCallDelta,
    ToolStatus, TurnFinished, UpdateQueue,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::Api;
use crate::clock::new_id;
use crate::outbound::{Outbound, Outgoing};

/// What a turn that asked for an interactive approval ends with (real Letta's text).
pub(super) const APPROVAL_NOTE: &str =
    "The agent attempted a tool call that requires interactive approval, which this API does not support.";

/// Frames taken from the session's queue at a time.
const BATCH: usize = 256;

/// A turn to run.
pub(super) struct Turn {
    /// Its conversation.
    pub scope: RuntimeScope,
    /// The user message.
    pub input: MessageContent,
    /// Whether the conversation is deleted once the turn ended.
    pub forget: Forget,
}

/// Whether a turn's conversation is deleted once the turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Forget {
    /// Kept (a keyed chat's).
    Never,
    /// Deleted (a stateless request's).
    Always,
    /// Deleted if the turn failed (a stored response's made for it: no id names it then).
    IfFailed,
}

/// Something the turn produced, as it streams.
#[derive(Debug, Clone)]
pub(super) enum Piece {
    /// A fragment of the reply.
    Text(String),
    /// A fragment of the model's reasoning.
    Reasoning(String),
    /// A fragment of a tool call: its name once known, and more of its arguments.
    Call {
        /// The call id.
        id: String,
        /// The tool's name, when this fragment names it.
        name: Option<String>,
        /// More of its JSON arguments.
        arguments: String,
    },
    /// A tool call's result.
    Result {
        /// The call id.
        id: String,
        /// The result text.
        output: String,
        /// Whether the tool succeeded.
        success: bool,
    },
}

/// Token counts of a turn, summed over its model requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Usage {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
    /// Both.
    pub total: u64,
    /// Reasoning tokens, when the model reported them.
    pub reasoning: Option<u64>,
}

/// Why a turn failed: the HTTP status and the message of the error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
    /// Whether a retry is safe: the input was refused before anything of it ran.
    #[serde(default)]
    pub retryable: bool,
}

impl Failure {
    /// A failure after the input was accepted: a retry would run it again.
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The input refused before anything of it ran.
    fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            ..Self::new(status, message)
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Outcome {
    /// The reply (with [`APPROVAL_NOTE`] when the turn stopped for an approval).
    pub text: String,
    /// The model's reasoning.
    pub reasoning: String,
    /// Token counts.
    pub usage: Usage,
    /// Whether the model stopped at its token limit.
    pub truncated: bool,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// A failed outcome.
    pub(super) fn failed(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            failure: Some(Failure::new(status, message)),
            ..Self::default()
        }
    }
}

/// Where a turn's outcome is published once it is known.
pub(super) type OutcomeSender = watch::Sender<Option<Arc<Outcome>>>;

/// Waits for the outcome published on `outcome`.
pub(super) async fn settled(mut outcome: watch::Receiver<Option<Arc<Outcome>>>) -> Arc<Outcome> {
    match outcome.wait_for(Option::is_some).await {
        Ok(settled) => settled.clone().unwrap_or_default(),
        Err(_) => Arc::new(Outcome::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the turn ended without an outcome",
        )),
    }
}

/// Starts `turn` in a task of its own; its pieces arrive on the returned channel as it streams,
/// and its outcome is published on `outcome` (after the conversation was deleted, as
/// [`Turn::forget`] says).
pub(super) fn start(api: &Arc<Api>, turn: Turn, outcome: OutcomeSender) -> mpsc::UnboundedReceiver<Piece> {
    let (pieces, received) = mpsc::unbounded_channel();
    let task = api.clone();
    api.tasks.spawn(async move {
        let api = task;
        let ended = run(&api, &turn, pieces).await;
        let forget = match turn.forget {
            Forget::Never => false,
            Forget::Always => true,
            Forget::IfFailed => ended.failure.is_some(),
        };
        if forget {
            super::forget(&api, &turn.scope).await;
        }
        outcome.send_replace(Some(Arc::new(ended)));
    });
    received
}

/// Runs the turn through a session of its own; returns how it ended.
async fn run(api: &Api, turn: &Turn, pieces: mpsc::UnboundedSender<Piece>) -> Outcome {
    let sessions = &api.sessions;
    let client = sessions.open_session();
    let request_id = new_id("openai-input");
    let client_id = new_id("openai");
    let unrestricted = ChangeDeviceState {
        runtime: turn.scope.clone(),
        payload: DeviceStateChange {
            mode: Some(RequestedPermissionMode::Unrestricted),
            ..DeviceStateChange::default()
        },
    };
    let message = MessageCreate {
        client_message_id: Some(client_id.clone()),
        otid: Some(client_id.clone()),
        content: turn.input.clone(),
        ..MessageCreate::user_text("")
    };
    let input = Input {
        request_id: Some(request_id.clone()),
        terminal_consumer_id: None,
        runtime: turn.scope.clone(),
        payload: InputPayload::CreateMessage(CreateMessage {
            exclude_interactive_tools: Some(true),
            ..CreateMessage::new(vec![message])
        }),
    };
    let mut follower = Follower::new(request_id, client_id, pieces);
    for frame in [ClientFrame::from(unrestricted), ClientFrame::from(input)] {
        client
            .handle_text(&serde_json::to_string(&frame).unwrap_or_default())
            .await;
    }
    let limit = sessions.config().openai_turn_timeout;
    let ended = tokio::select! {
        ended = tokio::time::timeout(limit, follower.follow(&client.session.outbound)) => {
            ended.unwrap_or(End::Stopped(StatusCode::GATEWAY_TIMEOUT, "agent turn timed out"))
        }
        () = api.shutdown.cancelled() => End::Stopped(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"),
    };
    let outcome = match ended {
        End::Finished(finished) => follower.finished(*finished),
        End::Refused(failure) => Outcome {
            failure: Some(failure),
            ..Outcome::default()
        },
        End::Approval => {
            client.session.abandon();
            follower.asked_for_approval()
        }
        End::Stopped(status, message) => {
            client.session.abandon();
            let mut outcome = follower.outcome;
            outcome.failure = Some(Failure::new(status, message));
            outcome
        }
    };
    sessions.close_session(client.session.id).await;
    outcome
}

/// Why following a turn stopped.
enum End {
    /// Its `turn_finished`.
    Finished(Box<TurnFinished>),
    /// The input was refused or removed before it ran.
    Refused(Failure),
    /// A tool call asked for approval.
    Approval,
    /// The turn is stopped: it timed out, or the server stops.
    Stopped(StatusCode, &'static str),
}

/// Follows the conversation's frames, telling this turn's apart from others'.
struct Follower {
    request_id: String,
    client_id: String,
    pieces: mpsc::UnboundedSender<Piece>,
    /// Whether this turn runs: from its `input_accepted` when it started at once, else from the
    /// echo of its message when it left the queue.
    mine: bool,
    /// Tool calls seen without a final result.
    open_calls: Vec<String>,
    /// Tool calls whose `client_tool_end` came: their next result is the final one.
    ended_calls: HashSet<String>,
    outcome: Outcome,
}

impl Follower {
    fn new(request_id: String, client_id: String, pieces: mpsc::UnboundedSender<Piece>) -> Self {
        Self {
            request_id,
            client_id,
            pieces,
            mine: false,
            open_calls: Vec::new(),
            ended_calls: HashSet::new(),
            outcome: Outcome::default(),
        }
    }

    /// Reads the session's frames until this turn ended.
    async fn follow(&mut self, outbound: &Outbound) -> End {
        loop {
            let Ok(batch) = outbound.next_batch(BATCH).await else {
                return End::Refused(Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server is shutting down",
                ));
            };
            for frame in batch {
                if let Some(end) = self.take(frame) {
                    return end;
                }
            }
        }
    }

    fn take(&mut self, frame: Outgoing) -> Option<End> {
        match frame {
            Outgoing::Direct(bytes) => self.direct(&bytes),
            Outgoing::Event(event) | Outgoing::Resumable(event) => {
                // Rendered as a client would read it; only this turn's events matter.
                let frame_type = event.frame_type();
                let value: Value = serde_json::from_str(&event.render(0, "", false)).ok()?;
                self.event(frame_type, value)
            }
        }
    }

    /// The answer to the input: refused, or started at once.
    fn direct(&mut self, bytes: &Bytes) -> Option<End> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        if value["request_id"] != self.request_id.as_str() {
            return None;
        }
        match value["type"].as_str() {
            Some("input_accepted") if value["accepted"] == true => {
                self.mine |= value["disposition"] == "started";
                None
            }
            Some("input_accepted") => Some(End::Refused(Failure::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                value["error"].as_str().unwrap_or("the input was refused"),
            ))),
            Some("error") => Some(End::Refused(Failure::refused(
                StatusCode::BAD_REQUEST,
                value["message"].as_str().unwrap_or("the input was refused"),
            ))),
            _ => None,
        }
    }

    fn event(&mut self, frame_type: &str, value: Value) -> Option<End> {
        match frame_type {
            "stream_delta" => {
                let delta: StreamDelta = serde_json::from_value(value).ok()?;
                if delta.subagent_id.is_none() {
                    self.delta(delta.delta);
                }
                None
            }
            "control_request" if self.mine => Some(End::Approval),
            "turn_finished" if self.mine => serde_json::from_value(value)
                .ok()
                .map(|finished| End::Finished(Box::new(finished))),
            "update_queue" if !self.mine => {
                let update: UpdateQueue = serde_json::from_value(value).ok()?;
                let removed = update.removed.iter().any(|removal| {
                    removal.client_message_id == self.client_id && removal.disposition == RemovalDisposition::Cancelled
                });
                removed.then(|| {
                    End::Refused(Failure::new(
                        StatusCode::CONFLICT,
                        "the message was removed from the queue before it ran",
                    ))
                })
            }
            _ => None,
        }
    }

    fn delta(&mut self, delta: Delta) {
        if !self.mine {
            // A queued message starts its turn with its echo.
            if let Delta::UserMessage(user) = &delta {
                self.mine = user.meta.otid.as_deref() == Some(self.client_id.as_str());
            }
            return;
        }
        match delta {
            Delta::AssistantMessage(message) => {
                let text = text_of(&message.content);
                if !text.is_empty() {
                    self.outcome.text.push_str(&text);
                    self.send(Piece::Text(text));
                }
            }
            Delta::ReasoningMessage(message) if !message.reasoning.is_empty() => {
                self.outcome.reasoning.push_str(&message.reasoning);
                self.send(Piece::Reasoning(message.reasoning));
            }
            Delta::ApprovalRequestMessage(message) => self.calls(message.tool_call, message.tool_calls),
            Delta::ToolCallMessage(message) => self.calls(message.tool_call, message.tool_calls),
            Delta::ClientToolEnd(end) => {
                self.ended_calls.insert(end.tool_call_id);
            }
            Delta::ToolReturnMessage(message) => {
                // Results before a call's `client_tool_end` are snapshots of its output so far.
                for result in message.tool_returns {
                    if self.ended_calls.remove(&result.tool_call_id) {
                        self.open_calls.retain(|id| *id != result.tool_call_id);
                        self.send(Piece::Result {
                            id: result.tool_call_id,
                            output: result.tool_return,
                            success: result.status == ToolStatus::Success,
                        });
                    }
                }
            }
            Delta::UsageStatistics(usage) => {
                let counted = &mut self.outcome.usage;
                counted.prompt += usage.prompt_tokens.unwrap_or(0);
                counted.completion += usage.completion_tokens.unwrap_or(0);
                counted.total += usage.total_tokens.unwrap_or(0);
                if let Some(reasoning) = usage.reasoning_tokens {
                    *counted.reasoning.get_or_insert(0) += reasoning;
                }
            }
            _ => {}
        }
    }

    fn calls(&mut self, first: ToolCallDelta, more: Option<Vec<ToolCallDelta>>) {
        let calls = match more {
            Some(calls) if !calls.is_empty() => calls,
            _ => vec![first],
        };
        for call in calls {
            let Some(id) = call.tool_call_id else { continue };
            if !self.open_calls.contains(&id) {
                self.open_calls.push(id.clone());
            }
            self.send(Piece::Call {
                id,
                name: call.name,
                arguments: call.arguments.unwrap_or_default(),
            });
        }
    }

    fn send(&self, piece: Piece) {
        // The HTTP client may have gone; the turn goes on.
        let _ = self.pieces.send(piece);
    }

    /// The outcome of a turn that ended with `turn_finished`.
    fn finished(mut self, finished: TurnFinished) -> Outcome {
        let failure = match (finished.error, &finished.stop_reason) {
            (Some(error), _) => Some(Failure::new(StatusCode::INTERNAL_SERVER_ERROR, error)),
            (None, StopReason::Cancelled) => Some(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the agent's turn was cancelled",
            )),
            (None, _) => None,
        };
        self.outcome.truncated = finished.stop_reason == StopReason::MaxTokensExceeded;
        self.outcome.failure = failure;
        self.outcome
    }

    /// The outcome of a turn stopped because a tool call asked for approval: the reply so far
    /// and the note; the calls without a result fail with the note.
    fn asked_for_approval(mut self) -> Outcome {
        for id in std::mem::take(&mut self.open_calls) {
            self.send(Piece::Result {
                id,
                output: APPROVAL_NOTE.into(),
                success: false,
            });
        }
        let note = if self.outcome.text.is_empty() {
            APPROVAL_NOTE.to_owned()
        } else {
            format!("\n\n{APPROVAL_NOTE}")
        };
        self.send(Piece::Text(note.clone()));
        self.outcome.text.push_str(&note);
        self.outcome
    }
}

/// The text of message content (its text parts, joined).
pub(super) fn text_of(content: &MessageContent) -> String {
    match content {
        MessageContent::Text(text) => text.clone(),
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|part| match part {
                letta_app_server_protocol::ContentPart::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect(),
    }
}
