//! The lifecycles of docs/protocol.md §5 through the client API, against the reference server, on
//! both transports.

use letta_app_server_client::types::{
    ApprovalDecision, DevicePermissionMode, Disposition, ExternalToolDefinition, InputPayload, RuntimeStart,
    ServerFrame, StopReason,
};
use letta_app_server_client::{Error, Frame, Transport};
use serde_json::json;

use crate::support::{Connect, TestServer, assistant_text, collect, frames_until, kinds, new_runtime, tool_returns};

const TRANSPORTS: [Transport; 2] = [Transport::Single, Transport::Split];

fn is_type(frame_type: &'static str) -> impl Fn(&Frame) -> bool {
    move |frame| frame.frame_type() == frame_type
}

fn stop_reason(frames: &[Frame]) -> Option<StopReason> {
    frames.iter().find_map(|frame| match &frame.typed {
        Some(ServerFrame::TurnFinished { stop_reason, .. }) => Some(*stop_reason),
        _ => None,
    })
}

#[tokio::test]
async fn a_b_start_a_runtime_and_stream_a_turn() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let info = client.app_server_info().await.unwrap();
        assert_eq!((info.protocol_version, info.capabilities.split_channels), (1, true));

        let mut events = client.events();
        let started = client
            .runtime_start(RuntimeStart::new_agent("Client Agent"))
            .await
            .unwrap();
        assert!(started.created.agent && started.created.conversation);
        let runtime = started.runtime.unwrap();
        let replay = frames_until(&mut events, is_type("update_subagent_state")).await;
        assert_eq!(
            kinds(&replay),
            [
                "runtime_start_response",
                "update_device_status",
                "loop WAITING_ON_INPUT",
                "update_queue",
                "update_subagent_state"
            ],
            "{transport:?}"
        );

        let turn = client
            .send_message(&runtime, "hi [[reply: Hello there!]] [[chunks: 2]]")
            .await
            .unwrap();
        assert_eq!(turn.accepted().disposition, Some(Disposition::Started));
        let frames = collect(turn).await;
        assert_eq!(
            kinds(&frames),
            [
                "loop SENDING_API_REQUEST",
                "update_device_status",
                "loop WAITING_FOR_API_RESPONSE",
                "loop PROCESSING_API_RESPONSE",
                "assistant_message",
                "assistant_message",
                "usage_statistics",
                "stop_reason",
                "loop WAITING_ON_INPUT",
                "update_device_status",
                "turn_finished"
            ],
            "{transport:?}"
        );
        assert!(frames.iter().all(|frame| frame.typed.is_some()), "{frames:?}");
        assert_eq!(assistant_text(&frames), "Hello there!");
        assert_eq!(stop_reason(&frames), Some(StopReason::EndTurn));
        client.close().await;
    }
}

#[tokio::test]
async fn c_approvals_allow_edit_and_deny() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let runtime = new_runtime(&client, "Approvals").await;
        let mut mode = RuntimeStart::join(&runtime);
        mode.mode = Some(DevicePermissionMode::Standard);
        client.runtime_start(mode).await.unwrap();

        for (decision, expected) in [
            (ApprovalDecision::allow(), "as asked\n"),
            (
                ApprovalDecision::allow_with_input(json!({"command": "echo edited", "description": "edited"})),
                "edited\n",
            ),
            (ApprovalDecision::deny("Not now"), "Not now"),
        ] {
            let mut turn = client
                .send_message(
                    &runtime,
                    r#"run it [[tool: Bash {"command":"mkdir -p made && echo as asked"}]]"#,
                )
                .await
                .unwrap();
            let asked = frames_until(&mut turn, is_type("control_request")).await;
            let request_id = asked.last().unwrap().raw.request_id().unwrap().to_owned();
            assert!(request_id.starts_with("perm-"), "{request_id}");
            client.answer_approval(&runtime, &request_id, decision).await.unwrap();
            let frames = collect(turn).await;
            assert_eq!(tool_returns(&frames), [expected], "{transport:?}");
            assert_eq!(stop_reason(&frames), Some(StopReason::EndTurn));

            // Only the first answer counts.
            let late = client
                .answer_approval(&runtime, &request_id, ApprovalDecision::allow())
                .await
                .unwrap_err();
            assert!(
                matches!(&late, Error::Rejected { message, .. } if message.contains("no longer pending")),
                "{late}"
            );
        }
        client.close().await;
    }
}

