//! `abort_message` (docs/protocol.md §3.12, §5 (f)).

use serde_json::{Value, json};

use super::driver::{Ctx, Scope, Step, Verdict, assistant_text, ended_normally, ensure, find, in_order};
use super::wire::{Conn, delta, describe};

/// A reply the kit's model streams for about 5 s.
pub(crate) const LONG: &str = "[[deltas: 100]] [[delay: 50]]";

/// The `abort_message` of `scope`.
fn abort(scope: &Scope) -> Value {
    json!({"type": "abort_message", "runtime": scope.runtime()})
}

/// §3.12: an abort with nothing running answers `aborted: false`, `success: true`.
pub(crate) async fn idle(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let answer = a.request(abort(&scope), "abort_message_response").await?;
    ensure!(
        answer["aborted"] == false && answer["success"] == true,
        "A: aborting an idle conversation was answered `aborted: {}`, `success: {}`",
        answer["aborted"],
        answer["success"]
    );
    ensure!(
        scope.owns(&answer),
        "A: `abort_message_response` names the runtime {}",
        answer["runtime"]
    );
    a.close().await;
    Ok(None)
}

/// Waits for the first `assistant_message` delta of the scope: the reply is streaming.
pub(crate) async fn streaming(ctx: &Ctx, conn: &mut Conn, scope: &Scope) -> Step<usize> {
    ctx.during_turn(
        conn,
        scope,
        "`assistant_message` delta",
        scope.delta("assistant_message"),
    )
    .await
}

/// §5 (f): an abort while the reply streams: loop WAITING_ON_INPUT and the `Interrupted`
/// status before the answer, `turn_finished` cancelled after it, no further deltas of the run;
/// the next input runs.
pub(crate) async fn streaming_turn(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    ctx.say(&mut a, &scope, LONG).await?;
    streaming(ctx, &mut a, &scope).await?;
    let from = a.mark();
    let answer = a.request(abort(&scope), "abort_message_response").await?;
    ensure!(
        answer["aborted"] == true && answer["success"] == true,
        "A: aborting a streaming turn was answered `aborted: {}`, `success: {}`",
        answer["aborted"],
        answer["success"]
    );
    let end = ctx.turn_finished(&mut a, &scope).await?;
    let finished = a.frame(end);
    ensure!(
        finished["stop_reason"] == "cancelled",
        "A: the aborted turn finished with `stop_reason: {}`, not cancelled",
        finished["stop_reason"]
    );
    let frames = a.between(from, end);
    let interrupted = |f: &Value| {
        delta(f) == Some("status") && f["delta"]["message"] == "Interrupted" && f["delta"]["level"] == "warning"
    };
    let answered = |f: &Value| f["type"] == "abort_message_response";
    in_order(
        &a,
        frames,
        &[
            (
                "`update_loop_status` WAITING_ON_INPUT",
                &scope.status("WAITING_ON_INPUT"),
            ),
            ("a `status` delta `Interrupted` (warning)", &interrupted),
            ("`abort_message_response`", &answered),
        ],
    )?;
    let after_answer = &frames[find(frames, answered).unwrap_or_default()..];
    let late = find(after_answer, |f| {
        matches!(delta(f), Some("assistant_message" | "stop_reason")) && scope.owns(f)
    });
    ensure!(
        late.is_none(),
        "A: the aborted run went on after `abort_message_response` ({})",
        late.map(|at| describe(&after_answer[at])).unwrap_or_default()
    );
    let reply = ctx.unique("after the abort");
    let from = a.mark();
    let accepted = ctx.say(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    ensure!(
        accepted["disposition"] == "started" || accepted["disposition"] == "queued",
        "A: the input after the abort was accepted with `disposition: {}`",
        accepted["disposition"]
    );
    let next = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, next)?;
    let text = assistant_text(a.between(from, next));
    ensure!(
        text == reply,
        "A: the turn after the abort replied {text:?}, not {reply:?}"
    );
    a.close().await;
    Ok(None)
}
