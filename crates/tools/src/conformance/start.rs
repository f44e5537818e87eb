//! `runtime_start` (docs/protocol.md §3.2, §5 (a)): creating, joining, failing, agent-free.

use serde_json::{Value, json};

use super::driver::{Ctx, Scope, Step, Verdict, assistant_text, ensure, in_order};
use super::wire::Conn;

/// The replay after a `runtime_start` answer, in order: device, loop `WAITING_ON_INPUT`, an empty
/// queue, no subagents.
fn replay_in_order(conn: &Conn, scope: &Scope, frames: &[Value]) -> Step<()> {
    let answer = |f: &Value| f["type"] == "runtime_start_response";
    let queue = |f: &Value| f["type"] == "update_queue" && scope.owns(f) && f["queue"] == json!([]);
    let subagents = |f: &Value| f["type"] == "update_subagent_state" && scope.owns(f) && f["subagents"] == json!([]);
    in_order(
        conn,
        frames,
        &[
            ("`runtime_start_response`", &answer),
            ("`update_device_status`", &scope.frame("update_device_status")),
            (
                "`update_loop_status` WAITING_ON_INPUT",
                &scope.status("WAITING_ON_INPUT"),
            ),
            ("`update_queue` with an empty queue", &queue),
            ("`update_subagent_state` with no subagents", &subagents),
        ],
    )
}

/// §5 (a): `app_server_info`, then `runtime_start` creating an agent and a conversation.
pub(crate) async fn create(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let info = a
        .request(json!({"type": "app_server_info"}), "app_server_info_response")
        .await?;
    ensure!(
        info["success"] == true,
        "`app_server_info_response` says `success: {}`",
        info["success"]
    );
    ensure!(
        info["protocol_version"] == 1,
        "`app_server_info_response` says `protocol_version: {}`; this kit checks version 1",
        info["protocol_version"]
    );
    let from = a.mark();
    let (scope, answer) = ctx.start_answered(&mut a, json!({})).await?;
    ensure!(
        answer["created"] == json!({"agent": true, "conversation": true}),
        "`runtime_start_response` says `created: {}`, not both created",
        answer["created"]
    );
    ensure!(
        scope.agent_id().is_some() && answer["agent"]["id"].as_str() == scope.agent_id(),
        "the answer's `agent.id` ({}) is not its runtime's `agent_id` ({})",
        answer["agent"]["id"],
        scope.runtime()["agent_id"]
    );
    ensure!(
        answer["conversation"]["id"].as_str() == Some(scope.conversation_id()),
        "the answer's `conversation.id` ({}) is not its runtime's `conversation_id` ({})",
        answer["conversation"]["id"],
        scope.conversation_id()
    );
    replay_in_order(&a, &scope, a.since(from))?;
    a.close().await;
    Ok(None)
}

/// §3.2: a second `runtime_start` naming the agent and the conversation joins them.
pub(crate) async fn join(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let mut b = ctx.connect("B").await?;
    let from = b.mark();
    let answer = ctx.join(&mut b, &scope).await?;
    ensure!(
        answer["created"] == json!({"agent": false, "conversation": false}),
        "B: joining says `created: {}`",
        answer["created"]
    );
    ensure!(
        scope.owns(&answer),
        "B: joining answers the runtime {}, not {scope}",
        answer["runtime"]
    );
    replay_in_order(&b, &scope, b.since(from))?;
    b.close().await;
    a.close().await;
    Ok(None)
}

/// §2.5, §3.2: `runtime_start` for an agent that does not exist fails, its other fields empty.
pub(crate) async fn unknown_agent(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let missing = ctx.unique("agent-conformance-missing");
    let answer = a
        .request(
            json!({"type": "runtime_start", "agent_id": missing, "create_conversation": {}}),
            "runtime_start_response",
        )
        .await?;
    ensure!(
        answer["success"] == false,
        "A: `runtime_start` for agent {missing} succeeded"
    );
    ensure!(
        answer["error"].as_str().is_some_and(|error| !error.is_empty()),
        "A: the failed `runtime_start_response` gives no `error`"
    );
    for field in ["runtime", "agent", "conversation"] {
        ensure!(
            answer[field].is_null(),
            "A: the failed `runtime_start_response` has `{field}: {}`, not null",
            answer[field]
        );
    }
    ensure!(
        answer["created"] == json!({"agent": false, "conversation": false}),
        "A: the failed `runtime_start_response` says `created: {}`",
        answer["created"]
    );
    a.close().await;
    Ok(None)
}

/// §8.2: `runtime_start` with `create_conversation.body.{model, system}` and no agent makes an
/// agent-free conversation, which runs turns.
pub(crate) async fn agent_free(ctx: &Ctx) -> Verdict {
    ctx.require("agent_free_conversations")?;
    let mut a = ctx.connect("A").await?;
    let body = json!({"model": ctx.options.model, "system": "You are the conformance kit's assistant."});
    let answer = a
        .request(
            json!({"type": "runtime_start", "create_conversation": {"body": body}}),
            "runtime_start_response",
        )
        .await?;
    ensure!(
        answer["success"] == true,
        "A: the agent-free `runtime_start` failed: {}",
        answer["error"].as_str().unwrap_or("no error given")
    );
    let scope = Scope::of(&answer)?;
    ensure!(
        scope.agent_id().is_none(),
        "A: the agent-free conversation's runtime has `agent_id: {}`, not null",
        scope.runtime()["agent_id"]
    );
    ensure!(
        answer["created"]["conversation"] == true,
        "A: the agent-free `runtime_start` says `created: {}`",
        answer["created"]
    );
    let reply = ctx.unique("agent-free reply");
    let end = ctx.turn(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    let text = assistant_text(a.between(0, end));
    ensure!(text == reply, "A: the agent-free turn replied {text:?}, not {reply:?}");
    a.close().await;
    Ok(None)
}
