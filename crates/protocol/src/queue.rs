//! The conversation queue: `update_queue` and `remove_queue_item` (docs/protocol.md §3.4).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{MessageContent, RuntimeScope};

/// Runtime event: a full snapshot of the queue plus the exact removals since the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateQueue {
    /// Items still waiting, oldest first.
    pub queue: Vec<QueueMessage>,
    /// Removal transitions since the previous `update_queue` (may be empty).
    pub removed: Vec<QueueRemoval>,
}

/// One waiting queue item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueMessage {
    /// Server item id `q-<n>`, for `remove_queue_item`.
    pub id: String,
    /// The client's id, or one the server generated.
    pub client_message_id: String,
    /// What kind of item.
    pub kind: QueueItemKind,
    /// Where it came from.
    pub source: QueueItemSource,
    /// Message content for `message` items, otherwise the item's text.
    pub content: MessageContent,
    /// ISO-8601 enqueue time.
    pub enqueued_at: String,
    /// Letta 0.34: `true` while the item is parked by an `abort_message`, until `resume_queue`
    /// or the next `input` releases it; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

open_enum! {
    /// Kind of a queue item.
    pub enum QueueItemKind {
        /// User input.
        Message = "message",
        /// A background task finished.
        TaskNotification = "task_notification",
        /// A scheduled prompt fired.
        CronPrompt = "cron_prompt",
        /// Tool results awaiting a continuation (a batch barrier).
        ApprovalResult = "approval_result",
        /// A UI overlay action (a batch barrier).
        OverlayAction = "overlay_action",
        /// A mod asked to continue.
        ModContinue = "mod_continue",
    }
}

open_enum! {
    /// Origin of a queue item.
    pub enum QueueItemSource {
        /// A client `input`.
        User = "user",
        /// A background task.
        TaskNotification = "task_notification",
        /// The scheduler.
        Cron = "cron",
        /// A subagent.
        Subagent = "subagent",
        /// The server itself.
        System = "system",
        /// A messaging channel.
        Channel = "channel",
    }
}

/// One removal transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueRemoval {
    /// The removed item's client id.
    pub client_message_id: String,
    /// Why it left the queue.
    pub disposition: RemovalDisposition,
}

open_enum! {
    /// Why an item left the queue.
    pub enum RemovalDisposition {
        /// It became (part of) a turn.
        Dequeued = "dequeued",
        /// It was removed without running.
        Cancelled = "cancelled",
    }
}

/// Removes a waiting item by its `q-…` id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoveQueueItem {
    /// Correlates the response.
    pub request_id: String,
    /// The scope whose queue to edit.
    pub runtime: RuntimeScope,
    /// The item's server id.
    pub item_id: String,
}

/// Result of `remove_queue_item`; always followed by an `update_queue` snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoveQueueItemResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// `false` if no such item was waiting.
    pub success: bool,
    /// Echo of the item id.
    pub item_id: String,
}

/// Starts a conversation's waiting queue items if it is idle (Letta 0.34.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResumeQueue {
    /// The conversation.
    pub runtime: RuntimeScope,
    /// When present the server answers with `resume_queue_response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Result of `resume_queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResumeQueueResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the scope.
    pub runtime: RuntimeScope,
    /// How many queue items the command released.
    pub resumed: u64,
    /// Whether the queue was resumed.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl crate::Refuse for ResumeQueue {
    fn refuse(&self, error: String) -> Option<ResumeQueueResponse> {
        Some(ResumeQueueResponse {
            request_id: self.request_id.clone()?,
            runtime: self.runtime.clone(),
            resumed: 0,
            success: false,
            error: Some(error),
        })
    }
}
