//! The compatibility validator (`compat`, behind `letta-app-server-tools validate`) over the
//! corpus: it accepts every frame the real servers sent or accepted in the captures of both
//! releases, and rejects every frame a server must reject.

use std::collections::BTreeSet;

use letta_app_server_protocol::compat::{Direction, Validator, transcript};
use letta_app_server_tests::{corpus_dir, invalid_frames};

use crate::support::assert_no_failures;

/// The captured messages the scenarios send malformed on purpose, with what is wrong: the same
/// lines in the captures of both releases.
const MALFORMED_ON_PURPOSE: &[(&str, usize, &str)] = &[
    ("i-malformed.jsonl", 8, "not JSON"),
    ("i-malformed.jsonl", 9, "an unknown type"),
    ("i-malformed.jsonl", 10, "no type"),
    ("i-malformed.jsonl", 11, "an array"),
    ("i-malformed.jsonl", 12, "a string"),
    ("i-malformed.jsonl", 13, "null"),
    ("i-malformed.jsonl", 14, "a number as agent_id"),
    ("i-malformed.jsonl", 17, "an unknown input kind"),
    ("i-malformed.jsonl", 19, "create_message without messages"),
    (
        "p5-terminal-consumer-ack.jsonl",
        26,
        "a terminal consumer id with a space",
    ),
    (
        "p9-external-tool-invalid-timeout.jsonl",
        8,
        "an external tool timeout of 10 ms",
    ),
];

#[test]
fn the_validator_accepts_every_captured_frame_but_the_malformed_ones() {
    let validator = Validator::current();
    let mut failures = Vec::new();
    for version in ["0.32.18", "0.34.12"] {
        let dir = corpus_dir().join("captures").join(version);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(
            files.len() >= 20,
            "expected the captures of {version} in {}",
            dir.display()
        );
        let mut flagged = BTreeSet::new();
        let mut checked = 0;
        for file in &files {
            let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
            let entries = transcript::read(&text);
            assert!(
                entries.iter().all(|entry| entry.direction.is_some()),
                "{name}: a message without its sender"
            );
            let report = transcript::check(&validator, &entries, None);
            checked += report.checked();
            for finding in report.findings {
                let transcript::Position::Line(line) = finding.position else {
                    unreachable!("JSONL positions are lines")
                };
                let violations: Vec<String> = finding.violations.iter().map(ToString::to_string).collect();
                if !MALFORMED_ON_PURPOSE
                    .iter()
                    .any(|(file, at, _)| *file == name && *at == line)
                {
                    failures.push(format!("{version}/{name}:{line}: {}", violations.join("; ")));
                }
                flagged.insert((name.clone(), line));
            }
        }
        assert!(checked > 1000, "{version}: only {checked} messages");
        for (file, line, what) in MALFORMED_ON_PURPOSE {
            if !flagged.contains(&(file.to_string(), *line)) {
                failures.push(format!("{version}/{file}:{line}: {what} accepted"));
            }
        }
    }
    assert_no_failures("captured frames judged wrongly", &failures);
}

/// Whether `path` is `field` or inside it: the validator names a missing field itself
/// (`payload.messages`) where the server's error names the object that lacks it (`payload`).
fn within(path: &str, field: &str) -> bool {
    path.strip_prefix(field)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[test]
fn the_messages_of_the_traces_are_their_sent_and_received_frames() {
    let validator = Validator::current();
    let mut failures = Vec::new();
    let dir = corpus_dir().join("traces");
    for file in std::fs::read_dir(&dir)
        .expect("the traces")
        .map(|entry| entry.expect("an entry").path())
    {
        if file.extension().is_none_or(|extension| extension != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a trace");
        let sent_or_received = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["dir"] == "in" || record["dir"] == "out")
            .count();
        let entries = transcript::read(&text);
        let name = file.display();
        if entries.len() != sent_or_received {
            failures.push(format!(
                "{name}: {} messages read, {sent_or_received} recorded",
                entries.len()
            ));
        }
        // What fails is what the recordings trimmed (`"<trimmed N entries>"`), or sent malformed.
        for finding in transcript::check(&validator, &entries, None).findings {
            let transcript::Position::Line(line) = finding.position else {
                unreachable!("JSONL positions are lines")
            };
            let record = text.lines().nth(line - 1).unwrap_or_default();
            if finding.direction == Direction::Server && !record.contains("<trimmed") {
                failures.push(format!("{name}:{line}: {:?}", finding.violations));
            }
        }
    }
    assert_no_failures("traces read wrongly", &failures);
}

#[test]
fn the_validator_rejects_every_invalid_frame_at_its_field() {
    let validator = Validator::current();
    let mut failures = Vec::new();
    for case in invalid_frames() {
        let violations = validator.validate_text(Direction::Client, &case.text);
        if violations.is_empty() {
            failures.push(format!("{}: accepted", case.case));
        } else if let Some(path) = case.expect["path"].as_str()
            && !violations.iter().any(|violation| within(&violation.path, path))
        {
            let found: Vec<String> = violations.iter().map(ToString::to_string).collect();
            failures.push(format!("{}: nothing at `{path}`: {}", case.case, found.join("; ")));
        }
    }
    assert_no_failures("invalid frames judged wrongly", &failures);
}
