//! Typed commands: `Client::call` of any command of the protocol table against the real server,
//! and `Client::call_stream` / `Client::command_stream` (answers until `done: true`) against the
//! real server's `list_memory` and against a scripted peer (for the ways a stream can end).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use letta_app_server_client::types::{
    AgentRetrieve, AgentRuntimeScope, AppServerInfo, EnableMemfs, LaunchSubagent, ListMemory, MemoryHistory,
    RuntimeScope, RuntimeStart, SubagentLaunchArgs, Sync, WriteMemoryFile,
};
use letta_app_server_client::{Client, Error, StreamCall, Transport};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Connect, TestServer, WAIT};

#[tokio::test]
async fn any_command_of_the_table_is_called_with_its_typed_answer() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let info = client
        .call(&AppServerInfo {
            type_: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    assert!(info.success);
    // The server refuses `agent_retrieve` of an unknown agent with its typed answer:
    // `success: false` is a rejection, as for every typed command.
    let refused = client
        .call(&AgentRetrieve {
            type_: String::new(),
            request_id: String::new(),
            agent_id: "agent-nobody".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Rejected { request_id, frame_type, message }
            if request_id == "agent-retrieve-2"
                && frame_type == "agent_retrieve_response"
                && message.contains("Agent agent-nobody not found")),
        "{refused:?}"
    );
    // An `error` frame answering a command is the server's error.
    let error = client
        .call(&Sync::new(&RuntimeScope::new("agent-nobody", "conv-nothing")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Server { request_id: Some(id), .. } if id == "sync-3"),
        "{error:?}"
    );
    client.close().await;
}

/// An agent's memory through the typed calls: files written as commits, listed as a stream of
/// chunks (five files to a chunk), the history of one file.
#[tokio::test]
async fn the_memory_of_an_agent_is_written_listed_and_read_back() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let started = client.runtime_start(RuntimeStart::new_agent("Notebook")).await.unwrap();
    let agent_id = started.runtime.expect("a scope").agent_id.expect("an agent");
    let enabled = client
        .call(&EnableMemfs {
            type_: String::new(),
            request_id: String::new(),
            agent_id: agent_id.clone(),
        })
        .await
        .unwrap();
    assert!(enabled.memory_directory.is_some());
    for n in 0..6 {
        let written = client
            .call(&WriteMemoryFile {
                type_: String::new(),
                request_id: String::new(),
                agent_id: agent_id.clone(),
                path: format!("notes/n{n}.md"),
                content: format!("---\ndescription: Note {n}\n---\nnote {n}\n"),
                encoding: None,
                commit_message: Some(format!("Note {n}")),
            })
            .await
            .unwrap();
        assert_eq!(written.committed, Some(true));
    }
    let list = ListMemory {
        type_: String::new(),
        request_id: String::new(),
        agent_id: agent_id.clone(),
        include_references: None,
    };
    let chunks: Vec<_> = client.call_stream(&list).await.unwrap().collect().await;
    let chunks: Vec<_> = chunks.into_iter().map(Result::unwrap).collect();
    let shape: Vec<(usize, bool)> = chunks.iter().map(|c| (c.entries.len(), c.done)).collect();
    assert_eq!(shape, [(5, false), (1, true)]);
    assert_eq!(chunks[1].entries[0].description.as_deref(), Some("Note 5"));
    let history = client
        .call(&MemoryHistory {
            type_: String::new(),
            request_id: String::new(),
            agent_id,
            file_path: Some("notes/n3.md".into()),
            limit: None,
        })
        .await
        .unwrap();
    let messages: Vec<&str> = history.commits.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(messages, ["Note 3"]);
    client.close().await;
}

