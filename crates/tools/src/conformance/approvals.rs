//! Approvals (docs/protocol.md §3.9, §5 (c)): `Bash` with a command that is not read-only, in
//! `standard` mode, asks the controller; allowed it runs, denied the model gets the denial.

use serde_json::{Value, json};

use super::driver::{Ctx, Scope, Step, Stop, Verdict, assistant_text, ended_normally, ensure, find, in_order};
use super::wire::{Conn, delta, loop_status};

/// A harmless shell command that is not read-only, so `standard` mode asks before it runs (real
/// Letta refuses to run `sleep` in the foreground).
pub(crate) const COMMAND: &str = ": conformance";

/// A pending question: its `request_id` (`perm-<tool_call_id>`) and the tool call's id.
pub(crate) struct Question {
    pub(crate) request_id: String,
    pub(crate) tool_call_id: String,
}

/// The runtime_start fields of a conversation in `standard` mode.
pub(crate) fn standard() -> Value {
    json!({"mode": "standard"})
}

/// Has the model call `Bash` with [`COMMAND`] and waits for the question, checking the run that
/// asked: the call, `stop_reason` requires_approval, `approval_classification_end` listing it as
/// asked, loop WAITING_ON_APPROVAL, then the `control_request`, which names the call.
pub(crate) async fn ask(ctx: &Ctx, conn: &mut Conn, scope: &Scope) -> Step<Question> {
    let from = conn.mark();
    let arguments = json!({"command": COMMAND, "description": "the conformance kit's command"});
    ctx.say(conn, scope, &format!("[[tool: Bash {arguments}]]")).await?;
    let at = ctx
        .during_turn(conn, scope, "`control_request`", scope.frame("control_request"))
        .await?;
    let frames = conn.between(from, at);
    let call = |f: &Value| delta(f) == Some("approval_request_message") && f["delta"]["tool_call"]["name"] == "Bash";
    let stop = |f: &Value| delta(f) == Some("stop_reason") && f["delta"]["stop_reason"] == "requires_approval";
    let classified = |f: &Value| delta(f) == Some("approval_classification_end");
    let waiting = |f: &Value| loop_status(f) == Some("WAITING_ON_APPROVAL");
    let asked = |f: &Value| f["type"] == "control_request";
    in_order(
        conn,
        frames,
        &[
            ("an `approval_request_message` delta calling Bash", &call),
            ("a `stop_reason` delta requires_approval", &stop),
            ("an `approval_classification_end` delta", &classified),
            ("`update_loop_status` WAITING_ON_APPROVAL", &waiting),
            ("`control_request`", &asked),
        ],
    )?;
    let call = &frames[find(frames, call).unwrap_or_default()]["delta"]["tool_call"];
    let tool_call_id = call["tool_call_id"].as_str().unwrap_or_default().to_owned();
    let classification = &frames[find(frames, classified).unwrap_or_default()]["delta"];
    ensure!(
        classification["user_input_tool_call_ids"]
            .as_array()
            .is_some_and(|ids| ids.contains(&json!(tool_call_id))),
        "{}: `approval_classification_end` does not list the Bash call {tool_call_id} as asked: {classification}",
        conn.name()
    );
    let question = conn.frame(at);
    let request = &question["request"];
    ensure!(
        request["subtype"] == "can_use_tool" && request["tool_name"] == "Bash",
        "{}: the `control_request` asks {}",
        conn.name(),
        request
    );
    ensure!(
        request["tool_call_id"] == json!(tool_call_id) && request["input"]["command"] == COMMAND,
        "{}: the `control_request` is not about the Bash call {tool_call_id}: {request}",
        conn.name()
    );
    let request_id = question["request_id"].as_str().unwrap_or_default().to_owned();
    ensure!(
        request_id == format!("perm-{tool_call_id}"),
        "{}: the `control_request` has `request_id: {request_id}`, not perm-{tool_call_id}",
        conn.name()
    );
    let listed = pending(&request_id);
    conn.wait_for("`update_device_status` listing the question as pending", |f| {
        listed(f) && scope.owns(f)
    })
    .await?;
    drop(listed);
    Ok(Question {
        request_id,
        tool_call_id,
    })
}

/// Whether `frame` is a device status whose `pending_control_requests` lists `request_id`.
pub(crate) fn pending(request_id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |f: &Value| {
        f["type"] == "update_device_status"
            && f["device_status"]["pending_control_requests"]
                .as_array()
                .is_some_and(|pending| pending.iter().any(|p| p["request_id"] == request_id))
    }
}

/// The `input` answering `question` with `decision`.
pub(crate) fn answer(scope: &Scope, question: &Question, decision: Value) -> Value {
    json!({
        "type": "input",
        "runtime": scope.runtime(),
        "payload": {"kind": "approval_response", "request_id": question.request_id, "decision": decision},
    })
}

/// Answers `question` with `decision` and checks the answer was taken (`accepted: true`, no
/// `disposition`).
pub(crate) async fn decide(conn: &mut Conn, scope: &Scope, question: &Question, decision: Value) -> Step<()> {
    let accepted = conn
        .request(answer(scope, question, decision), "input_accepted")
        .await?;
    ensure!(
        accepted["accepted"] == true,
        "{}: the answer to {} was refused: {}",
        conn.name(),
        question.request_id,
        accepted["error"].as_str().unwrap_or("no error given")
    );
    ensure!(
        accepted.get("disposition").is_none_or(Value::is_null),
        "{}: the accepted answer has `disposition: {}` (only messages have one)",
        conn.name(),
        accepted["disposition"]
    );
    Ok(())
}

