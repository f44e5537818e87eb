//! The protocol table: every frame type declared once, and everything derived from it.
//!
//! [`ClientFrame`], [`ServerFrame`] and [`RuntimeEvent`], the [`FrameType::TYPE`] constants, the
//! [`Request`] command/response pairing, each command's request-id prefix, each event's
//! [`Delivery`] (the channel of a split session, whether it coalesces in a backed-up queue), the
//! `From`/`TryFrom` conversions, the JSON dispatch and the machine-readable lists ([`COMMANDS`],
//! [`CLIENT_FRAMES`], [`SERVER_FRAMES`], [`EVENTS`]) all come from the single `protocol_table!`
//! invocation at the bottom of this file. `schema/meta.json` carries the lists to the SDKs, whose
//! tables `cargo xtask codegen` generates from it.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::parse::{FrameError, FrameErrorKind, parse_json, split_tag};
use crate::validate::validate;
use crate::*;

/// A type that is the body of one frame type on the wire.
pub trait FrameType {
    /// The frame's `type` value.
    const TYPE: &'static str;
}

/// A client→server command.
pub trait Command: FrameType + Into<ClientFrame> {}

/// A command the server answers with one response frame correlated by `request_id` (for
/// `input`, `sync` and `abort_message` only when the command carried a `request_id`).
pub trait Request: Command {
    /// The response's body.
    type Response: FrameType + TryFrom<ServerFrame, Error = ServerFrame>;
}

/// A command whose declared response can say that it failed (`success: false` and an `error`):
/// how a server answers at once a command it does not implement (docs/protocol.md §2.3). The
/// protocol table marks these commands `refuses`; [`ClientFrame::refusal`] uses it.
pub trait Refuse: Request {
    /// The response declining this command with `error`, or `None` when the command carried no
    /// `request_id` to correlate one with.
    fn refuse(&self, error: String) -> Option<Self::Response>;
}

/// How many frames answer a command (besides an `error` frame), as listed in `schema/meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answers {
    /// No frame answers it.
    None,
    /// One response frame.
    One,
    /// Response frames correlated by `request_id` until one carries `done: true`.
    Stream,
}

/// A client→server command as listed in `schema/meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    /// The command's `type`.
    pub name: &'static str,
    /// The `type` of its response frame, if it has one.
    pub response: Option<&'static str>,
    /// How many frames answer it.
    pub answers: Answers,
    /// Whether its response can decline it (`success: false` with an `error`); see [`Refuse`].
    pub refuses: bool,
    /// For a command with a response: clients number its generated `request_id`s
    /// `"<prefix>-<n>"`, as Letta Code's client helper does (docs/protocol.md §2.3).
    pub request_id_prefix: Option<&'static str>,
}

/// Which socket of a split session carries a runtime event (docs/protocol.md §1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Responses, approvals, `turn_finished`, tool calls: everything not on the stream channel.
    Control,
    /// Stream deltas and status snapshots, while a stream socket is attached.
    Stream,
}

/// How a runtime event travels from the server's outbound queue to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The socket of a split session it goes to.
    pub channel: Channel,
    /// Whether it is a snapshot that a newer frame of the same type and scope replaces while
    /// both wait in a backed-up queue (docs/protocol.md §2.6); see [`RuntimeEvent::coalesces`]
    /// for the one exception.
    pub coalesces: bool,
}

/// A runtime event type as listed in `schema/meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo {
    /// The event's `type`.
    pub name: &'static str,
    /// How it is delivered.
    pub delivery: Delivery,
}

/// How a server frame is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerFrameKind {
    /// Answers one command, only to the socket that sent it; no envelope.
    Response,
    /// A runtime event: enveloped, sent to every subscriber of its scope.
    Event,
    /// A direct notification to one socket; no envelope.
    Notification,
}

/// A server→client frame type as listed in `schema/meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFrameInfo {
    /// The frame's `type`.
    pub name: &'static str,
    /// How it is delivered.
    pub kind: ServerFrameKind,
}

/// A command's `request_id` field, required or optional.
pub trait RequestIdField {
    /// The id, if there is one.
    fn as_request_id(&self) -> Option<&str>;
}

impl RequestIdField for String {
    fn as_request_id(&self) -> Option<&str> {
        Some(self)
    }
}

impl RequestIdField for Option<String> {
    fn as_request_id(&self) -> Option<&str> {
        self.as_deref()
    }
}

