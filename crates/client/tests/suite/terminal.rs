//! Terminals through the typed API: spawn, echo, resize, kill, a shell that exits at once,
//! commands to a killed terminal, and a large output received whole and in order.

use std::time::Duration;

use futures_util::StreamExt;
use letta_app_server_client::{Client, Error, Gap, Terminal, TerminalEvent, TerminalExit, TerminalOptions, Transport};

use crate::support::{Connect, TestServer, WAIT};

/// A server whose terminals run `shell`.
async fn server_with(shell: &str) -> TestServer {
    let shell = shell.to_owned();
    TestServer::start_with(move |config| config.shell = shell).await
}

/// The output of `terminal` until it contains `needle`.
async fn output_until(terminal: &mut Terminal, needle: &str) -> String {
    let mut output = String::new();
    while !output.contains(needle) {
        match tokio::time::timeout(WAIT, terminal.next())
            .await
            .expect("output in time")
        {
            Some(Ok(TerminalEvent::Output(text))) => output.push_str(&text),
            other => panic!("{other:?} before {needle:?} in {output:?}"),
        }
    }
    output
}

/// The rest of the output, then the exit; the stream ends after it.
async fn rest(terminal: &mut Terminal) -> (String, TerminalExit) {
    let mut output = String::new();
    loop {
        match tokio::time::timeout(WAIT, terminal.next())
            .await
            .expect("an item in time")
        {
            Some(Ok(TerminalEvent::Output(text))) => output.push_str(&text),
            Some(Ok(TerminalEvent::Exited(exit))) => {
                assert!(terminal.next().await.is_none(), "the stream ends after the exit");
                return (output, exit);
            }
            other => panic!("{other:?} in {output:?}"),
        }
    }
}

#[tokio::test]
async fn a_terminal_echoes_resizes_and_is_killed() {
    let server = server_with("/bin/sh").await;
    std::fs::create_dir(server.data.path().join("project")).unwrap();
    let client = server.rust_client(Transport::Single).await;

    let mut terminal = client
        .terminal_spawn(TerminalOptions {
            cols: 100,
            rows: 30,
            ..TerminalOptions::in_dir("project")
        })
        .await
        .unwrap();
    assert!(terminal.id().starts_with("terminal-"), "{}", terminal.id());
    assert!(terminal.pid() > 1);

    terminal.write("echo hi-$((40+2)); pwd; stty size\n").await.unwrap();
    let project = server.data.path().join("project").canonicalize().unwrap();
    output_until(&mut terminal, &format!("hi-42\r\n{}\r\n30 100\r\n", project.display())).await;

    // From another task, through a control handle.
    let control = terminal.control();
    tokio::spawn(async move {
        control.resize(120, 40).await.unwrap();
        control.write("stty size\n").await.unwrap();
    })
    .await
    .unwrap();
    output_until(&mut terminal, "40 120\r\n").await;

    terminal.kill().await.unwrap();
    let (_, exit) = rest(&mut terminal).await;
    assert_eq!(
        exit,
        TerminalExit {
            exit_code: 129,
            error: None
        }
    );

    // A killed terminal takes no more commands: the error the server answers them with.
    let not_found = Error::Server {
        request_id: None,
        code: "invalid_frame".into(),
        message: format!("Terminal not found: {}", terminal.id()),
    };
    assert_eq!(terminal.write("ls\n").await, Err(not_found.clone()));
    assert_eq!(terminal.resize(1, 1).await, Err(not_found.clone()));
    assert_eq!(terminal.kill().await, Err(not_found.clone()));

    // Which is the server's own answer, had the command been sent.
    let mut events = client.events();
    client
        .send(&serde_json::json!({"type": "terminal_input", "terminal_id": terminal.id(), "data": "ls\n"}))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        frame.raw.json(),
        serde_json::json!({"type": "error", "code": "invalid_frame", "frame_type": "terminal_input",
            "message": format!("Terminal not found: {}", terminal.id())})
    );
    client.close().await;
}