#[tokio::test]
async fn d_external_tools_answer_from_handlers() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let city = json!({"type": "object", "properties": {"city": {"type": "string"}}});
        client.register_external_tool(
            ExternalToolDefinition::new("lookup_weather", "Weather for a city", city.clone()),
            |call| async move { Ok::<_, String>(format!("Sunny in {}", call.input["city"].as_str().unwrap_or("?"))) },
        );
        client.register_external_tool(
            ExternalToolDefinition::new("failing_tool", "Always fails", city.clone()),
            |_| async move { Err::<String, _>("the weather service is down") },
        );
        client.register_external_tool(
            ExternalToolDefinition::new("panicking_tool", "Panics", city),
            |call| async move {
                if call.tool_name == "panicking_tool" {
                    panic!("handler bug");
                }
                Ok::<String, String>(String::new())
            },
        );
        let runtime = new_runtime(&client, "Tools").await;
        let turn = client
            .send_message(
                &runtime,
                r#"weather [[tool: lookup_weather {"city":"Paris"}]] [[tool: failing_tool {"city":"Oslo"}]] [[tool: panicking_tool {"city":"Rome"}]]"#,
            )
            .await
            .unwrap();
        let frames = collect(turn).await;
        let returns = tool_returns(&frames);
        assert_eq!(returns.len(), 3, "{transport:?}: {returns:?}");
        assert_eq!(returns[0], "Sunny in Paris");
        assert_eq!(returns[1], "External tool execution error: the weather service is down");
        assert!(
            returns[2]
                .starts_with("External tool execution error: the handler of panicking_tool panicked: handler bug"),
            "{}",
            returns[2]
        );
        assert!(kinds(&frames).contains(&"external_tool_call_request".to_owned()));
        assert_eq!(stop_reason(&frames), Some(StopReason::EndTurn));
        client.close().await;
    }
}

#[tokio::test]
async fn e_queued_inputs_find_their_own_turn() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let runtime = new_runtime(&client, "Queue").await;
        let first = client
            .send_message(&runtime, "first [[reply: one two three]] [[delay: 60]]")
            .await
            .unwrap();
        let second = client
            .send_message(&runtime, "second [[reply: second reply]]")
            .await
            .unwrap();
        let third = client.send_message(&runtime, "third").await.unwrap();
        assert_eq!(second.accepted().disposition, Some(Disposition::Queued));
        assert_eq!(third.accepted().disposition, Some(Disposition::Queued));

        let first = collect(first).await;
        let second_frames = collect(second).await;
        let third_frames = collect(third).await;
        assert_eq!(assistant_text(&first), "one two three");
        // Queued inputs coalesce into one turn: both streams hold that turn, not the first.
        assert_eq!(assistant_text(&second_frames), "second reply", "{transport:?}");
        assert_eq!(kinds(&second_frames), kinds(&third_frames));
        // It begins with the echo of the queued messages, as real Letta's does.
        assert_eq!(kinds(&second_frames).first().map(String::as_str), Some("user_message"));
        let run = |frames: &[Frame]| frames.last().unwrap().raw.json()["run_id"].clone();
        assert_ne!(run(&first), run(&second_frames));

        // remove_queue_item: a queued input can be withdrawn once.
        let busy = client
            .send_message(&runtime, "busy [[delay: 100]] [[chunks: 3]]")
            .await
            .unwrap();
        let mut events = client.runtime_events(&runtime);
        client
            .input(&runtime, InputPayload::user_text("to be removed"))
            .await
            .unwrap();
        let queued = frames_until(&mut events, |frame| {
            frame.frame_type() == "update_queue" && frame.raw.json()["queue"].as_array().is_some_and(|q| !q.is_empty())
        })
        .await;
        let item_id = queued.last().unwrap().raw.json()["queue"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        client.remove_queue_item(&runtime, &item_id).await.unwrap();
        let again = client.remove_queue_item(&runtime, &item_id).await.unwrap_err();
        assert!(matches!(again, Error::Rejected { .. }), "{again}");
        collect(busy).await;
        client.close().await;
    }
}

#[tokio::test]
async fn f_abort_mid_stream_and_when_idle() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let runtime = new_runtime(&client, "Abort").await;
        let mut turn = client
            .send_message(&runtime, "long [[deltas: 200]] [[delay: 20]]")
            .await
            .unwrap();
        frames_until(&mut turn, |frame| {
            frame.raw.json()["delta"]["message_type"] == "assistant_message"
        })
        .await;
        let aborted = client.abort(&runtime).await.unwrap();
        assert!(aborted.aborted);
        let rest = collect(turn).await;
        assert_eq!(stop_reason(&rest), Some(StopReason::Cancelled), "{transport:?}");
        assert!(assistant_text(&rest).len() < 200 * 3);

        let idle = client.abort(&runtime).await.unwrap();
        assert!(!idle.aborted);
        client.close().await;
    }
}