/// A tool call's course among `frames`: a `client_tool_start` exactly when it was `allowed` to run,
/// then `client_tool_end` and the final `tool_return_message`, both with `status`; returns the
/// result.
pub(crate) fn tool_outcome(
    conn: &Conn,
    frames: &[Value],
    question: &Question,
    allowed: bool,
    status: &str,
) -> Step<Value> {
    let id = json!(question.tool_call_id);
    let lifecycle = |message_type: &'static str| {
        let id = id.clone();
        move |f: &Value| delta(f) == Some(message_type) && f["delta"]["tool_call_id"] == id
    };
    let started = find(frames, lifecycle("client_tool_start"));
    ensure!(
        started.is_some() == allowed,
        "{}: {}",
        conn.name(),
        if allowed {
            "the allowed tool never started (`client_tool_start`)"
        } else {
            "the denied tool got a `client_tool_start`"
        }
    );
    let ended = lifecycle("client_tool_end");
    let result = |f: &Value| delta(f) == Some("tool_return_message") && result_of(f, &id).is_some();
    in_order(
        conn,
        &frames[started.unwrap_or_default()..],
        &[
            ("`client_tool_end`", &ended),
            ("the final `tool_return_message`", &result),
        ],
    )?;
    let end = &frames[find(frames, ended).unwrap_or_default()]["delta"];
    ensure!(
        end["status"] == status,
        "{}: `client_tool_end` says `status: {}`, not {status}",
        conn.name(),
        end["status"]
    );
    let Some(returned) = frames.iter().rev().find_map(|f| result_of(f, &id)) else {
        return Err(Stop::Fail(format!("{}: no tool result", conn.name())));
    };
    ensure!(
        returned["status"] == status,
        "{}: the tool's result says `status: {}`, not {status}",
        conn.name(),
        returned["status"]
    );
    Ok(returned)
}

/// The entry of a `tool_return_message` delta's `tool_returns` for the call `id`, or (for a
/// delta without the array) its top-level fields.
fn result_of(frame: &Value, id: &Value) -> Option<Value> {
    if delta(frame) != Some("tool_return_message") {
        return None;
    }
    let delta = &frame["delta"];
    match delta["tool_returns"].as_array() {
        Some(returns) => returns.iter().find(|r| &r["tool_call_id"] == id).cloned(),
        None => (&delta["tool_call_id"] == id).then(|| delta.clone()),
    }
}

/// §5 (c), allowed: the tool runs and the model's next run gets its result.
pub(crate) async fn allow(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, standard()).await?;
    let question = ask(ctx, &mut a, &scope).await?;
    let from = a.mark();
    decide(&mut a, &scope, &question, json!({"behavior": "allow"})).await?;
    let end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, end)?;
    let after = a.between(from, end);
    let cleared =
        |f: &Value| f["type"] == "update_device_status" && f["device_status"]["pending_control_requests"] == json!([]);
    ensure!(
        find(after, cleared).is_some(),
        "A: no device status shows the question answered (`pending_control_requests: []`)"
    );
    let executing = |f: &Value| {
        loop_status(f) == Some("EXECUTING_CLIENT_SIDE_TOOL")
            && f["loop_status"]["executing_tool_call_ids"]
                .as_array()
                .is_some_and(|ids| ids.contains(&json!(question.tool_call_id)))
    };
    let started = |f: &Value| delta(f) == Some("client_tool_start");
    in_order(
        &a,
        after,
        &[
            (
                "`update_loop_status` EXECUTING_CLIENT_SIDE_TOOL running the call",
                &executing,
            ),
            ("`client_tool_start`", &started),
        ],
    )?;
    tool_outcome(&a, after, &question, true, "success")?;
    let text = assistant_text(after);
    ensure!(
        text.starts_with("Tool result: "),
        "A: after the tool ran the model replied {text:?}: it did not get the result in a new run"
    );
    a.close().await;
    Ok(None)
}

/// §5 (c), denied: no `client_tool_start`, the denial is the result, the turn goes on; a second
/// answer finds the question no longer pending.
pub(crate) async fn deny(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, standard()).await?;
    let question = ask(ctx, &mut a, &scope).await?;
    let from = a.mark();
    let denial = ctx.unique("Not now");
    decide(
        &mut a,
        &scope,
        &question,
        json!({"behavior": "deny", "message": denial}),
    )
    .await?;
    let end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, end)?;
    let after = a.between(from, end);
    let returned = tool_outcome(&a, after, &question, false, "error")?;
    ensure!(
        returned["tool_return"] == json!(denial),
        "A: the denied call's result is {}, not the denial {denial:?}",
        returned["tool_return"]
    );
    let text = assistant_text(after);
    ensure!(
        text == format!("Tool result: {denial}"),
        "A: after the denial the model replied {text:?}: it did not get the denial as the result"
    );
    let again = a
        .request(
            answer(&scope, &question, json!({"behavior": "allow"})),
            "input_accepted",
        )
        .await?;
    ensure!(
        again["accepted"] == false,
        "A: a second answer to {} was accepted; the question is no longer pending",
        question.request_id
    );
    a.close().await;
    Ok(None)
}