/// A subagent launched through the typed call: the answer names its task and conversation, and
/// its work streams to the parent's runtime as deltas with `subagent_id`.
#[tokio::test]
async fn a_launched_subagent_streams_to_its_parent_runtime() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let started = client.runtime_start(RuntimeStart::new_agent("Parent")).await.unwrap();
    let scope = started.runtime.expect("a scope");
    let runtime = RuntimeScope::new(scope.agent_id.clone().expect("an agent"), scope.conversation_id.clone());
    let mut events = client.raw_events(Some(&runtime));
    let launched = client
        .call(&LaunchSubagent {
            type_: String::new(),
            request_id: String::new(),
            runtime: AgentRuntimeScope {
                acting_user_id: None,
                agent_id: scope.agent_id.clone().expect("an agent"),
                conversation_id: scope.conversation_id.clone(),
            },
            args: SubagentLaunchArgs {
                prompt: "Look. [[reply: found it]]".into(),
                description: "look".into(),
                subagent_type: Some("explore".into()),
                agent_id: None,
                client_message_id: None,
                computer: None,
                conversation_id: None,
                max_turns: None,
                mcp: None,
                model: None,
            },
            notify: None,
            tool_call_id: None,
        })
        .await
        .unwrap();
    assert!(launched.success);
    assert_eq!(launched.task_id.as_deref(), Some("task_1"));
    let mut said = String::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(WAIT, events.next()).await {
        let frame = frame.json();
        if frame["type"] == "stream_delta" && frame["subagent_id"].is_string() {
            if frame["delta"]["message_type"] == "assistant_message" {
                said.push_str(frame["delta"]["content"][0]["text"].as_str().unwrap_or_default());
            }
        } else if frame["type"] == "update_subagent_state" && frame["subagents"][0]["status"] == "completed" {
            break;
        }
    }
    assert_eq!(said, "found it");
    client.close().await;
}

/// A peer that answers each command by its `type`, as a server answering with a stream would:
/// `list_widgets` with two chunks (a frame of another request between them, a chunk after the
/// last one), `refuse_widgets` with an `error` frame, `deny_widgets` with a refusal that is also
/// the last chunk, `stall_widgets` with one chunk and then nothing, `drop_widgets` with one
/// chunk and then closing the socket.
async fn scripted_peer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound port");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(Message::Text(text))) = socket.next().await {
                    let command: Value = serde_json::from_str(&text).unwrap_or_default();
                    let id = command["request_id"].clone();
                    let chunk = |entries: &[&str], done: bool| {
                        json!({"type": "widgets_response", "request_id": id, "entries": entries,
                               "done": done, "total": 3, "success": true})
                    };
                    let frames = match command["type"].as_str().unwrap_or_default() {
                        "list_widgets" => vec![
                            chunk(&["a"], false),
                            json!({"type": "widgets_response", "request_id": "someone-else", "entries": ["x"],
                                   "done": true, "total": 1, "success": true}),
                            chunk(&["b", "c"], true),
                            chunk(&["late"], true),
                        ],
                        "refuse_widgets" => vec![
                            json!({"type": "error", "request_id": id, "code": "unsupported", "message": "no widgets here"}),
                        ],
                        "deny_widgets" => vec![json!({"type": "widgets_response", "request_id": id, "entries": [],
                            "done": true, "total": 0, "success": false, "error": "widgets are off"})],
                        "stall_widgets" | "drop_widgets" => vec![chunk(&["a"], false)],
                        _ => Vec::new(),
                    };
                    for frame in frames {
                        if socket.send(Message::text(frame.to_string())).await.is_err() {
                            return;
                        }
                    }
                    if command["type"] == "drop_widgets" {
                        return;
                    }
                }
            });
        }
    });
    format!("ws://{addr}")
}

#[derive(Debug, Deserialize, PartialEq)]
struct Widgets {
    entries: Vec<String>,
    done: bool,
}

/// Stream commands of the scripted peer, as `cargo xtask codegen` implements the table's.
macro_rules! widget_commands {
    ($($name:ident = $type:literal),* $(,)?) => {$(
        #[derive(Serialize, Default)]
        struct $name {
            request_id: String,
        }

        impl StreamCall for $name {
            const TYPE: &'static str = $type;
            type Response = Widgets;
        }
    )*};
}

