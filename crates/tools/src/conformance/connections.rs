//! Several sockets on one runtime (docs/protocol.md §5 (g) and (h)): reconnecting with `sync`,
//! a drop in the middle of a turn, a second connection.

use serde_json::{Value, json};

use super::abort::streaming;
use super::approvals::{ask, decide, pending, standard};
use super::driver::{Ctx, Scope, Step, Stop, Verdict, assistant_text, ended_normally, ensure, find, in_order};
use super::wire::{Conn, delta, loop_status, summarize};

/// `sync` with a `request_id` from a socket that has not subscribed yet: the replay (device, loop,
/// queue, subagents), then `sync_response`. Returns where the replay begins.
async fn sync(conn: &mut Conn, scope: &Scope) -> Step<usize> {
    let from = conn.mark();
    let answer = conn
        .request(json!({"type": "sync", "runtime": scope.runtime()}), "sync_response")
        .await?;
    ensure!(
        answer["success"] == true,
        "{}: `sync` failed: {}",
        conn.name(),
        answer["error"].as_str().unwrap_or("no error given")
    );
    let frames = conn.since(from);
    let answered = |f: &Value| f["type"] == "sync_response";
    in_order(
        conn,
        frames,
        &[
            (
                "`update_device_status` (a fresh socket's first replay has it)",
                &scope.frame("update_device_status"),
            ),
            ("`update_loop_status`", &scope.frame("update_loop_status")),
            ("`update_queue`", &scope.frame("update_queue")),
            ("`update_subagent_state`", &scope.frame("update_subagent_state")),
            ("`sync_response`", &answered),
        ],
    )?;
    Ok(from)
}

/// §5 (g): after a finished turn the socket closes; a new socket's `sync` replays the idle
/// conversation and the new socket runs a turn.
pub(crate) async fn reconnect_sync(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    ctx.turn(&mut a, &scope, &format!("[[reply: {}]]", ctx.unique("before")))
        .await?;
    a.close().await;
    let mut b = ctx.connect("B").await?;
    let from = sync(&mut b, &scope).await?;
    let status = b
        .since(from)
        .iter()
        .find_map(|f| loop_status(f).filter(|_| scope.owns(f)));
    ensure!(
        status == Some("WAITING_ON_INPUT"),
        "B: the replay of an idle conversation shows the loop {status:?}"
    );
    let reply = ctx.unique("after the reconnect");
    let from = b.mark();
    let end = ctx.turn(&mut b, &scope, &format!("[[reply: {reply}]]")).await?;
    let text = assistant_text(b.between(from, end));
    ensure!(
        text == reply,
        "B: the turn after the reconnect replied {text:?}, not {reply:?}"
    );
    b.close().await;
    Ok(None)
}

/// A reply that streams for 50 s, longer than any wait of the kit: only a turn cancelled at the
/// drop ends in time.
const ENDLESS: &str = "[[deltas: 200]] [[delay: 250]]";

/// §5 (g), §8.7: the only subscriber drops while the reply streams; the turn is cancelled, and a
/// new socket finds the conversation idle and runs a turn in it.
pub(crate) async fn reconnect_midturn(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    ctx.say(&mut a, &scope, ENDLESS).await?;
    streaming(ctx, &mut a, &scope).await?;
    a.close().await;
    let mut b = ctx.connect("B").await?;
    let from = sync(&mut b, &scope).await?;
    let idle = scope.status("WAITING_ON_INPUT");
    if find(b.since(from), &idle).is_none() {
        b.wait_for(
            "`update_loop_status` WAITING_ON_INPUT: the dropped turn never ended",
            idle,
        )
        .await?;
    }
    let reply = ctx.unique("after the drop");
    let from = b.mark();
    ctx.say(&mut b, &scope, &format!("[[reply: {reply}]]")).await?;
    // The dropped turn's own `turn_finished` may still come (real Letta ends it late): the new
    // turn's is the first after the new turn's first model request.
    b.seek(from);
    b.wait_for(
        "`update_loop_status` SENDING_API_REQUEST of the new turn",
        scope.status("SENDING_API_REQUEST"),
    )
    .await?;
    let end = ctx.turn_finished(&mut b, &scope).await?;
    if let Err(Stop::Fail(reason)) = ended_normally(&b, end) {
        let known = b.frame(end)["error"]
            .as_str()
            .is_some_and(|error| error.contains("already has an active run"));
        return Err(Stop::Fail(if known {
            format!(
                "{reason}: the conversation stays wedged after its only subscriber dropped mid-turn \
                 (the Letta 0.34.12 defect of docs/protocol.md §8.7)"
            )
        } else {
            reason
        }));
    }
    let text = assistant_text(b.between(from, end));
    ensure!(
        text == reply,
        "B: the turn after the drop replied {text:?}, not {reply:?}"
    );
    b.close().await;
    Ok(None)
}

