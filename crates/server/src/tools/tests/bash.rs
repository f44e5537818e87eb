//! `Bash`.

use super::*;

fn bash(command: &str) -> Value {
    json!({"command": command, "description": "test command"})
}

#[tokio::test]
async fn bash_streams_stdout_and_stderr_in_order() {
    let dir = temp();
    let command = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three";
    let (result, lines) = run_full("Bash", bash(command), dir.path(), &CancellationToken::new()).await;
    assert_ok(&result);
    let lines: Vec<OutputLine> = lines.into_iter().map(|(_, line)| line).collect();
    assert_eq!(
        lines,
        [
            OutputLine::Stdout("one".into()),
            OutputLine::Stderr("two".into()),
            OutputLine::Stdout("three".into())
        ]
    );
    assert_eq!(result.stdout, ["one", "three"]);
    assert_eq!(result.stderr, ["two"]);
    assert_eq!(result.text, "one\nthree\ntwo\n");
}

#[tokio::test]
async fn bash_streams_lines_as_they_arrive() {
    let dir = temp();
    let (result, lines) = run_full(
        "Bash",
        bash("echo first; sleep 0.4; echo second"),
        dir.path(),
        &CancellationToken::new(),
    )
    .await;
    let finished = Instant::now();
    assert_ok(&result);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].1, OutputLine::Stdout("first".into()));
    assert!(
        finished - lines[0].0 >= Duration::from_millis(300),
        "the first line arrived only at the end"
    );
}

#[tokio::test]
async fn bash_non_zero_exit_is_an_error_with_the_code() {
    let dir = temp();
    let result = run("Bash", bash("echo out; echo err >&2; exit 3"), dir.path()).await;
    assert!(result.is_error);
    assert_eq!(result.text, "out\nerr\nExit code 3");
    let result = run("Bash", bash("echo; echo second; echo >&2; echo err >&2"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, "\nsecond\n\nerr\n");
    let result = run("Bash", bash("true"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.text, "(no output)");
}

#[tokio::test]
async fn bash_decodes_non_utf8_output_lossily() {
    let dir = temp();
    let result = run("Bash", bash(r"printf '\xff\xfe\n'; printf 'ok\xffend'"), dir.path()).await;
    assert_ok(&result);
    assert_eq!(result.stdout, ["\u{fffd}\u{fffd}", "ok\u{fffd}end"]);
}

#[tokio::test]
async fn bash_runs_in_the_working_directory_with_spaces() {
    let dir = temp();
    let cwd = dir.path().join("my project");
    write(&cwd.join("file with spaces.txt"), "contents\n");
    let result = run(
        "Bash",
        bash("pwd; cat 'file with spaces.txt'; cat < /dev/stdin | wc -c"),
        &cwd,
    )
    .await;
    assert_ok(&result);
    assert_eq!(
        result.stdout,
        [cwd.display().to_string(), "contents".into(), "0".into()]
    );
}

#[tokio::test]
async fn bash_timeout_kills_the_command() {
    let dir = temp();
    let started = Instant::now();
    let result = run(
        "Bash",
        json!({"command": "echo started; sleep 30", "description": "sleep", "timeout": 300}),
        dir.path(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_error(&result, "timed out after 300 ms");
    assert!(result.text.starts_with("started\n"), "{}", result.text);
}

#[tokio::test]
async fn bash_rejects_bad_timeouts_and_hands_background_runs_to_the_engine() {
    let dir = temp();
    let marker = dir.path().join("ran");
    let command = format!("touch '{}'", marker.display());
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "timeout": 600_001}),
        dir.path(),
    )
    .await;
    assert_error(&result, "600000");
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "run_in_background": true}),
        dir.path(),
    )
    .await;
    // Outside a conversation (the tests' `NoTasks`) nothing runs it.
    assert_error(&result, "No background commands here");
    assert!(!marker.exists(), "a rejected command ran");
    let result = run(
        "Bash",
        json!({"command": command, "description": "d", "timeout": 600_000}),
        dir.path(),
    )
    .await;
    assert_ok(&result);
    assert!(marker.exists());
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn process_gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn bash_cancellation_kills_the_process_group() {
    let dir = temp();
    let pids = dir.path().join("pids");
    let command = format!(
        "sleep 30 & echo $$ $! > '{}.tmp'; mv '{0}.tmp' '{0}'; sleep 30",
        pids.display()
    );
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            while !pids.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let (result, _) = run_full("Bash", bash(&command), dir.path(), &cancel).await;
    canceller.await.expect("canceller");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(result.is_error);
    assert_eq!(result.text, "Interrupted by user");
    let pids = read(&pids);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.iter().all(|pid| process_gone(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} survived the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bash_dropped_mid_run_kills_the_process_group() {
    let dir = temp();
    let pids = dir.path().join("pids");
    let command = format!("sleep 30 & echo $$ $! > '{}'; sleep 30", pids.display());
    let run = run("Bash", bash(&command), dir.path());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), run).await.is_err(),
        "the command finished"
    );
    let pids = read(&pids);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.iter().all(|pid| process_gone(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} survived dropping the run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bash_does_not_wait_for_background_children_holding_the_pipes() {
    let dir = temp();
    let started = Instant::now();
    let result = run("Bash", bash("sleep 3 & echo done"), dir.path()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_ok(&result);
    assert_eq!(result.text, "done\n");
}

#[tokio::test]
async fn bash_output_is_capped() {
    let dir = temp();
    let result = run("Bash", bash("yes abcdefghi | head -n 5000; echo tail >&2"), dir.path()).await;
    assert_ok(&result);
    // 5000 stdout lines of 9 characters and 1 stderr line of 4, each ending with a newline.
    let total = 5000 * 9 + 4 + 5001;
    let note = format!("\n… [output truncated: {} more characters]", total - 30_000);
    assert!(
        result.text.ends_with(&note),
        "{}",
        &result.text[result.text.len() - 200..]
    );
    assert_eq!(result.text.chars().count(), 30_000 + note.chars().count());
    assert_eq!(result.stdout.len(), 5000);
    assert_eq!(result.stderr, ["tail"]);
}
