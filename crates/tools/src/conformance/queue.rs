//! The queue (docs/protocol.md §3.4, §5 (e)): inputs sent while a turn runs wait, and run
//! together; `remove_queue_item` takes one out.
//!
//! Every input carries a `client_message_id`, which Letta 0.34.12 requires of queued inputs. The
//! busy turn is a reply the kit's model streams for about 5 seconds; the inputs are sent as soon
//! as it started.

use serde_json::{Value, json};

use super::driver::{Ctx, Scope, Step, Verdict, assistant_text, ended_normally, ensure, find};
use super::wire::Conn;

/// A turn that streams for about 5 s: time for a few round trips while it runs, even on a
/// loaded machine.
const BUSY: &str = "[[deltas: 20]] [[delay: 250]]";

/// Sends an input while the conversation is busy; checks it is queued and returns its
/// `client_message_id`.
async fn queue(ctx: &Ctx, conn: &mut Conn, scope: &Scope, text: &str) -> Step<String> {
    let (accepted, id) = ctx.say_with_id(conn, scope, text).await?;
    ensure!(
        accepted["disposition"] == "queued",
        "{}: an input sent while a turn ran was accepted with `disposition: {}`, not queued",
        conn.name(),
        accepted["disposition"]
    );
    Ok(id)
}

/// Waits for the scope's `update_queue` whose waiting items are exactly `ids`, in order; returns
/// it.
async fn queued(conn: &mut Conn, scope: &Scope, ids: &[&str]) -> Step<Value> {
    let listed = |f: &Value| {
        f["queue"].as_array().is_some_and(|queue| {
            queue
                .iter()
                .map(|item| item["client_message_id"].as_str())
                .eq(ids.iter().map(|id| Some(*id)))
        })
    };
    let at = conn
        .wait_for(&format!("`update_queue` listing {ids:?}"), |f| {
            f["type"] == "update_queue" && scope.owns(f) && listed(f)
        })
        .await?;
    Ok(conn.frame(at).clone())
}

/// The `removed` entries of the scope's `update_queue`s among `frames` with `disposition`.
fn removed<'a>(frames: &'a [Value], scope: &Scope, disposition: &str) -> Vec<&'a str> {
    let snapshot = scope.frame("update_queue");
    frames
        .iter()
        .filter(|f| snapshot(f))
        .filter_map(|f| f["removed"].as_array())
        .flatten()
        .filter(|removal| removal["disposition"] == disposition)
        .filter_map(|removal| removal["client_message_id"].as_str())
        .collect()
}

/// §5 (e): two inputs sent while busy wait in the queue, then run as one turn (its reply follows
/// the newer one); a repeated `client_message_id` is acknowledged and runs nothing.
pub(crate) async fn coalesce(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let from = a.mark();
    ctx.say(&mut a, &scope, BUSY).await?;
    let second = queue(ctx, &mut a, &scope, &ctx.unique("first queued")).await?;
    let reply = ctx.unique("merged reply");
    let third = queue(ctx, &mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    let item = queued(&mut a, &scope, &[&second, &third]).await?;
    let first_item = &item["queue"][0];
    ensure!(
        first_item["kind"] == "message" && first_item["source"] == "user",
        "A: a queued input is listed as `kind: {}`, `source: {}`",
        first_item["kind"],
        first_item["source"]
    );
    let repeated = a
        .request(scope.input(&format!("[[reply: {reply}]]"), &third), "input_accepted")
        .await?;
    ensure!(
        repeated["accepted"] == true && repeated["disposition"] == "queued",
        "A: repeating a queued input's `client_message_id` was answered `accepted: {}`, `disposition: {}`; \
         it is acknowledged as queued",
        repeated["accepted"],
        repeated["disposition"]
    );
    let busy_end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, busy_end)?;
    let merged_end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, merged_end)?;
    let merged = a.between(busy_end, merged_end);
    let echo = find(merged, scope.delta("user_message")).map(|at| &merged[at]["delta"]);
    ensure!(
        echo.is_some_and(|echo| echo["otid"] == json!(second)),
        "A: the queued turn's first `user_message` echo is {echo:?}; its `otid` is the first queued input's \
         `client_message_id` {second}"
    );
    let dequeued = removed(merged, &scope, "dequeued");
    ensure!(
        dequeued.contains(&second.as_str()) && dequeued.contains(&third.as_str()),
        "A: the `update_queue`s of the queued turn list {dequeued:?} as dequeued, not both queued inputs"
    );
    let text = assistant_text(merged);
    ensure!(
        text == reply,
        "A: the queued turn replied {text:?}, not {reply:?}: the two inputs did not run as one turn"
    );
    let all = a.between(from, merged_end);
    let echoes_before_dequeue = find(all, scope.delta("user_message"))
        < find(all, |f| {
            f["type"] == "update_queue" && !removed(std::slice::from_ref(f), &scope, "dequeued").is_empty()
        });
    ensure!(
        echoes_before_dequeue,
        "A: the dequeued `update_queue` came before the `user_message` echo"
    );
    a.close().await;
    Ok(None)
}

/// §3.4: `remove_queue_item` takes a waiting input out (`cancelled`); it never runs, and a second
/// removal finds nothing.
pub(crate) async fn remove(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    ctx.say(&mut a, &scope, BUSY).await?;
    let text = format!("{} [[reply: the removed input ran]]", ctx.unique("to remove"));
    let waiting = queue(ctx, &mut a, &scope, &text).await?;
    let snapshot = queued(&mut a, &scope, &[&waiting]).await?;
    let item_id = snapshot["queue"][0]["id"].clone();
    let removal = json!({"type": "remove_queue_item", "runtime": scope.runtime(), "item_id": item_id});
    let answer = a.request(removal.clone(), "remove_queue_item_response").await?;
    ensure!(
        answer["success"] == true && answer["item_id"] == item_id,
        "A: `remove_queue_item` of {item_id} was answered `success: {}`, `item_id: {}`",
        answer["success"],
        answer["item_id"]
    );
    let after = a.mark();
    queued(&mut a, &scope, &[]).await?;
    let end = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, end)?;
    let frames = a.between(0, end);
    ensure!(
        removed(frames, &scope, "cancelled").contains(&waiting.as_str()),
        "A: no `update_queue` lists the removed input {waiting} as `cancelled`"
    );
    ensure!(
        !removed(a.since(after), &scope, "dequeued").contains(&waiting.as_str()),
        "A: the removed input was dequeued"
    );
    let again = a.request(removal, "remove_queue_item_response").await?;
    ensure!(
        again["success"] == false,
        "A: removing {item_id} a second time was answered `success: {}`",
        again["success"]
    );
    let accepted = ctx
        .say(&mut a, &scope, &format!("[[reply: {}]]", ctx.unique("next")))
        .await?;
    ensure!(
        accepted["disposition"] == "started",
        "A: after the busy turn an input was `{}`, not started: the removed input is still in the way",
        accepted["disposition"]
    );
    let next = ctx.turn_finished(&mut a, &scope).await?;
    ended_normally(&a, next)?;
    a.close().await;
    Ok(None)
}
