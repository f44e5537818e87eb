//! The commands on a conversation's input: `input` (docs/protocol.md §3.3, §3.9),
//! `remove_queue_item` (§3.4), `abort_message` (§3.12) and `resume_queue` (§4.3).

use std::sync::Arc;

use letta_app_server_protocol::{
    AbortMessage, AbortMessageResponse, ErrorCode, ErrorFrame, FrameType, Input, InputPayload, RemoveQueueItem,
    RemoveQueueItemResponse, ResumeQueue, ResumeQueueResponse,
};

use super::{Caller, scoped, unknown_runtime};
use crate::engine::conversation::{Conversation, acknowledgement};

/// `input`: a new message (a turn or a queue item) or an answer to an approval question.
pub(super) async fn input(caller: &Arc<dyn Caller>, input: Input) -> Option<Arc<Conversation>> {
    let Some(conversation) = scoped(caller, &input.runtime, ("input", input.request_id.as_ref())).await else {
        if let Some(answer) = acknowledgement(&input, None, Some(unknown_runtime(&input.runtime))) {
            caller.send(answer);
        }
        return None;
    };
    let engine = caller.engine();
    match &input.payload {
        InputPayload::CreateMessage(payload) => conversation.submit(engine, caller.as_peer(), &input, payload).await,
        InputPayload::ApprovalResponse(answer) => {
            conversation
                .answer_approval(engine, caller.as_peer(), &input, answer)
                .await
        }
        // This server never prepares the destination of a teleport (`runtime_start.teleport_id`,
        // docs/protocol.md §4.15), so no continuation matches a handoff: refused as real Letta
        // refuses an unexpected one, and never run.
        InputPayload::TeleportContinue(_) => {
            let error = "Teleport continuation does not match the expected handoff";
            match acknowledgement(&input, None, Some(error.into())) {
                Some(answer) => caller.send(answer),
                None => caller.send_frame(
                    ErrorFrame {
                        request_id: None,
                        code: ErrorCode::Unsupported,
                        message: error.into(),
                        frame_type: Some(Input::TYPE.into()),
                    }
                    .into(),
                ),
            }
        }
    }
    Some(conversation)
}

/// `remove_queue_item`: the response, then an authoritative queue snapshot.
pub(super) async fn remove_queue_item(caller: &Arc<dyn Caller>, remove: RemoveQueueItem) -> Option<Arc<Conversation>> {
    let scope = &remove.runtime;
    let conversation = scoped(caller, scope, ("remove_queue_item", Some(&remove.request_id))).await;
    match &conversation {
        Some(conversation) => {
            conversation
                .remove_queue_item(caller.engine(), caller.as_peer(), &remove)
                .await
        }
        None => caller.send(RemoveQueueItemResponse {
            request_id: remove.request_id,
            success: false,
            item_id: remove.item_id,
        }),
    }
    conversation
}

/// `abort_message`: cancels the running turn, if any.
pub(super) async fn abort_message(caller: &Arc<dyn Caller>, abort: AbortMessage) -> Option<Arc<Conversation>> {
    let conversation = scoped(caller, &abort.runtime, ("abort_message", abort.request_id.as_ref())).await;
    if let Some(conversation) = &conversation {
        conversation
            .abort(caller.engine(), Some(caller.as_peer()), abort.request_id)
            .await;
    } else if let Some(request_id) = abort.request_id {
        let error = Some(unknown_runtime(&abort.runtime));
        caller.send(AbortMessageResponse {
            request_id,
            runtime: abort.runtime,
            aborted: false,
            success: false,
            error,
        });
    }
    conversation
}

/// `resume_queue`: releases the queue items an abort parked; the queue then moves on, as after
/// every command naming a conversation. An unknown scope gets the response with `success: false`
/// (a client awaiting it is not failed by an `error` frame first), or, without a `request_id`,
/// the `error` frame.
pub(super) async fn resume_queue(caller: &Arc<dyn Caller>, resume: ResumeQueue) -> Option<Arc<Conversation>> {
    let engine = caller.engine();
    let Some(request_id) = resume.request_id else {
        let conversation = scoped(caller, &resume.runtime, ("resume_queue", None)).await?;
        conversation.release_paused(engine, caller.as_peer(), None).await;
        return Some(conversation);
    };
    match caller.subscribe(&resume.runtime, false).await {
        Ok(conversation) => {
            conversation
                .release_paused(engine, caller.as_peer(), Some(request_id))
                .await;
            Some(conversation)
        }
        Err(_) => {
            let error = Some(unknown_runtime(&resume.runtime));
            caller.send(ResumeQueueResponse {
                request_id,
                runtime: resume.runtime,
                resumed: 0,
                success: false,
                error,
            });
            None
        }
    }
}
