//! No silence: every command of the protocol table that the server does not implement is
//! answered at once (its own response with `success: false`, or an `error` frame of code
//! `unsupported`), and the README's list of commands says which are which.

use std::time::{Duration, Instant};

use letta_app_server::IMPLEMENTED_COMMANDS;
use letta_app_server_protocol::{Answers, COMMANDS, CommandInfo};
use letta_app_server_tests::schema::Direction;
use letta_app_server_tests::{GoldenFrame, golden_frames, repo_root};
use serde_json::{Value, json};

use crate::support::TestServer;

/// How long "at once" may take on a loaded 2-core machine (the next frame's timeout is 10 s).
const AT_ONCE: Duration = Duration::from_secs(5);

fn unimplemented() -> impl Iterator<Item = &'static CommandInfo> {
    COMMANDS
        .iter()
        .filter(|command| !IMPLEMENTED_COMMANDS.contains(&command.name))
}

/// The golden frames of `command`'s type that clients send.
fn examples<'a>(golden: &'a [GoldenFrame], command: &str) -> Vec<&'a GoldenFrame> {
    golden
        .iter()
        .filter(|frame| frame.frame_type == command && frame.sent_by(Direction::Client))
        .collect()
}

/// What is wrong with `answer` as the answer declining `command` sent as `frame`.
fn refusal_problems(command: &CommandInfo, frame: &Value, answer: &Value) -> Vec<String> {
    let request_id = frame.get("request_id").cloned().unwrap_or(Value::Null);
    let own_response = command.refuses && !request_id.is_null();
    let mut problems = Vec::new();
    let mut expect = |field: &str, value: Value| {
        if answer.get(field).cloned().unwrap_or(Value::Null) != value {
            problems.push(format!("`{field}` is not {value}"));
        }
    };
    if own_response {
        expect("type", json!(command.response));
        expect("success", json!(false));
        if command.answers == Answers::Stream {
            // The only chunk is the last, so that a client reading chunks stops.
            expect("done", json!(true));
        }
    } else {
        expect("type", json!("error"));
        expect("code", json!("unsupported"));
        expect("frame_type", json!(command.name));
    }
    expect("request_id", request_id);
    // `chatgpt_usage_read_response.error` is an object whose `message` says it.
    let message = match (own_response, &answer["error"]) {
        (true, Value::Object(error)) => error.get("message").unwrap_or(&Value::Null),
        (true, error) => error,
        (false, _) => &answer["message"],
    };
    let wanted = format!("this server does not support `{}` yet", command.name);
    if message.as_str() != Some(wanted.as_str()) {
        problems.push(format!("the error text is {message}, not {wanted:?}"));
    }
    problems
}

#[tokio::test]
async fn every_command_the_server_does_not_implement_is_declined_at_once() {
    let golden = golden_frames();
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut failures = Vec::new();
    let mut declined = 0;
    for command in unimplemented() {
        let frames = examples(&golden, command.name);
        if frames.is_empty() {
            failures.push(format!("`{}` has no golden frame to send", command.name));
        }
        for frame in frames {
            let sent = Instant::now();
            client.send(frame.json.clone()).await;
            let answer = client.recv().await;
            if sent.elapsed() > AT_ONCE {
                failures.push(format!("{}: answered after {:?}", frame.name(), sent.elapsed()));
            }
            let problems = refusal_problems(command, &frame.json, &answer);
            if !problems.is_empty() {
                failures.push(format!("{}: {} in {answer}", frame.name(), problems.join(", ")));
            }
            declined += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        declined >= 15,
        "expected the agents, conversations and resume_queue frames, sent {declined}"
    );
}

#[tokio::test]
async fn no_implemented_command_is_answered_as_unsupported() {
    let golden = golden_frames();
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for (index, name) in IMPLEMENTED_COMMANDS.iter().enumerate() {
        assert!(
            COMMANDS.iter().any(|command| command.name == *name),
            "`{name}` is not a command of the protocol table"
        );
        for frame in examples(&golden, name) {
            client.send(frame.json.clone()).await;
        }
        // Frames are handled in order and a refusal is sent while handling its frame, so any
        // refusal arrives before the answer to this.
        let sentinel = format!("after-{index}");
        client
            .send(json!({"type": "app_server_info", "request_id": sentinel}))
            .await;
        let answers = client
            .recv_until(|frame| frame["type"] == "app_server_info_response" && frame["request_id"] == sentinel)
            .await;
        for answer in answers {
            let refused = answer["code"] == "unsupported"
                || [&answer["error"], &answer["message"]]
                    .iter()
                    .any(|text| text.as_str().is_some_and(|text| text.contains("does not support")));
            assert!(!refused, "`{name}` was answered as unsupported: {answer}");
        }
    }
}

/// The README's list, as [`IMPLEMENTED_COMMANDS`] and the protocol table make it.
fn readme_commands() -> String {
    let list = |names: Vec<&str>| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "Implemented: {}.\n\nAnswered at once as unsupported: {}.\n",
        list(IMPLEMENTED_COMMANDS.to_vec()),
        list(unimplemented().map(|command| command.name).collect())
    )
}

#[test]
fn the_readme_lists_the_implemented_and_the_unsupported_commands() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let (begin, end) = ("<!-- commands: begin -->\n", "<!-- commands: end -->");
    let listed = readme
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(listed, _)| listed)
        .expect("README.md has the commands list between its markers");
    let expected = readme_commands();
    if listed != expected && std::env::var_os("UPDATE_README").is_some() {
        let updated = readme.replacen(listed, &expected, 1);
        std::fs::write(repo_root().join("README.md"), updated).expect("README.md written");
        return;
    }
    assert_eq!(
        listed, expected,
        "README.md's commands list is stale; it should read as above \
         (UPDATE_README=1 cargo nextest run -p letta-app-server -E 'test(the_readme_lists)' rewrites it)"
    );
}