#[tokio::test]
async fn a_shell_that_exits_at_once_and_one_that_cannot_start() {
    let server = server_with("/bin/true").await;
    let client = server.rust_client(Transport::Single).await;
    let terminal = client.terminal_spawn(TerminalOptions::default()).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, terminal.wait()).await.unwrap(),
        Ok(TerminalExit {
            exit_code: 0,
            error: None
        })
    );

    let server = server_with("/no/such/shell").await;
    let client = server.rust_client(Transport::Single).await;
    let refused = client
        .terminal_spawn(TerminalOptions {
            terminal_id: Some("mine".into()),
            ..TerminalOptions::default()
        })
        .await;
    assert!(
        matches!(&refused, Err(Error::Rejected { request_id, frame_type, message })
            if request_id == "mine" && frame_type == "terminal_exited" && message == "spawn /no/such/shell ENOENT"),
        "{:?}",
        refused.err()
    );
    client.close().await;
}

#[tokio::test]
async fn dropping_a_terminal_kills_its_shell() {
    let server = server_with("/bin/sh").await;
    let client = server.rust_client(Transport::Single).await;
    let terminal = client.terminal_spawn(TerminalOptions::default()).await.unwrap();
    let pid = terminal.pid();
    drop(terminal);
    let proc = format!("/proc/{pid}");
    let gone = async {
        while std::path::Path::new(&proc).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, gone).await.expect("the shell is reaped");
    client.close().await;
}

/// Megabytes of output, read slowly through a small buffer: every byte arrives, in order.
#[tokio::test]
async fn a_large_output_arrives_whole_and_in_order_at_the_readers_pace() {
    let server = server_with("/bin/sh").await;
    let client = Client::builder(&server.url("")).connect().await.unwrap();
    let mut terminal = client
        .terminal_spawn(TerminalOptions {
            capacity: 4,
            ..TerminalOptions::default()
        })
        .await
        .unwrap();
    // Lines numbered 1..=N, and the sum of their lengths (the terminal turns "\n" into "\r\n").
    terminal.write("stty -echo; seq 1 300000; exit 7\n").await.unwrap();
    let mut output = String::new();
    let mut chunks = 0;
    let exit = loop {
        match tokio::time::timeout(WAIT, terminal.next())
            .await
            .expect("an item in time")
        {
            Some(Ok(TerminalEvent::Output(text))) => {
                output.push_str(&text);
                chunks += 1;
                if chunks % 20 == 0 {
                    // Slower than the shell: the connection waits for this reader.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Some(Ok(TerminalEvent::Exited(exit))) => break exit,
            Some(Err(gap)) => panic!("no gap: {gap:?}"),
            None => panic!("the stream ended before the exit"),
        }
    };
    assert_eq!(exit.exit_code, 7);
    let numbers: Vec<&str> = output
        .lines()
        // The shell's prompt may come before the first line.
        .map(|line| line.trim_end_matches('\r').rsplit(' ').next().unwrap_or_default())
        .skip_while(|line| *line != "1")
        .take_while(|line| !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let expected: Vec<String> = (1..=300_000).map(|n| n.to_string()).collect();
    let first_wrong = numbers.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        (numbers.len(), first_wrong),
        (expected.len(), None),
        "{:?}",
        first_wrong.map(|at| &numbers[at.saturating_sub(2)..(at + 2).min(numbers.len())])
    );
    assert!(chunks > 20, "{chunks} chunks");

    // Meanwhile the connection served commands again once the reader caught up.
    client.app_server_info().await.unwrap();
    client.close().await;
}

/// A terminal with patience that nobody reads does not hold the connection up for long: it
/// skips output, and says so.
#[tokio::test]
async fn an_unread_patient_terminal_skips_and_reports_it() {
    let server = server_with("/bin/sh").await;
    let client = server.rust_client(Transport::Single).await;
    let mut terminal = client
        .terminal_spawn(TerminalOptions {
            capacity: 2,
            patience: Some(Duration::from_millis(100)),
            ..TerminalOptions::default()
        })
        .await
        .unwrap();
    terminal.write("stty -echo; seq 1 200000; exit\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Commands are answered while the terminal is unread.
    tokio::time::timeout(WAIT, client.app_server_info())
        .await
        .expect("answered in time")
        .unwrap();
    let mut lagged = false;
    while let Some(item) = tokio::time::timeout(WAIT, terminal.next()).await.unwrap() {
        match item {
            Err(Gap::Lagged { .. }) => lagged = true,
            Ok(TerminalEvent::Exited(_)) => break,
            _ => {}
        }
    }
    assert!(lagged);
    client.close().await;
}
