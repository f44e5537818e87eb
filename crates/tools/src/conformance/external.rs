//! External (controller-owned) tools (docs/protocol.md §3.11, §5 (d)).

use serde_json::{Value, json};

use super::approvals::{Question, tool_outcome};
use super::driver::{Ctx, Scope, Step, Verdict, assistant_text, ended_normally, ensure, find, in_order};
use super::wire::{Conn, delta, loop_status};

/// The kit's tool's name.
const TOOL: &str = "conformance_lookup";

/// The kit's tool: a registration group of one tool.
fn group() -> Value {
    json!({"tools": [{
        "name": TOOL,
        "description": "Looks a city up (a tool the conformance kit runs itself).",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }]})
}

/// A conversation in `unrestricted` mode with the kit's tool registered in its `runtime_start`.
async fn start_with_tool(ctx: &Ctx, conn: &mut Conn) -> Step<Scope> {
    ctx.start(conn, json!({"mode": "unrestricted", "external_tools": [group()]}))
        .await
}

/// Has the model call the kit's tool; waits for the `external_tool_call_request` and checks the
/// run before it (the call, auto-allowed, executing, `client_tool_start`) and the request.
/// Returns the call and where the turn's frames begin.
async fn call(ctx: &Ctx, conn: &mut Conn, scope: &Scope) -> Step<(Question, usize)> {
    let from = conn.mark();
    ctx.say(conn, scope, &format!(r#"[[tool: {TOOL} {{"city": "Paris"}}]]"#))
        .await?;
    let at = ctx
        .during_turn(conn, scope, "`external_tool_call_request`", |f| {
            f["type"] == "external_tool_call_request"
        })
        .await?;
    let frames = conn.between(from, at);
    let called = |f: &Value| delta(f) == Some("approval_request_message") && f["delta"]["tool_call"]["name"] == TOOL;
    let classified = |f: &Value| delta(f) == Some("approval_classification_end");
    let executing = |f: &Value| loop_status(f) == Some("EXECUTING_CLIENT_SIDE_TOOL");
    let started = |f: &Value| delta(f) == Some("client_tool_start") && f["delta"]["tool_name"] == TOOL;
    in_order(
        conn,
        frames,
        &[
            ("an `approval_request_message` delta calling the tool", &called),
            ("an `approval_classification_end` delta", &classified),
            ("`update_loop_status` EXECUTING_CLIENT_SIDE_TOOL", &executing),
            ("a `client_tool_start` delta", &started),
        ],
    )?;
    let tool_call_id = frames[find(frames, called).unwrap_or_default()]["delta"]["tool_call"]["tool_call_id"].clone();
    let classification = &frames[find(frames, classified).unwrap_or_default()]["delta"];
    ensure!(
        classification["auto_allowed_tool_call_ids"]
            .as_array()
            .is_some_and(|ids| ids.contains(&tool_call_id)),
        "{}: in unrestricted mode the external tool's call is not auto-allowed: {classification}",
        conn.name()
    );
    let request = conn.frame(at);
    ensure!(
        request["tool_name"] == TOOL && request["tool_call_id"] == tool_call_id,
        "{}: the `external_tool_call_request` is not for the call {tool_call_id}: {request}",
        conn.name()
    );
    ensure!(
        request["input"] == json!({"city": "Paris"}),
        "{}: the `external_tool_call_request` has `input: {}`, not the model's arguments",
        conn.name(),
        request["input"]
    );
    ensure!(
        request.get("runtime").is_none_or(|_| scope.owns(request)),
        "{}: the `external_tool_call_request` names the runtime {}",
        conn.name(),
        request["runtime"]
    );
    let question = Question {
        request_id: request["request_id"].as_str().unwrap_or_default().to_owned(),
        tool_call_id: tool_call_id.as_str().unwrap_or_default().to_owned(),
    };
    Ok((question, from))
}

/// Answers the call with `answer` (`result` or `error`), waits for the turn's end and returns the
/// tool's result as the server reported it, and the model's reply; `from` is where the turn's
/// frames begin.
async fn finish(
    ctx: &Ctx,
    conn: &mut Conn,
    scope: &Scope,
    (question, from): &(Question, usize),
    answer: Value,
) -> Step<(Value, String)> {
    let mut response = json!({"type": "external_tool_call_response", "request_id": question.request_id});
    if let (Some(response), Some(answer)) = (response.as_object_mut(), answer.as_object()) {
        response.extend(answer.clone());
    }
    conn.send(&response).await?;
    let end = ctx.turn_finished(conn, scope).await?;
    ended_normally(conn, end)?;
    let turn = conn.between(*from, end);
    let status = if answer.get("result").is_some() {
        "success"
    } else {
        "error"
    };
    let returned = tool_outcome(conn, turn, question, true, status)?;
    Ok((returned, assistant_text(turn)))
}

/// §5 (d): the tool is called, the controller's result reaches the model.
pub(crate) async fn result(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = start_with_tool(ctx, &mut a).await?;
    let called = call(ctx, &mut a, &scope).await?;
    let answer = ctx.unique("Sunny");
    let result = json!({"result": {"content": [{"type": "text", "text": answer}]}});
    let (returned, reply) = finish(ctx, &mut a, &scope, &called, result).await?;
    ensure!(
        returned["tool_return"] == json!(answer),
        "A: the tool's result is {}, not the controller's {answer:?}",
        returned["tool_return"]
    );
    ensure!(
        reply == format!("Tool result: {answer}"),
        "A: after the tool the model replied {reply:?}: it did not get the controller's result"
    );
    a.close().await;
    Ok(None)
}

/// §3.11: an answer with `error` gives the result `External tool execution error: <error>`.
pub(crate) async fn error(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = start_with_tool(ctx, &mut a).await?;
    let called = call(ctx, &mut a, &scope).await?;
    let failure = ctx.unique("lookup service unavailable");
    let (returned, reply) = finish(ctx, &mut a, &scope, &called, json!({"error": failure})).await?;
    let expected = format!("External tool execution error: {failure}");
    ensure!(
        returned["tool_return"] == json!(expected),
        "A: the failed tool's result is {}, not {expected:?}",
        returned["tool_return"]
    );
    ensure!(
        reply == format!("Tool result: {expected}"),
        "A: after the failed tool the model replied {reply:?}"
    );
    a.close().await;
    Ok(None)
}

/// §3.11: tools registered with `runtime_external_tools_update` (when the server claims it) are
/// offered and called like those of `runtime_start`.
pub(crate) async fn update(ctx: &Ctx) -> Verdict {
    ctx.require("runtime_external_tools_update")?;
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({"mode": "unrestricted"})).await?;
    let registered = a
        .request(
            json!({
                "type": "runtime_external_tools_update",
                "updates": [{"runtimes": [scope.runtime()], "external_tools": [group()]}],
            }),
            "runtime_external_tools_update_response",
        )
        .await?;
    ensure!(
        registered["success"] == true,
        "A: `runtime_external_tools_update` failed: {}",
        registered["error"].as_str().unwrap_or("no error given")
    );
    let called = call(ctx, &mut a, &scope).await?;
    let answer = ctx.unique("Cloudy");
    let result = json!({"result": {"content": [{"type": "text", "text": answer}]}});
    let (returned, _) = finish(ctx, &mut a, &scope, &called, result).await?;
    ensure!(
        returned["tool_return"] == json!(answer),
        "A: the tool's result is {}, not the controller's {answer:?}",
        returned["tool_return"]
    );
    a.close().await;
    Ok(None)
}
