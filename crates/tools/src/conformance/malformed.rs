//! Frames a server cannot accept (docs/protocol.md §1.8). Real Letta drops them without an
//! answer; this project's server answers with an `error` frame of a stable `code`. Either is
//! conformant; anything else is not, and the socket must stay usable.

use serde_json::{Value, json};

use super::driver::{Ctx, Step, Stop, Verdict, ensure, find};
use super::wire::{Conn, describe};

/// Sends `app_server_info` and waits for its answer, which comes once the server dealt with
/// what was sent before; returns its position.
async fn barrier(conn: &mut Conn) -> Step<usize> {
    let id = conn.request_id("app_server_info");
    conn.send(&json!({"type": "app_server_info", "request_id": id})).await?;
    conn.wait_for(
        "`app_server_info_response` after the bad frame: the socket stopped working",
        |f| f["type"] == "app_server_info_response" && f["request_id"] == id,
    )
    .await
}

/// Sends `text`, then a [`barrier`]; returns the frames that came in between, leaving out
/// `control_request`s (which any socket may get on connecting).
async fn answers_to(conn: &mut Conn, text: &str) -> Step<Vec<Value>> {
    let from = conn.mark();
    conn.send_text(text).await?;
    let at = barrier(conn).await?;
    Ok(conn.since(from)[..at - from]
        .iter()
        .filter(|f| f["type"] != "control_request")
        .cloned()
        .collect())
}

/// Passes when the bad frame got nothing, or one `error` frame with `code` (echoing
/// `request_id` when the frame had one); `typed` also accepts that command's own answer with
/// `success: false`.
fn judge(conn: &Conn, answers: &[Value], code: &str, request_id: Option<&str>, typed: Option<&str>) -> Verdict {
    match answers {
        [] => Ok(Some("dropped without an answer (as real Letta does)".to_owned())),
        [answer] if answer["type"] == "error" => {
            ensure!(
                answer["code"] == code,
                "{}: the `error` frame says `code: {}`, not {code}: {}",
                conn.name(),
                answer["code"],
                answer["message"]
            );
            if let Some(id) = request_id {
                ensure!(
                    answer["request_id"] == id,
                    "{}: the `error` frame has `request_id: {}`, not the bad frame's {id}",
                    conn.name(),
                    answer["request_id"]
                );
            }
            Ok(Some(format!("answered with an `error` frame `{code}`")))
        }
        [answer] if typed.is_some_and(|typed| answer["type"] == typed) => {
            ensure!(
                answer["success"] == false && answer["request_id"] == json!(request_id),
                "{}: the bad frame was answered {answer}",
                conn.name()
            );
            Ok(Some(format!(
                "answered with a failed `{}`",
                answer["type"].as_str().unwrap_or_default()
            )))
        }
        _ => Err(Stop::Fail(format!(
            "{}: the bad frame was answered with {}; expected nothing or one `error` frame `{code}`",
            conn.name(),
            answers.iter().map(describe).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Text that is not JSON.
pub(crate) async fn not_json(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let answers = answers_to(&mut a, "{not json").await?;
    let verdict = judge(&a, &answers, "malformed_json", None, None);
    a.close().await;
    verdict
}

/// A `type` no version declares, and an object without a `type`.
pub(crate) async fn unknown_type(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let id = a.request_id("unknown");
    let frame = json!({"type": "conformance_no_such_type", "request_id": id});
    let answers = answers_to(&mut a, &frame.to_string()).await?;
    let unknown = judge(&a, &answers, "unknown_type", Some(&id), None)?;
    let id = a.request_id("untyped");
    let answers = answers_to(&mut a, &json!({"request_id": id}).to_string()).await?;
    let untyped = judge(&a, &answers, "missing_type", Some(&id), None)?;
    a.close().await;
    Ok(Some(if unknown == untyped {
        unknown.unwrap_or_default()
    } else {
        format!(
            "unknown type {}; no type {}",
            unknown.unwrap_or_default(),
            untyped.unwrap_or_default()
        )
    }))
}

/// A known command with a field of the wrong type (`runtime_start.agent_id: 42`), and a frame
/// that is a JSON array.
pub(crate) async fn bad_field(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let id = a.request_id("runtime_start");
    let frame = json!({"type": "runtime_start", "request_id": id, "agent_id": 42});
    let answers = answers_to(&mut a, &frame.to_string()).await?;
    let field = judge(&a, &answers, "invalid_frame", Some(&id), Some("runtime_start_response"))?;
    let answers = answers_to(&mut a, "[1,2,3]").await?;
    let array = judge(&a, &answers, "invalid_frame", None, None)?;
    a.close().await;
    Ok(Some(if field == array {
        field.unwrap_or_default()
    } else {
        format!(
            "wrong field {}; an array {}",
            field.unwrap_or_default(),
            array.unwrap_or_default()
        )
    }))
}

/// An `input` with an unknown payload kind: a non-terminal `loop_error` for its scope (both
/// versions of real Letta send it), no `input_accepted`; the conversation keeps working.
pub(crate) async fn bad_payload(ctx: &Ctx) -> Verdict {
    let mut a = ctx.connect("A").await?;
    let scope = ctx.start(&mut a, json!({})).await?;
    let from = a.mark();
    let id = a.request_id("input");
    let frame = json!({"type": "input", "request_id": id, "runtime": scope.runtime(), "payload": {"kind": "conformance_bogus"}});
    a.send(&frame).await?;
    let failed = a
        .wait_for(
            "non-terminal `loop_error` for the input with a bad payload",
            scope.delta("loop_error"),
        )
        .await?;
    let loop_error = &a.frame(failed)["delta"];
    ensure!(
        loop_error["is_terminal"] == false && loop_error["stop_reason"] == "error",
        "A: the bad payload's `loop_error` says `is_terminal: {}`, `stop_reason: {}`",
        loop_error["is_terminal"],
        loop_error["stop_reason"]
    );
    barrier(&mut a).await?;
    ensure!(
        !a.since(from)
            .iter()
            .any(|f| f["type"] == "input_accepted" && f["request_id"] == id),
        "A: an input with a bad payload got `input_accepted` (§1.8: only the `loop_error`)"
    );
    let error_frame = find(a.since(from), |f| f["type"] == "error" && f["request_id"] == id);
    let reply = ctx.unique("still working");
    ctx.turn(&mut a, &scope, &format!("[[reply: {reply}]]")).await?;
    a.close().await;
    Ok(error_frame.map(|_| "answered with an `error` frame and the `loop_error`".to_owned()))
}