/// The `stream_delta` message types and `turn_finished`s of `frames` for `scope`, in order.
fn stream_of(frames: &[Value], scope: &Scope) -> Vec<String> {
    frames
        .iter()
        .filter(|f| scope.owns(f))
        .filter_map(|f| match delta(f) {
            Some(message_type) => Some(message_type.to_owned()),
            None => (f["type"] == "turn_finished").then(|| "turn_finished".to_owned()),
        })
        .collect()
}

/// §5 (h): B joins A's conversation; A's turn asks a question both see; C, connecting while it
/// is pending, is asked too; B answers; all see the turn end. Then A leaves in the middle of a
/// reply, and B gets all of it.
pub(crate) async fn second_connection(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, standard()).await?;
    let mut b = ctx.connect("B").await?;
    let joined = ctx.join(&mut b, &scope).await?;
    ensure!(
        joined["created"] == json!({"agent": false, "conversation": false}),
        "B: joining says `created: {}`",
        joined["created"]
    );
    let (from_a, from_b) = (a.mark(), b.mark());
    let question = ask(ctx, &mut a, &scope).await?;
    let asked = |f: &Value| f["type"] == "control_request" && f["request_id"] == json!(question.request_id);
    ctx.during_turn(&mut b, &scope, "`control_request` (the question A's turn asked)", asked)
        .await?;

    let mut c = ctx.connect("C").await?;
    let from_c = c.mark();
    ctx.join(&mut c, &scope).await?;
    let replay = c.since(from_c);
    ensure!(
        find(replay, asked).is_some(),
        "C: joining while a question is pending did not replay its `control_request`; C got: {}",
        summarize(replay)
    );
    ensure!(
        find(replay, pending(&question.request_id)).is_some(),
        "C: the replay's device status does not list the pending question"
    );
    ensure!(
        find(replay, scope.status("WAITING_ON_APPROVAL")).is_some(),
        "C: the replay's loop status is not WAITING_ON_APPROVAL"
    );

    decide(&mut b, &scope, &question, json!({"behavior": "allow"})).await?;
    let mut ends = Vec::new();
    for conn in [&mut a, &mut b, &mut c] {
        let end = ctx.turn_finished(conn, &scope).await?;
        ended_normally(conn, end)?;
        ends.push(end);
    }
    let (seen_a, seen_b) = (
        stream_of(a.between(from_a, ends[0]), &scope),
        stream_of(b.between(from_b, ends[1]), &scope),
    );
    ensure!(
        seen_a == seen_b,
        "A and B saw different events of the same turn: A {seen_a:?}, B {seen_b:?}"
    );
    let foreign = b
        .between(from_b, ends[1])
        .iter()
        .find(|f| f["type"] == "input_accepted" && !f["request_id"].as_str().is_some_and(|id| id.contains("-B-")));
    ensure!(
        foreign.is_none(),
        "B got the `input_accepted` of another socket's input: {}",
        foreign.map(Value::to_string).unwrap_or_default()
    );
    c.close().await;

    let from_b = b.mark();
    ctx.say(&mut a, &scope, "[[deltas: 20]] [[delay: 50]]").await?;
    streaming(ctx, &mut b, &scope).await?;
    a.close().await;
    let end = ctx.turn_finished(&mut b, &scope).await?;
    ended_normally(&b, end)?;
    let text = assistant_text(b.between(from_b, end));
    let whole: String = (0..20).map(|i| format!("t{i} ")).collect();
    ensure!(
        text == whole,
        "B: the reply went on after A left, but B got {text:?}, not all of it"
    );
    b.close().await;
    Ok(None)
}