widget_commands!(
    ListWidgets = "list_widgets",
    RefuseWidgets = "refuse_widgets",
    DenyWidgets = "deny_widgets",
    StallWidgets = "stall_widgets",
    DropWidgets = "drop_widgets",
);

/// Every item of a stream until it ends.
async fn items<S: futures_util::Stream + Unpin>(stream: S) -> Vec<S::Item> {
    tokio::time::timeout(WAIT, stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends in time")
}

#[tokio::test]
async fn a_stream_answer_ends_after_the_frame_with_done() {
    let client = Client::connect(&scripted_peer().await).await.unwrap();
    let answers = client.call_stream(&ListWidgets::default()).await.unwrap();
    assert_eq!(answers.request_id(), "list_widgets-1");
    let chunks: Vec<Widgets> = items(answers).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        [
            Widgets {
                entries: vec!["a".into()],
                done: false
            },
            Widgets {
                entries: vec!["b".into(), "c".into()],
                done: true
            }
        ]
    );
    // The frames as received, for bindings.
    let command = json!({"type": "list_widgets"}).as_object().unwrap().clone();
    let raw = items(client.command_stream(command).await.unwrap()).await;
    let texts: Vec<Value> = raw
        .into_iter()
        .map(|item| item.unwrap().json()["entries"].clone())
        .collect();
    assert_eq!(texts, [json!(["a"]), json!(["b", "c"])]);
    client.close().await;
}

#[tokio::test]
async fn a_stream_answer_ends_at_an_error_frame_or_a_refusal() {
    let client = Client::connect(&scripted_peer().await).await.unwrap();
    let refused = items(client.call_stream(&RefuseWidgets::default()).await.unwrap()).await;
    assert!(
        matches!(&refused[..], [Err(Error::Server { code, message, .. })]
            if code == "unsupported" && message == "no widgets here"),
        "{refused:?}"
    );
    let denied = items(client.call_stream(&DenyWidgets::default()).await.unwrap()).await;
    assert!(
        matches!(&denied[..], [Err(Error::Rejected { frame_type, message, .. })]
            if frame_type == "widgets_response" && message == "widgets are off"),
        "{denied:?}"
    );
    // As received, the `error` frame is the last item.
    let command = json!({"type": "refuse_widgets"}).as_object().unwrap().clone();
    let raw = items(client.command_stream(command).await.unwrap()).await;
    assert!(
        matches!(&raw[..], [Ok(frame)] if frame.frame_type() == "error"),
        "{raw:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_stream_answer_ends_at_a_timeout_or_a_disconnect() {
    let client = Client::connect(&scripted_peer().await).await.unwrap();
    let after = Duration::from_millis(300);
    let stalled = items(
        client
            .with_timeout(after)
            .call_stream(&StallWidgets::default())
            .await
            .unwrap(),
    )
    .await;
    assert!(
        matches!(&stalled[..], [Ok(_), Err(Error::Timeout { request_id, after: waited })]
            if request_id == "stall_widgets-1" && *waited == after),
        "{stalled:?}"
    );
    let dropped = items(client.call_stream(&DropWidgets::default()).await.unwrap()).await;
    assert!(
        matches!(&dropped[..], [Ok(_), Err(Error::Disconnected { .. })]),
        "{dropped:?}"
    );
    let closed = client.call_stream(&ListWidgets::default()).await.err();
    assert!(matches!(closed, Some(Error::Disconnected { .. })), "{closed:?}");
    client.close().await;
}

#[tokio::test]
async fn a_command_answered_once_is_not_a_stream() {
    let client = Client::connect(&scripted_peer().await).await.unwrap();
    let command = json!({"type": "sync"}).as_object().unwrap().clone();
    let error = client.command_stream(command).await.err();
    assert!(
        matches!(&error, Some(Error::Protocol { message }) if message.contains("answered by one frame")),
        "{error:?}"
    );
    client.close().await;
}