macro_rules! protocol_table {
    (
        commands {
            $( $(#[$cmeta:meta])* $cvar:ident($cty:ty) = $cname:literal $(, $echo:ident)?
               $( => $rvar:ident($rty:ty) = $rname:literal, ids $prefix:literal $(, $flag:ident)* )? ; )+
        }
        inbound {
            $( $(#[$imeta:meta])* $ivar:ident($ity:ty) = $iname:literal ; )+
        }
        events {
            $( $(#[$emeta:meta])* $evar:ident($ety:ty) = $ename:literal
               { channel: $echannel:ident, coalesces: $ecoalesces:literal $(, $eflag:ident)* } ; )+
        }
        notifications {
            $( $(#[$nmeta:meta])* $nvar:ident($nty:ty) = $nname:literal ; )+
        }
    ) => {
        $( impl FrameType for $cty { const TYPE: &'static str = $cname; } )+
        $( impl Command for $cty {} )+
        $( $( impl FrameType for $rty { const TYPE: &'static str = $rname; } )? )+
        $( $( impl Request for $cty { type Response = $rty; } )? )+
        $( impl FrameType for $ity { const TYPE: &'static str = $iname; } )+
        $( protocol_table!(@event_type $ety = $ename $($eflag)*); )+
        $( impl FrameType for $nty { const TYPE: &'static str = $nname; } )+

        /// Every client→server command, in declaration order.
        pub const COMMANDS: &[CommandInfo] = &[
            $( CommandInfo {
                name: $cname,
                response: protocol_table!(@opt $($rname)?),
                answers: protocol_table!(@answers $( One $($flag)* )?),
                refuses: protocol_table!(@refuses $( $($flag)* )?),
                request_id_prefix: protocol_table!(@opt $($prefix)?),
            }, )+
        ];

        /// Every runtime event with its delivery, in declaration order.
        pub const EVENTS: &[EventInfo] = &[
            $( EventInfo {
                name: $ename,
                delivery: Delivery { channel: Channel::$echannel, coalesces: $ecoalesces },
            }, )+
        ];

        /// Every `type` a client may send: the commands, then the legacy/keepalive frames.
        pub const CLIENT_FRAMES: &[&str] = &[$($cname,)+ $($iname,)+];

        /// Every server→client frame type: responses, runtime events, direct notifications.
        pub const SERVER_FRAMES: &[ServerFrameInfo] = &[
            $( $( ServerFrameInfo { name: $rname, kind: ServerFrameKind::Response }, )? )+
            $( ServerFrameInfo { name: $ename, kind: ServerFrameKind::Event }, )+
            $( ServerFrameInfo { name: $nname, kind: ServerFrameKind::Notification }, )+
        ];

        /// A frame a client sends, tagged by `type`. Closed: an unknown `type` is an error.
        #[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
        #[serde(tag = "type")]
        pub enum ClientFrame {
            $( $(#[$cmeta])* #[serde(rename = $cname)] $cvar($cty), )+
            $( $(#[$imeta])* #[serde(rename = $iname)] $ivar($ity), )+
        }

        $( impl From<$cty> for ClientFrame { fn from(body: $cty) -> Self { Self::$cvar(body) } } )+
        $( impl From<$ity> for ClientFrame { fn from(body: $ity) -> Self { Self::$ivar(body) } } )+

        impl ClientFrame {
            /// The frame's `type`.
            pub fn frame_type(&self) -> &'static str {
                match self {
                    $( Self::$cvar(_) => $cname, )+
                    $( Self::$ivar(_) => $iname, )+
                }
            }

            /// Parses a frame from an already decoded JSON value, including the shape checks
            /// the types cannot express (non-empty ids, one-of fields).
            pub fn from_value(value: Value) -> Result<Self, FrameError> {
                let tagged = split_tag(value, "type")?;
                let (frame_type, request_id) = (tagged.tag.clone(), tagged.request_id.clone());
                let frame = match tagged.tag.as_str() {
                    $( $cname => tagged.body().map(Self::$cvar), )+
                    $( $iname => tagged.body().map(Self::$ivar), )+
                    _ => Err(tagged.unknown(CLIENT_FRAMES)),
                }?;
                validate(&frame).map_err(|error| FrameError {
                    kind: FrameErrorKind::InvalidFrame,
                    frame_type: Some(frame_type),
                    request_id,
                    path: error.path,
                    reason: error.reason,
                })?;
                Ok(frame)
            }
        }

        impl ClientFrame {
            /// The `request_id` the answer of a command with a response echoes, when the frame
            /// carries one, or the `request_id` of a command without a response that the table
            /// marks `, request_id` (which an `error` frame answering it echoes); `None` for every
            /// other frame.
            pub fn request_id(&self) -> Option<&str> {
                match self {
                    $( Self::$cvar(command) => protocol_table!(@request_id command $($rname)? $($echo)?), )+
                    $( Self::$ivar(_) => None, )+
                }
            }

            /// The answer that declines this command at once, for a server that does not
            /// implement it: its response with `success: false` and `error` when the table marks
            /// the command `refuses` and it carried a `request_id`, otherwise `None` (then an
            /// `error` frame answers).
            pub fn refusal(&self, error: String) -> Option<ServerFrame> {
                match self {
                    $( Self::$cvar(command) => protocol_table!(@refusal command error; $( $($flag)* )?), )+
                    $( Self::$ivar(_) => None, )+
                }
            }
        }

        /// A frame the server sends, tagged by `type`. Open: a `type` this version does not know
        /// is kept, not rejected (in the protocol crate, as `ServerFrame::Unknown` with the
        /// frame's JSON).
        #[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
        #[serde(tag = "type")]
        #[schemars(extend("x-open" = true))]
        pub enum ServerFrame {
            $( $(
                #[doc = concat!("Response to `", $cname, "`.")]
                #[serde(rename = $rname)] $rvar($rty),
            )? )+
            $( $(#[$emeta])* #[serde(rename = $ename)] $evar(protocol_table!(@event_frame [$ety] $($eflag)*)), )+
            $( $(#[$nmeta])* #[serde(rename = $nname)] $nvar($nty), )+
            /// A frame type this version does not know, kept verbatim.
            #[serde(untagged)]
            #[schemars(skip)]
            Unknown(Value),
        }

        $( $( protocol_table!(@server_conversions $rvar $rty); )? )+
        $( protocol_table!(@server_conversions $nvar $nty); )+

        impl ServerFrame {
            /// The frame's `type` (for [`ServerFrame::Unknown`], the unknown type).
            pub fn frame_type(&self) -> &str {
                match self {
                    $( $( Self::$rvar(_) => $rname, )? )+
                    $( Self::$evar(_) => $ename, )+
                    $( Self::$nvar(_) => $nname, )+
                    Self::Unknown(value) => value.get("type").and_then(Value::as_str).unwrap_or_default(),
                }
            }

            /// The envelope of a runtime event, or `None` for responses and notifications.
            pub fn envelope(&self) -> Option<&Envelope> {
                match self {
                    $( Self::$evar(event) => EventFrame::envelope(event), )+
                    _ => None,
                }
            }

            /// Parses a frame from an already decoded JSON value.
            pub fn from_value(value: Value) -> Result<Self, FrameError> {
                let tagged = split_tag(value, "type")?;
                match tagged.tag.as_str() {
                    $( $( $rname => tagged.body().map(Self::$rvar), )? )+
                    $( $ename => tagged.body().map(Self::$evar), )+
                    $( $nname => tagged.body().map(Self::$nvar), )+
                    _ => Ok(Self::Unknown(tagged.value)),
                }
            }
        }

        /// The payload of a runtime event, without its per-connection [`Envelope`]. A server
        /// serialises it once and appends the envelope for each connection it writes to.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "type")]
        pub enum RuntimeEvent {
            $( $(#[$emeta])* #[serde(rename = $ename)] $evar($ety), )+
        }

        $( impl From<$ety> for RuntimeEvent { fn from(body: $ety) -> Self { Self::$evar(body) } } )+

        impl RuntimeEvent {
            /// The event's `type`.
            pub fn frame_type(&self) -> &'static str {
                match self { $( Self::$evar(_) => $ename, )+ }
            }

            /// How this event is delivered, as the table declares it for its type.
            pub fn delivery(&self) -> Delivery {
                match self {
                    $( Self::$evar(_) => Delivery { channel: Channel::$echannel, coalesces: $ecoalesces }, )+
                }
            }

            /// The complete server frame for one connection.
            pub fn with_envelope(self, envelope: Envelope) -> ServerFrame {
                match self {
                    $( Self::$evar(body) => ServerFrame::$evar(EventFrame::enveloped(body, envelope)), )+
                }
            }
        }
    };
    (@server_conversions $var:ident $ty:ty) => {
        impl From<$ty> for ServerFrame {
            fn from(body: $ty) -> Self {
                Self::$var(body)
            }
        }
        impl TryFrom<ServerFrame> for $ty {
            type Error = ServerFrame;
            fn try_from(frame: ServerFrame) -> Result<Self, ServerFrame> {
                match frame {
                    ServerFrame::$var(body) => Ok(body),
                    other => Err(other),
                }
            }
        }
    };
    // A command's flags, after its request-id prefix: `refuses` (see [`Refuse`]) and `stream`
    // (see [`Answers::Stream`]), in any order; any other word is a compile error.
    (@answers) => { Answers::None };
    (@answers One) => { Answers::One };
    (@answers One stream $($rest:ident)*) => { Answers::Stream };
    (@answers One refuses $($rest:ident)*) => { protocol_table!(@answers One $($rest)*) };
    (@refuses) => { false };
    (@refuses refuses $($rest:ident)*) => { true };
    (@refuses stream $($rest:ident)*) => { protocol_table!(@refuses $($rest)*) };
    (@refusal $command:ident $error:ident;) => {{
        let _ = ($command, $error);
        None
    }};
    (@refusal $command:ident $error:ident; refuses $($rest:ident)*) => {
        Refuse::refuse($command, $error).map(ServerFrame::from)
    };
    (@refusal $command:ident $error:ident; stream $($rest:ident)*) => {
        protocol_table!(@refusal $command $error; $($rest)*)
    };
    // The `request_id` of a command with a response, or of one without a response whose frame
    // still carries one: marked `, request_id` after its name (`watch_file`).
    (@request_id $command:ident $response:literal) => { RequestIdField::as_request_id(&$command.request_id) };
    (@request_id $command:ident request_id) => { RequestIdField::as_request_id(&$command.request_id) };
    (@request_id $command:ident) => {{
        let _ = $command;
        None
    }};
    // An event's flags: `both_ways`, an event that clients send too (`file_ops`), is one type
    // for both directions, whose `FrameType` its command entry implements; `direct`, an event
    // the server also sends to one socket without envelope, has a `MaybeEnveloped` frame.
    (@event_type $ety:ty = $ename:literal) => {
        impl FrameType for $ety { const TYPE: &'static str = $ename; }
    };
    (@event_type $ety:ty = $ename:literal both_ways $($rest:ident)*) => {};
    (@event_type $ety:ty = $ename:literal direct $($rest:ident)*) => {
        protocol_table!(@event_type $ety = $ename $($rest)*);
    };
    (@event_frame [$ety:ty]) => { Enveloped<$ety> };
    (@event_frame [$ety:ty] direct $($rest:ident)*) => { MaybeEnveloped<$ety> };
    (@event_frame [$ety:ty] both_ways $($rest:ident)*) => { protocol_table!(@event_frame [$ety] $($rest)*) };
    (@opt $name:literal) => { Some($name) };
    (@opt) => { None };
    (@$rule:ident $($unknown:tt)*) => {
        compile_error!(concat!("unknown protocol_table! flag in: ", stringify!($($unknown)*)))
    };
}

protocol_table! {
    commands {
        /// Capability discovery.
        AppServerInfo(AppServerInfo) = "app_server_info"
            => AppServerInfoResponse(AppServerInfoResponse) = "app_server_info_response", ids "app-server-info";
        /// Resolve or create an agent and conversation, subscribe, replay state.
        RuntimeStart(RuntimeStart) = "runtime_start"
            => RuntimeStartResponse(RuntimeStartResponse) = "runtime_start_response", ids "runtime-start";
        /// Send messages or an approval answer to a runtime.
        Input(Input) = "input" => InputAccepted(InputAccepted) = "input_accepted", ids "input";
        /// Replay a scope's state to this socket.
        Sync(Sync) = "sync" => SyncResponse(SyncResponse) = "sync_response", ids "sync";
        /// Cancel the active turn and pending approvals.
        AbortMessage(AbortMessage) = "abort_message"
            => AbortMessageResponse(AbortMessageResponse) = "abort_message_response", ids "abort";
        /// Change permission mode and/or working directory.
        ChangeDeviceState(ChangeDeviceState) = "change_device_state";
        /// Remove a waiting queue item.
        RemoveQueueItem(RemoveQueueItem) = "remove_queue_item"
            => RemoveQueueItemResponse(RemoveQueueItemResponse) = "remove_queue_item_response", ids "remove-queue-item";
        /// Replace this connection's external tools on many runtimes.
        RuntimeExternalToolsUpdate(RuntimeExternalToolsUpdate) = "runtime_external_tools_update"
            => RuntimeExternalToolsUpdateResponse(RuntimeExternalToolsUpdateResponse)
                = "runtime_external_tools_update_response", ids "runtime-external-tools";
        /// Answer an `external_tool_call_request`.
        ExternalToolCallResponse(ExternalToolCallResponse) = "external_tool_call_response";
        /// Letta 0.34: a receipt for a `turn_finished`; no answer.
        TurnFinishedAck(TurnFinishedAck) = "turn_finished_ack";
        /// Start a conversation's waiting queue items if it is idle.
        ResumeQueue(ResumeQueue) = "resume_queue"
            => ResumeQueueResponse(ResumeQueueResponse) = "resume_queue_response", ids "resume-queue", refuses;
        // The agents group (agents.rs).
        /// List agents.
        AgentList(AgentList) = "agent_list"
            => AgentListResponse(AgentListResponse) = "agent_list_response", ids "agent-list", refuses;
        /// Read one agent.
        AgentRetrieve(AgentRetrieve) = "agent_retrieve"
            => AgentRetrieveResponse(AgentRetrieveResponse) = "agent_retrieve_response", ids "agent-retrieve", refuses;
        /// Create an agent from Letta `AgentCreateParams`.
        AgentCreate(AgentCreate) = "agent_create"
            => AgentCreateResponse(AgentCreateResponse) = "agent_create_response", ids "agent-create", refuses;
        /// Update an agent.
        AgentUpdate(AgentUpdate) = "agent_update"
            => AgentUpdateResponse(AgentUpdateResponse) = "agent_update_response", ids "agent-update", refuses;
        /// Delete an agent.
        AgentDelete(AgentDelete) = "agent_delete"
            => AgentDeleteResponse(AgentDeleteResponse) = "agent_delete_response", ids "agent-delete", refuses;
        /// Create an agent from a built-in personality preset.
        CreateAgent(CreateAgentCommand) = "create_agent"
            => CreateAgentResponse(CreateAgentResponse) = "create_agent_response", ids "create-agent", refuses;
        // The conversations group (conversations.rs).
        /// List conversations.
        ConversationList(ConversationList) = "conversation_list"
            => ConversationListResponse(ConversationListResponse) = "conversation_list_response",
                ids "conversation-list", refuses;
        /// Read one conversation.
        ConversationRetrieve(ConversationRetrieve) = "conversation_retrieve"
            => ConversationRetrieveResponse(ConversationRetrieveResponse) = "conversation_retrieve_response",
                ids "conversation-retrieve", refuses;
        /// Create a conversation.
        ConversationCreate(ConversationCreate) = "conversation_create"
            => ConversationCreateResponse(ConversationCreateResponse) = "conversation_create_response",
                ids "conversation-create", refuses;
        /// Update a conversation.
        ConversationUpdate(ConversationUpdate) = "conversation_update"
            => ConversationUpdateResponse(ConversationUpdateResponse) = "conversation_update_response",
                ids "conversation-update", refuses;
        /// Recompile a conversation's system prompt.
        ConversationRecompile(ConversationRecompile) = "conversation_recompile"
            => ConversationRecompileResponse(ConversationRecompileResponse) = "conversation_recompile_response",
                ids "conversation-recompile", refuses;
        /// Fork a conversation.
        ConversationFork(ConversationFork) = "conversation_fork"
            => ConversationForkResponse(ConversationForkResponse) = "conversation_fork_response",
                ids "conversation-fork", refuses;
        /// List a conversation's messages.
        ConversationMessagesList(ConversationMessagesList) = "conversation_messages_list"
            => ConversationMessagesListResponse(ConversationMessagesListResponse)
                = "conversation_messages_list_response", ids "conversation-messages-list", refuses;
        /// Compact a conversation's history.
        ConversationCompact(ConversationCompact) = "conversation_compact"
            => ConversationCompactResponse(ConversationCompactResponse) = "conversation_compact_response",
                ids "conversation-compact", refuses;
        // Scheduled prompts (cron.rs).
        /// List scheduled tasks.
        CronList(CronList) = "cron_list"
            => CronListResponse(CronListResponse) = "cron_list_response", ids "cron-list", refuses;
        /// Schedule a prompt.
        CronAdd(CronAdd) = "cron_add"
            => CronAddResponse(CronAddResponse) = "cron_add_response", ids "cron-add", refuses;
        /// Read one scheduled task.
        CronGet(CronGet) = "cron_get"
            => CronGetResponse(CronGetResponse) = "cron_get_response", ids "cron-get", refuses;
        /// Read a page of a task's run log.
        CronRuns(CronRuns) = "cron_runs"
            => CronRunsResponse(CronRunsResponse) = "cron_runs_response", ids "cron-runs", refuses;
        /// Fire a task now.
        CronTrigger(CronTrigger) = "cron_trigger"
            => CronTriggerResponse(CronTriggerResponse) = "cron_trigger_response", ids "cron-trigger", refuses;
        /// Pause a task.
        CronPause(CronPause) = "cron_pause"
            => CronPauseResponse(CronPauseResponse) = "cron_pause_response", ids "cron-pause", refuses;
        /// Resume a paused task.
        CronResume(CronResume) = "cron_resume"
            => CronResumeResponse(CronResumeResponse) = "cron_resume_response", ids "cron-resume", refuses;
        /// Change a task.
        CronUpdate(CronUpdate) = "cron_update"
            => CronUpdateResponse(CronUpdateResponse) = "cron_update_response", ids "cron-update", refuses;
        /// Delete a task.
        CronDelete(CronDelete) = "cron_delete"
            => CronDeleteResponse(CronDeleteResponse) = "cron_delete_response", ids "cron-delete", refuses;
        /// Delete every task of an agent.
        CronDeleteAll(CronDeleteAll) = "cron_delete_all"
            => CronDeleteAllResponse(CronDeleteAllResponse) = "cron_delete_all_response",
                ids "cron-delete-all", refuses;
        // Slash commands, monitors and browser-device OAuth (task_control.rs).
        /// Run a slash command.
        ExecuteCommand(ExecuteCommand) = "execute_command"
            => ExecuteCommandResponse(ExecuteCommandResponse) = "execute_command_response", ids "execute-command";
        /// Stop a background monitor.
        MonitorStop(MonitorStop) = "monitor_stop"
            => MonitorStopResponse(MonitorStopResponse) = "monitor_stop_response", ids "monitor-stop", refuses;
        /// Letta 0.34: start an MCP OAuth flow on this device.
        BrowserDeviceMcpOAuth(BrowserDeviceMcpOAuth) = "browser_device_mcp_oauth"
            => BrowserDeviceMcpOAuthResponse(BrowserDeviceMcpOAuthResponse) = "browser_device_mcp_oauth_response",
                ids "browser-device-mcp-oauth";
        /// Letta 0.34: cancel an MCP OAuth flow; no answer.
        BrowserDeviceMcpOAuthCancel(BrowserDeviceMcpOAuthCancel) = "browser_device_mcp_oauth_cancel";
        // Subagents (subagent.rs).
        /// Launch a subagent.
        LaunchSubagent(LaunchSubagent) = "launch_subagent"
            => LaunchSubagentResponse(LaunchSubagentResponse) = "launch_subagent_response",
                ids "launch-subagent", refuses;
        // Teleport (teleport.rs).
        /// Ask whether teleport is supported.
        TeleportProbe(TeleportProbe) = "teleport_probe"
            => TeleportProbeResponse(TeleportProbeResponse) = "teleport_probe_response", ids "teleport-probe";
        /// Hand a conversation over to another device; answered by a `teleport_ready` event.
        TeleportRequest(TeleportRequest) = "teleport_request", request_id;
        /// The handoff failed; no answer.
        TeleportFailed(TeleportFailed) = "teleport_failed";
        // The messaging-channels group (channels/).
        /// List the messaging channels.
        ChannelsList(ChannelsList) = "channels_list"
            => ChannelsListResponse(ChannelsListResponse) = "channels_list_response",
                ids "channels-list", refuses;
        /// List a channel's accounts.
        ChannelAccountsList(ChannelAccountsList) = "channel_accounts_list"
            => ChannelAccountsListResponse(ChannelAccountsListResponse) = "channel_accounts_list_response",
                ids "channel-accounts-list", refuses;
        /// Create a channel account.
        ChannelAccountCreate(ChannelAccountCreate) = "channel_account_create"
            => ChannelAccountCreateResponse(ChannelAccountCreateResponse) = "channel_account_create_response",
                ids "channel-account-create", refuses;
        /// Change a channel account's settings.
        ChannelAccountUpdate(ChannelAccountUpdate) = "channel_account_update"
            => ChannelAccountUpdateResponse(ChannelAccountUpdateResponse) = "channel_account_update_response",
                ids "channel-account-update", refuses;
        /// Bind a channel account to an agent conversation.
        ChannelAccountBind(ChannelAccountBind) = "channel_account_bind"
            => ChannelAccountBindResponse(ChannelAccountBindResponse) = "channel_account_bind_response",
                ids "channel-account-bind", refuses;
        /// Unbind a channel account.
        ChannelAccountUnbind(ChannelAccountUnbind) = "channel_account_unbind"
            => ChannelAccountUnbindResponse(ChannelAccountUnbindResponse) = "channel_account_unbind_response",
                ids "channel-account-unbind", refuses;
        /// Delete a channel account.
        ChannelAccountDelete(ChannelAccountDelete) = "channel_account_delete"
            => ChannelAccountDeleteResponse(ChannelAccountDeleteResponse) = "channel_account_delete_response",
                ids "channel-account-delete", refuses;
        /// Start a channel account's bot.
        ChannelAccountStart(ChannelAccountStart) = "channel_account_start"
            => ChannelAccountStartResponse(ChannelAccountStartResponse) = "channel_account_start_response",
                ids "channel-account-start", refuses;
        /// Stop a channel account's bot.
        ChannelAccountStop(ChannelAccountStop) = "channel_account_stop"
            => ChannelAccountStopResponse(ChannelAccountStopResponse) = "channel_account_stop_response",
                ids "channel-account-stop", refuses;
        /// Read a channel account's settings.
        ChannelGetConfig(ChannelGetConfig) = "channel_get_config"
            => ChannelGetConfigResponse(ChannelGetConfigResponse) = "channel_get_config_response",
                ids "channel-get-config", refuses;
        /// Change a channel account's settings.
        ChannelSetConfig(ChannelSetConfig) = "channel_set_config"
            => ChannelSetConfigResponse(ChannelSetConfigResponse) = "channel_set_config_response",
                ids "channel-set-config", refuses;
        /// Start a channel.
        ChannelStart(ChannelStart) = "channel_start"
            => ChannelStartResponse(ChannelStartResponse) = "channel_start_response",
                ids "channel-start", refuses;
        /// Stop a channel.
        ChannelStop(ChannelStop) = "channel_stop"
            => ChannelStopResponse(ChannelStopResponse) = "channel_stop_response",
                ids "channel-stop", refuses;
        /// List a channel's pending pairing codes.
        ChannelPairingsList(ChannelPairingsList) = "channel_pairings_list"
            => ChannelPairingsListResponse(ChannelPairingsListResponse) = "channel_pairings_list_response",
                ids "channel-pairings-list", refuses;
        /// Bind a paired chat to an agent conversation.
        ChannelPairingBind(ChannelPairingBind) = "channel_pairing_bind"
            => ChannelPairingBindResponse(ChannelPairingBindResponse) = "channel_pairing_bind_response",
                ids "channel-pairing-bind", refuses;
        /// List chat routes.
        ChannelRoutesList(ChannelRoutesList) = "channel_routes_list"
            => ChannelRoutesListResponse(ChannelRoutesListResponse) = "channel_routes_list_response",
                ids "channel-routes-list", refuses;
        /// List the chats a channel account has seen.
        ChannelTargetsList(ChannelTargetsList) = "channel_targets_list"
            => ChannelTargetsListResponse(ChannelTargetsListResponse) = "channel_targets_list_response",
                ids "channel-targets-list", refuses;
        /// Route a discovered chat to an agent conversation.
        ChannelTargetBind(ChannelTargetBind) = "channel_target_bind"
            => ChannelTargetBindResponse(ChannelTargetBindResponse) = "channel_target_bind_response",
                ids "channel-target-bind", refuses;
        /// Remove a chat's route.
        ChannelRouteRemove(ChannelRouteRemove) = "channel_route_remove"
            => ChannelRouteRemoveResponse(ChannelRouteRemoveResponse) = "channel_route_remove_response",
                ids "channel-route-remove", refuses;
        /// Point a chat's route at another agent conversation.
        ChannelRouteUpdate(ChannelRouteUpdate) = "channel_route_update"
            => ChannelRouteUpdateResponse(ChannelRouteUpdateResponse) = "channel_route_update_response",
                ids "channel-route-update", refuses;
        // The files and editor group (files.rs, file_ops.rs).
        /// Search file paths under a working directory.
        SearchFiles(SearchFiles) = "search_files"
            => SearchFilesResponse(SearchFilesResponse) = "search_files_response", ids "search-files", refuses;
        /// Search file contents, line by line.
        GrepInFiles(GrepInFiles) = "grep_in_files"
            => GrepInFilesResponse(GrepInFilesResponse) = "grep_in_files_response", ids "grep-in-files", refuses;
        /// List one directory.
        ListInDirectory(ListInDirectory) = "list_in_directory"
            => ListInDirectoryResponse(ListInDirectoryResponse) = "list_in_directory_response",
                ids "list-in-directory", refuses;
        /// List a subtree.
        GetTree(GetTree) = "get_tree"
            => GetTreeResponse(GetTreeResponse) = "get_tree_response", ids "get-tree", refuses;
        /// Read a file.
        ReadFile(ReadFile) = "read_file"
            => ReadFileResponse(ReadFileResponse) = "read_file_response", ids "read-file", refuses;
        /// Overwrite a file.
        WriteFile(WriteFile) = "write_file"
            => WriteFileResponse(WriteFileResponse) = "write_file_response", ids "write-file", refuses;
        /// Start pushing `file_changed` for a file; no answer.
        WatchFile(WatchFile) = "watch_file", request_id;
        /// Stop pushing `file_changed` for a file; no answer.
        UnwatchFile(UnwatchFile) = "unwatch_file", request_id;
        /// Replace text in a file.
        EditFile(EditFile) = "edit_file"
            => EditFileResponse(EditFileResponse) = "edit_file_response", ids "edit-file", refuses;
        /// Collaborative-editing operations on a file (also a server event); no answer.
        FileOps(FileOps) = "file_ops";
        // The terminal group (terminal.rs): no `request_id`, no answers but the pushes.
        /// Start a terminal.
        TerminalSpawn(TerminalSpawn) = "terminal_spawn";
        /// Type into a terminal.
        TerminalInput(TerminalInput) = "terminal_input";
        /// Resize a terminal.
        TerminalResize(TerminalResize) = "terminal_resize";
        /// End a terminal.
        TerminalKill(TerminalKill) = "terminal_kill";
        // The git group (git.rs).
        /// List branches.
        SearchBranches(SearchBranches) = "search_branches"
            => SearchBranchesResponse(SearchBranchesResponse) = "search_branches_response",
                ids "search-branches", refuses;
        /// Check out (or create) a branch.
        CheckoutBranch(CheckoutBranch) = "checkout_branch"
            => CheckoutBranchResponse(CheckoutBranchResponse) = "checkout_branch_response",
                ids "checkout-branch", refuses;
        // The working directories group (cwd.rs).
        /// Set the working directory of conversations without their own.
        SetBootWorkingDirectory(SetBootWorkingDirectory) = "set_boot_working_directory"
            => SetBootWorkingDirectoryResponse(SetBootWorkingDirectoryResponse)
                = "set_boot_working_directory_response", ids "set-boot-working-directory", refuses;
        /// Read every conversation's working directory.
        GetCwdMap(GetCwdMap) = "get_cwd_map"
            => GetCwdMapResponse(GetCwdMapResponse) = "get_cwd_map_response", ids "get-cwd-map", refuses;
        // The memory group (memory.rs).
        /// List an agent's memory files, answered in chunks until one has `done: true`.
        ListMemory(ListMemory) = "list_memory"
            => ListMemoryResponse(ListMemoryResponse) = "list_memory_response", ids "list-memory", refuses, stream;
        /// Read the git history of an agent's memory.
        MemoryHistory(MemoryHistory) = "memory_history"
            => MemoryHistoryResponse(MemoryHistoryResponse) = "memory_history_response", ids "memory-history", refuses;
        /// Read a memory file at a commit.
        MemoryFileAtRef(MemoryFileAtRef) = "memory_file_at_ref"
            => MemoryFileAtRefResponse(MemoryFileAtRefResponse) = "memory_file_at_ref_response",
                ids "memory-file-at-ref", refuses;
        /// Show the diff of a memory commit.
        MemoryCommitDiff(MemoryCommitDiff) = "memory_commit_diff"
            => MemoryCommitDiffResponse(MemoryCommitDiffResponse) = "memory_commit_diff_response",
                ids "memory-commit-diff", refuses;
        /// Read a memory file.
        ReadMemoryFile(ReadMemoryFile) = "read_memory_file"
            => ReadMemoryFileResponse(ReadMemoryFileResponse) = "read_memory_file_response",
                ids "read-memory-file", refuses;
        /// Write and commit a memory file.
        WriteMemoryFile(WriteMemoryFile) = "write_memory_file"
            => WriteMemoryFileResponse(WriteMemoryFileResponse) = "write_memory_file_response",
                ids "write-memory-file", refuses;
        /// Delete and commit a memory file.
        DeleteMemoryFile(DeleteMemoryFile) = "delete_memory_file"
            => DeleteMemoryFileResponse(DeleteMemoryFileResponse) = "delete_memory_file_response",
                ids "delete-memory-file", refuses;
        /// Turn on an agent's memory filesystem.
        EnableMemfs(EnableMemfs) = "enable_memfs"
            => EnableMemfsResponse(EnableMemfsResponse) = "enable_memfs_response", ids "enable-memfs", refuses;
        // The models and providers group (models.rs).
        /// List the model catalog.
        ListModels(ListModels) = "list_models"
            => ListModelsResponse(ListModelsResponse) = "list_models_response", ids "list-models", refuses;
        /// List the providers the user can connect.
        ListConnectProviders(ListConnectProviders) = "list_connect_providers"
            => ListConnectProvidersResponse(ListConnectProvidersResponse) = "list_connect_providers_response",
                ids "list-connect-providers", refuses;
        /// Store a provider's credentials.
        ConnectProvider(ConnectProvider) = "connect_provider"
            => ConnectProviderResponse(ConnectProviderResponse) = "connect_provider_response",
                ids "connect-provider", refuses;
        /// Remove a provider's credentials.
        DisconnectProvider(DisconnectProvider) = "disconnect_provider"
            => DisconnectProviderResponse(DisconnectProviderResponse) = "disconnect_provider_response",
                ids "disconnect-provider", refuses;
        /// Read a ChatGPT plan's usage.
        ChatgptUsageRead(ChatgptUsageRead) = "chatgpt_usage_read"
            => ChatgptUsageReadResponse(ChatgptUsageReadResponse) = "chatgpt_usage_read_response",
                ids "chatgpt-usage-read", refuses;
        /// Change a conversation's model.
        UpdateModel(UpdateModel) = "update_model"
            => UpdateModelResponse(UpdateModelResponse) = "update_model_response", ids "update-model", refuses;
        /// Set a conversation's toolset preference.
        UpdateToolset(UpdateToolset) = "update_toolset"
            => UpdateToolsetResponse(UpdateToolsetResponse) = "update_toolset_response", ids "update-toolset", refuses;
        // The skills group (skills.rs).
        /// Enable a skill.
        SkillEnable(SkillEnable) = "skill_enable"
            => SkillEnableResponse(SkillEnableResponse) = "skill_enable_response", ids "skill-enable", refuses;
        /// Disable a skill.
        SkillDisable(SkillDisable) = "skill_disable"
            => SkillDisableResponse(SkillDisableResponse) = "skill_disable_response", ids "skill-disable", refuses;
        // The settings and experiments group (settings.rs).
        /// Read an agent's reflection settings.
        GetReflectionSettings(GetReflectionSettings) = "get_reflection_settings"
            => GetReflectionSettingsResponse(GetReflectionSettingsResponse) = "get_reflection_settings_response",
                ids "get-reflection-settings", refuses;
        /// Change an agent's reflection settings.
        SetReflectionSettings(SetReflectionSettings) = "set_reflection_settings"
            => SetReflectionSettingsResponse(SetReflectionSettingsResponse) = "set_reflection_settings_response",
                ids "set-reflection-settings", refuses;
        /// List the experiment flags.
        GetExperiments(GetExperiments) = "get_experiments"
            => GetExperimentsResponse(GetExperimentsResponse) = "get_experiments_response",
                ids "get-experiments", refuses;
        /// Turn an experiment flag on or off.
        SetExperiment(SetExperiment) = "set_experiment"
            => SetExperimentResponse(SetExperimentResponse) = "set_experiment_response",
                ids "set-experiment", refuses;
        // The secrets group (secrets.rs).
        /// List an agent's secrets.
        SecretList(SecretList) = "secret_list"
            => SecretListResponse(SecretListResponse) = "secret_list_response", ids "secret-list", refuses;
        /// Change an agent's secrets.
        SecretApply(SecretApply) = "secret_apply"
            => SecretApplyResponse(SecretApplyResponse) = "secret_apply_response", ids "secret-apply", refuses;
    }
    inbound {
        /// The legacy input form, converted to `input`.
        LegacyMessage(LegacyMessage) = "message";
        /// Accepted and ignored.
        Pong(Pong) = "pong";
    }
    events {
        /// Streamed agent output or a lifecycle notice.
        StreamDelta(StreamDelta) = "stream_delta"
            { channel: Stream, coalesces: false };
        /// The end of a turn.
        TurnFinished(TurnFinished) = "turn_finished"
            { channel: Control, coalesces: false };
        /// Agent loop state snapshot.
        UpdateLoopStatus(UpdateLoopStatus) = "update_loop_status"
            { channel: Stream, coalesces: true };
        /// Device status snapshot.
        UpdateDeviceStatus(UpdateDeviceStatus) = "update_device_status"
            { channel: Stream, coalesces: true };
        /// Queue snapshot and removals.
        UpdateQueue(UpdateQueue) = "update_queue"
            { channel: Stream, coalesces: true };
        /// Subagent snapshot.
        UpdateSubagentState(UpdateSubagentState) = "update_subagent_state"
            { channel: Stream, coalesces: true };
        /// A tool approval question.
        ControlRequest(ControlRequest) = "control_request"
            { channel: Control, coalesces: false };
        /// A file changed: the agent's edit, as an event of its runtime; an `edit_file`'s, sent
        /// to its socket without envelope (the same body a client sends as a command).
        FileOps(FileOps) = "file_ops"
            { channel: Control, coalesces: false, both_ways, direct };
        /// The source device is ready to hand a conversation over (to the `teleport_request`er).
        TeleportReady(TeleportReady) = "teleport_ready"
            { channel: Control, coalesces: false };
    }
    notifications {
        /// Asks the owning controller to run one of its tools.
        ExternalToolCallRequest(ExternalToolCallRequest) = "external_tool_call_request";
        /// The scheduled tasks changed (enveloped when the scheduler sent it).
        CronsUpdated(CronsUpdated) = "crons_updated";
        /// This project's answer to a frame it could not accept.
        Error(ErrorFrame) = "error";
        // The messaging-channels group (channels/): broadcast without an envelope.
        /// Letta's channel service: the channel list changed.
        ChannelsUpdated(ChannelsUpdated) = "channels_updated";
        /// Letta's channel service: a channel's accounts changed.
        ChannelAccountsUpdated(ChannelAccountsUpdated) = "channel_accounts_updated";
        /// Letta's channel service: a channel's pending pairings changed.
        ChannelPairingsUpdated(ChannelPairingsUpdated) = "channel_pairings_updated";
        /// Letta's channel service: a channel's routes changed.
        ChannelRoutesUpdated(ChannelRoutesUpdated) = "channel_routes_updated";
        /// Letta's channel service: a channel's discovered targets changed.
        ChannelTargetsUpdated(ChannelTargetsUpdated) = "channel_targets_updated";
        // The files and editor group (files.rs).
        /// A watched file changed.
        FileChanged(FileChanged) = "file_changed";
        // The terminal group (terminal.rs).
        /// A terminal started.
        TerminalSpawned(TerminalSpawned) = "terminal_spawned";
        /// A terminal's output.
        TerminalOutput(TerminalOutput) = "terminal_output";
        /// A terminal's process ended.
        TerminalExited(TerminalExited) = "terminal_exited";
        // Memory and skills (memory.rs, skills.rs).
        /// Files of an agent's memory changed.
        MemoryUpdated(MemoryUpdated) = "memory_updated";
        /// The available skills changed.
        SkillsUpdated(SkillsUpdated) = "skills_updated";
    }
}

impl RuntimeEvent {
    /// Whether a newer event of the same type and scope may replace this one while both wait in
    /// a backed-up queue: the table's [`Delivery::coalesces`], except that an `update_queue`
    /// that removes items never does (a later snapshot does not repeat the removals).
    pub fn coalesces(&self) -> bool {
        match self {
            Self::UpdateQueue(update) if !update.removed.is_empty() => false,
            other => other.delivery().coalesces,
        }
    }
}

impl ClientFrame {
    /// Parses a frame from JSON text.
    pub fn from_json(text: &str) -> Result<Self, FrameError> {
        Self::from_value(parse_json(text)?)
    }
}

impl ServerFrame {
    /// Parses a frame from JSON text.
    pub fn from_json(text: &str) -> Result<Self, FrameError> {
        Self::from_value(parse_json(text)?)
    }
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_snapshots_go_to_the_stream_channel_and_coalesce_queue_removals_do_not() {
        let delivery = |name: &str| {
            EVENTS
                .iter()
                .find(|event| event.name == name)
                .map(|event| event.delivery)
        };
        let stream = |coalesces| {
            Some(Delivery {
                channel: Channel::Stream,
                coalesces,
            })
        };
        assert_eq!(delivery("stream_delta"), stream(false));
        assert_eq!(delivery("update_loop_status"), stream(true));
        assert_eq!(delivery("turn_finished").map(|d| d.channel), Some(Channel::Control));

        let snapshot = RuntimeEvent::from(UpdateQueue {
            queue: Vec::new(),
            removed: Vec::new(),
        });
        assert_eq!(
            snapshot.delivery(),
            Delivery {
                channel: Channel::Stream,
                coalesces: true
            }
        );
        assert!(snapshot.coalesces());
        let removal = RuntimeEvent::from(UpdateQueue {
            queue: Vec::new(),
            removed: vec![QueueRemoval {
                client_message_id: "cm-1".into(),
                disposition: RemovalDisposition::Dequeued,
            }],
        });
        assert!(!removal.coalesces(), "a later snapshot does not repeat the removals");
    }
}