#[tokio::test]
async fn h_a_second_client_sees_the_turn_and_keeps_it_alive() {
    let server = TestServer::start().await;
    let first = server.rust_client(Transport::Single).await;
    let second = server.rust_client(Transport::Single).await;
    let runtime = new_runtime(&first, "Shared").await;
    let joined = second.runtime_start(RuntimeStart::join(&runtime)).await.unwrap();
    assert!(!joined.created.agent && !joined.created.conversation);
    let mut watching = second.runtime_events(&runtime);

    let turn = first
        .send_message(&runtime, "slow [[deltas: 20]] [[delay: 20]]")
        .await
        .unwrap();
    drop(turn);
    frames_until(&mut watching, |frame| {
        frame.raw.json()["delta"]["message_type"] == "assistant_message"
    })
    .await;
    first.close().await;
    let rest = frames_until(&mut watching, is_type("turn_finished")).await;
    assert_eq!(stop_reason(&rest), Some(StopReason::EndTurn));
    second.close().await;
}

#[tokio::test]
async fn h_a_second_client_joins_while_an_approval_is_pending_and_answers_it() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        // A split pair replaces the server's previous one: the first client uses one socket.
        let first = server.rust_client(Transport::Single).await;
        let runtime = new_runtime(&first, "Shared approval").await;
        let mut strict = RuntimeStart::join(&runtime);
        strict.mode = Some(DevicePermissionMode::Strict);
        first.runtime_start(strict).await.unwrap();
        let mut turn = first
            .send_message(&runtime, r#"[[tool: Bash {"command":"echo hi","description":"x"}]]"#)
            .await
            .unwrap();
        let asked = frames_until(&mut turn, is_type("control_request")).await;
        let request_id = asked.last().unwrap().raw.request_id().unwrap().to_owned();

        // The server sends the pending approval to the new socket on connect, before it
        // subscribes, and again after `runtime_start_response`.
        let second = server.rust_client(transport).await;
        second.runtime_start(RuntimeStart::join(&runtime)).await.unwrap();
        let pending = second.pending_approvals(Some(&runtime));
        assert_eq!(pending.len(), 1, "{transport:?}: {pending:?}");
        assert_eq!(pending[0].raw.request_id(), Some(request_id.as_str()));
        // A stream made now starts with it, once.
        let mut events = second.runtime_events(&runtime);
        let pending = frames_until(&mut events, is_type("control_request")).await;
        assert_eq!(pending.len(), 1, "{transport:?}: {pending:?}");
        assert_eq!(pending[0].raw.request_id(), Some(request_id.as_str()));
        second.sync(&runtime).await.unwrap();
        let replay = frames_until(&mut events, is_type("sync_response")).await;
        assert!(replay.iter().all(|f| f.frame_type() != "control_request"), "{replay:?}");

        second
            .answer_approval(&runtime, &request_id, ApprovalDecision::allow())
            .await
            .unwrap();
        let done = frames_until(&mut events, is_type("turn_finished")).await;
        assert_eq!(tool_returns(&done), ["hi\n"], "{transport:?}");
        assert!(done.iter().all(|f| f.frame_type() != "control_request"), "{done:?}");
        assert_eq!(stop_reason(&collect(turn).await), Some(StopReason::EndTurn));

        // Answered, it is no longer pending: a stream made now does not get it, nor a replay.
        assert!(second.pending_approvals(None).is_empty(), "{transport:?}");
        let mut later = second.runtime_events(&runtime);
        second.sync(&runtime).await.unwrap();
        let replay = frames_until(&mut later, is_type("sync_response")).await;
        assert!(replay.iter().all(|f| f.frame_type() != "control_request"), "{replay:?}");
        first.close().await;
        second.close().await;
    }
}

#[tokio::test]
async fn i_a_failed_model_request_ends_the_turn_with_an_error() {
    for transport in TRANSPORTS {
        let server = TestServer::start().await;
        let client = server.rust_client(transport).await;
        let runtime = new_runtime(&client, "Errors").await;
        let frames = collect(
            client
                .send_message(&runtime, "[[fail: 400 bad request]]")
                .await
                .unwrap(),
        )
        .await;
        let finished = frames.last().unwrap();
        assert_eq!(stop_reason(&frames), Some(StopReason::Error), "{transport:?}");
        assert!(finished.raw.json()["error"].as_str().unwrap().contains("bad request"));
        // The runtime stays usable.
        let again = collect(client.send_message(&runtime, "[[reply: fine]]").await.unwrap()).await;
        assert_eq!(assistant_text(&again), "fine");
        client.close().await;
    }
}
