//! Tier-B commands the server claims (docs/protocol.md §4): the read-only ones, checked on the
//! kit's own agent and conversation. The schema check of every answer is the wire's; these
//! checks add that each answer succeeds and shows what the kit made.

use serde_json::{Value, json};

use super::driver::{Ctx, Stop, Verdict, assistant_text, ensure};
use super::wire::Conn;

/// Fails unless a command's answer says `success: true`.
fn succeeded(conn: &Conn, answer: &Value) -> Result<(), Stop> {
    ensure!(
        answer["success"] == true,
        "{}: `{}` failed: {}",
        conn.name(),
        answer["type"].as_str().unwrap_or_default(),
        answer["error"].as_str().unwrap_or("no error given")
    );
    Ok(())
}

/// §4.6: `agent_list` with `query_text` (the agent's unique name) lists the agent.
pub(crate) async fn agent_list(ctx: &Ctx) -> Verdict {
    ctx.require("agent_management")?;
    let mut a = ctx.connect("A").await?;
    let (scope, started) = ctx.start_answered(&mut a, json!({})).await?;
    let name = started["agent"]["name"].clone();
    let answer = a
        .request(
            json!({"type": "agent_list", "query": {"query_text": name}}),
            "agent_list_response",
        )
        .await?;
    succeeded(&a, &answer)?;
    let listed = answer["agents"]
        .as_array()
        .is_some_and(|agents| agents.iter().any(|agent| agent["id"].as_str() == scope.agent_id()));
    ensure!(
        listed,
        "A: `agent_list` with `query_text: {name}` does not list the agent of that name"
    );
    a.close().await;
    Ok(None)
}

/// §4.6: `agent_retrieve` answers the agent; an unknown id fails with `agent: null`.
pub(crate) async fn agent_retrieve(ctx: &Ctx) -> Verdict {
    ctx.require("agent_management")?;
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let agent_id = scope.agent_id().unwrap_or_default().to_owned();
    let answer = a
        .request(
            json!({"type": "agent_retrieve", "agent_id": agent_id}),
            "agent_retrieve_response",
        )
        .await?;
    succeeded(&a, &answer)?;
    ensure!(
        answer["agent"]["id"] == json!(agent_id),
        "A: `agent_retrieve` of {agent_id} answered the agent {}",
        answer["agent"]["id"]
    );
    let missing = ctx.unique("agent-conformance-missing");
    let answer = a
        .request(
            json!({"type": "agent_retrieve", "agent_id": missing}),
            "agent_retrieve_response",
        )
        .await?;
    ensure!(
        answer["success"] == false && answer["agent"].is_null(),
        "A: `agent_retrieve` of an agent that does not exist answered `success: {}`, `agent: {}`",
        answer["success"],
        answer["agent"]
    );
    a.close().await;
    Ok(None)
}

/// §4.7: `conversation_list` for the agent lists its conversation (after a turn in it).
pub(crate) async fn conversation_list(ctx: &Ctx) -> Verdict {
    ctx.require("conversation_management")?;
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    ctx.turn(&mut a, &scope, &format!("[[reply: {}]]", ctx.unique("listed")))
        .await?;
    let answer = a
        .request(
            json!({"type": "conversation_list", "query": {"agent_id": scope.agent_id()}}),
            "conversation_list_response",
        )
        .await?;
    succeeded(&a, &answer)?;
    let listed = answer["conversations"].as_array().is_some_and(|all| {
        all.iter()
            .any(|conversation| conversation["id"] == scope.conversation_id())
    });
    ensure!(
        listed,
        "A: `conversation_list` for the agent does not list its conversation {}",
        scope.conversation_id()
    );
    a.close().await;
    Ok(None)
}

/// §4.7: `conversation_messages_list` shows a finished turn's reply.
pub(crate) async fn conversation_messages_list(ctx: &Ctx) -> Verdict {
    ctx.require("conversation_management")?;
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let reply = ctx.unique("remembered reply");
    ctx.turn(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    let answer = a
        .request(
            json!({"type": "conversation_messages_list", "conversation_id": scope.conversation_id()}),
            "conversation_messages_list_response",
        )
        .await?;
    succeeded(&a, &answer)?;
    let messages: Vec<Value> = answer["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|message| json!({"type": "stream_delta", "delta": message}))
        .collect();
    let text = assistant_text(&messages);
    ensure!(
        text.contains(&reply),
        "A: the conversation's messages do not hold the reply {reply:?} (their assistant text: {text:?})"
    );
    a.close().await;
    Ok(None)
}

/// §4.3: `list_models` lists the kit's model. No capability claims it: a server that answers it as
/// unsupported skips the check.
pub(crate) async fn list_models(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let id = a.request_id("list_models");
    a.send(&json!({"type": "list_models", "request_id": id})).await?;
    let at = a
        .wait_for("`list_models_response`", |f| {
            f["request_id"] == id && (f["type"] == "list_models_response" || f["type"] == "error")
        })
        .await?;
    let answer = a.frame(at).clone();
    a.close().await;
    if answer["type"] == "error" {
        return Err(Stop::Skip(format!(
            "the server answers `list_models` with an `error` frame ({}: {})",
            answer["code"].as_str().unwrap_or_default(),
            answer["message"].as_str().unwrap_or_default()
        )));
    }
    let model = &ctx.options.model;
    ensure!(
        answer["success"] == true,
        "A: `list_models` failed: {}",
        answer["error"].as_str().unwrap_or("no error given")
    );
    let listed = answer["entries"]
        .as_array()
        .is_some_and(|entries| entries.iter().any(|entry| entry["handle"] == json!(model)));
    let available = answer["available_handles"]
        .as_array()
        .is_some_and(|handles| handles.contains(&json!(model)));
    ensure!(
        listed || available,
        "A: `list_models` does not list the kit's model {model} (the model server lists it at GET /v1/models)"
    );
    Ok(None)
}

/// §4.2: `list_memory` for the kit's agent answers in chunks, the last with `done: true`.
pub(crate) async fn list_memory(ctx: &Ctx) -> Verdict {
    ctx.require("memory_management")?;
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let id = a.request_id("list_memory");
    a.send(&json!({"type": "list_memory", "request_id": id, "agent_id": scope.agent_id()}))
        .await?;
    let at = a
        .wait_for("`list_memory_response` with `done: true`", |f| {
            f["request_id"] == id
                && (f["type"] == "error" || (f["type"] == "list_memory_response" && f["done"] == true))
        })
        .await?;
    let last = a.frame(at).clone();
    ensure!(
        last["type"] == "list_memory_response",
        "A: `list_memory` was answered with an `error` frame: {}",
        last["message"]
    );
    a.close().await;
    Ok((last["success"] != true).then(|| {
        format!(
            "answered `success: false` ({})",
            last["error"].as_str().unwrap_or("no error given")
        )
    }))
}
