//! Turns (docs/protocol.md §5 (b) and (i)): a streamed reply, and a model that fails.

use serde_json::{Value, json};

use super::driver::{Ctx, Step, Verdict, assistant_text, ended_normally, ensure, find, find_delta, in_order};
use super::wire::{Conn, delta, loop_status};

/// §5 (b): a turn started at once, its statuses, its streamed text and its end.
pub(crate) async fn streamed(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let reply = format!("conformance streamed reply {}", ctx.unique("text"));
    let from = a.mark();
    let (accepted, message_id) = ctx.say_with_id(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    ensure!(
        accepted["disposition"] == "started",
        "A: an input to an idle conversation was accepted with `disposition: {}`, not started",
        accepted["disposition"]
    );
    ensure!(
        scope.owns(&accepted),
        "A: `input_accepted` names the runtime {}",
        accepted["runtime"]
    );
    let end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, end)?;
    let turn = a.between(from, end);
    let accepted_frame = |f: &Value| f["type"] == "input_accepted";
    in_order(
        &a,
        turn,
        &[
            ("`input_accepted`", &accepted_frame),
            (
                "`update_loop_status` SENDING_API_REQUEST",
                &scope.status("SENDING_API_REQUEST"),
            ),
            ("`update_device_status` with `is_processing: true`", &scope.device(true)),
            (
                "`update_loop_status` PROCESSING_API_RESPONSE",
                &scope.status("PROCESSING_API_RESPONSE"),
            ),
            ("an `assistant_message` delta", &scope.delta("assistant_message")),
            ("a `usage_statistics` delta", &scope.delta("usage_statistics")),
            ("a `stop_reason` delta", &scope.delta("stop_reason")),
            (
                "`update_loop_status` WAITING_ON_INPUT",
                &scope.status("WAITING_ON_INPUT"),
            ),
            (
                "`update_device_status` with `is_processing: false`",
                &scope.device(false),
            ),
            ("`turn_finished`", &scope.frame("turn_finished")),
        ],
    )?;
    let own = |f: &Value| scope.owns(f);
    let first_status = turn.iter().find_map(|f| loop_status(f).filter(|_| own(f)));
    ensure!(
        first_status == Some("SENDING_API_REQUEST"),
        "A: the turn's first loop status is {first_status:?}, not SENDING_API_REQUEST"
    );
    let deltas: Vec<&Value> = turn.iter().filter(|f| f["type"] == "stream_delta" && own(f)).collect();
    ensure!(
        deltas.last().and_then(|f| delta(f)) == Some("stop_reason")
            && deltas.last().is_some_and(|f| f["delta"]["stop_reason"] == "end_turn"),
        "A: the turn's last delta is {:?}, not `stop_reason` end_turn",
        deltas.last().map(|f| &f["delta"])
    );
    let streamed = assistant_text(turn);
    ensure!(
        streamed == reply,
        "A: the `assistant_message` deltas say {streamed:?}, not {reply:?}"
    );
    same_message(&a, turn)?;
    for unexpected in ["update_queue", "user_message"] {
        let found = find(turn, |f| {
            scope.owns(f) && (f["type"] == unexpected || delta(f) == Some(unexpected))
        });
        ensure!(
            found.is_none(),
            "A: a turn started at once came with `{unexpected}` (only queued inputs are echoed and queued)"
        );
    }
    let stop_run = find_delta(turn, "stop_reason").map(|f| &f["delta"]["run_id"]);
    let finished = a.frame(end);
    if let (Some(Value::String(stop_run)), Value::String(turn_run)) = (stop_run, &finished["run_id"]) {
        ensure!(
            stop_run == turn_run,
            "A: `turn_finished.run_id` is {turn_run}, but the run that ended was {stop_run}"
        );
    }
    let consumed: Vec<&Value> = turn
        .iter()
        .filter_map(|f| f["loop_status"]["client_message_ids_by_run_id"].as_object())
        .flat_map(|runs| runs.values())
        .filter_map(Value::as_array)
        .flatten()
        .collect();
    ensure!(
        consumed.is_empty() || consumed.contains(&&json!(message_id)),
        "A: `client_message_ids_by_run_id` never lists the input's `client_message_id` {message_id}"
    );
    a.close().await;
    Ok(None)
}

/// The `assistant_message` fragments of `frames` are one message: the same `otid`, or the same
/// `id` (§3.5).
fn same_message(conn: &Conn, frames: &[Value]) -> Step<()> {
    let fragments: Vec<&Value> = frames
        .iter()
        .filter(|f| delta(f) == Some("assistant_message"))
        .map(|f| &f["delta"])
        .collect();
    ensure!(
        fragments.len() > 1,
        "{}: a reply of several words came in {} `assistant_message` delta(s), not streamed",
        conn.name(),
        fragments.len()
    );
    let alike = |key: &str| {
        fragments
            .iter()
            .all(|d| d[key].is_string() && d[key] == fragments[0][key])
    };
    ensure!(
        alike("otid") || alike("id"),
        "{}: the `assistant_message` fragments of one reply share neither `otid` nor `id`",
        conn.name()
    );
    Ok(())
}

/// §5 (i): the model answers HTTP 400: the turn ends with an error, with a terminal `loop_error`
/// (after `turn_finished` on Letta 0.32.18, before it on 0.34.12), and the conversation keeps
/// working.
pub(crate) async fn model_error(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let from = a.mark();
    let message = ctx.unique("conformance model error");
    ctx.say(&mut a, &scope, &format!("[[fail: 400 {message}]]")).await?;
    let end = ctx.turn_finished(&mut a, &scope).await?;
    let finished = a.frame(end).clone();
    let reason = finished["stop_reason"].as_str().unwrap_or_default().to_owned();
    ensure!(
        !["end_turn", "cancelled", "requires_approval"].contains(&reason.as_str()),
        "A: a turn whose model answered HTTP 400 finished with `stop_reason: {reason}`"
    );
    if reason == "error" {
        ensure!(
            finished["error"].as_str().is_some_and(|error| !error.is_empty()),
            "A: `turn_finished` with `stop_reason: error` gives no `error`"
        );
    }
    let turn = a.between(from, end).to_vec();
    let failing = |f: &Value| delta(f) == Some("loop_error") && f["delta"]["is_terminal"] == false && scope.owns(f);
    in_order(
        &a,
        &turn,
        &[
            ("a non-terminal `loop_error` delta", &failing),
            (
                "`update_loop_status` WAITING_ON_INPUT",
                &scope.status("WAITING_ON_INPUT"),
            ),
            ("`turn_finished`", &scope.frame("turn_finished")),
        ],
    )?;
    // Letta 0.32.18 sends the terminal `loop_error` after `turn_finished`, 0.34.12 before it.
    let terminal = |f: &Value| delta(f) == Some("loop_error") && f["delta"]["is_terminal"] == true && scope.owns(f);
    let terminal = match find(&turn, terminal) {
        Some(at) => turn[at].clone(),
        None => {
            let at = a.wait_for("terminal `loop_error`", terminal).await?;
            a.frame(at).clone()
        }
    };
    let reported = format!("{} {}", terminal["delta"], finished);
    let model_said = turn.iter().any(|f| f["delta"].to_string().contains(&message));
    ensure!(
        model_said || reported.contains(&message),
        "A: nothing in the failed turn reports the model's error {message:?}"
    );
    let reply = ctx.unique("after the error");
    let from = a.mark();
    let next = ctx.turn(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    let text = assistant_text(a.between(from, next));
    ensure!(
        text == reply,
        "A: the turn after the error replied {text:?}, not {reply:?}"
    );
    a.close().await;
    Ok(None)
}
