//! Phase 2, mutated frames: abusive clients send mutated frames, each followed by an
//! `app_server_info` fence, while the witness runs ordinary turns. The server must not die, the
//! witness must not notice, and every bad frame should be answered before its fence.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use letta_app_server_protocol::{COMMANDS, ClientFrame, SERVER_FRAMES, ServerFrameKind};
use letta_app_server_tests::schema::Schemas;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::mutate::{Corpus, Mutant, Mutator, Payload};
use super::wire::{self, Checker, Ended, FRAME_TIMEOUT, Socket};
use super::{Check, Scale, first, list, server_checks, sum, witness};
use crate::bench::process::ServerProcess;
use crate::bench::report::thousands;

const PHASE: &str = "frames";

/// Whether a valid client frame of this type has no response by design: a keepalive `pong`, or
/// a command the protocol table declares without a response.
fn silent_by_design(frame_type: &str) -> bool {
    frame_type == "pong" || COMMANDS.iter().any(|c| c.name == frame_type && c.response.is_none())
}

/// Runs the phase on a fresh server and returns its checks.
pub async fn run(binary: &Path, schemas: Arc<Schemas>, seed: u64, scale: Scale) -> Result<Vec<Check>, String> {
    let mut server = ServerProcess::start(binary, &[]).await?;
    let baseline = witness::baseline(&server.url, schemas.clone(), scale.count(100)).await;
    let peak_reset = server.reset_peak();
    let started = Instant::now();
    let witness = witness::spawn(&server.url, schemas.clone());
    let corpus = Corpus::load();
    let connections = 4;
    let frames = scale.count(200_000);
    let mut abusers = tokio::task::JoinSet::new();
    for index in 0..connections {
        let mutator = Mutator::new(corpus.clone(), seed ^ (0x1000 + index as u64), &format!("m{index}"));
        let count = frames / connections + usize::from(index < frames % connections);
        abusers.spawn(abuse(server.url.clone(), mutator, count, schemas.clone()));
    }
    let mut tally = Tally::default();
    while let Some(result) = abusers.join_next().await {
        tally.merge(result.map_err(|e| format!("an abusive client failed: {e}"))?);
    }
    let elapsed = started.elapsed();
    let under_abuse = witness.finish().await;
    let memory = server.memory();
    let mut checks = server_checks(PHASE, &mut server);
    let _ = server.stop().await;

    checks.push(Check::info(
        PHASE,
        "mutated frames sent",
        format!(
            "{} ({} MiB, {} connections, {:.0} s, {}/s; by kind: {})",
            thousands(tally.sent),
            tally.bytes / (1024 * 1024),
            connections,
            elapsed.as_secs_f64(),
            thousands((tally.sent as f64 / elapsed.as_secs_f64()) as u64),
            list(&tally.by_kind)
        ),
    ));
    checks.push(Check::info(
        PHASE,
        "answered before the fence",
        format!("{} (error codes: {})", thousands(tally.answered), list(&tally.codes)),
    ));
    checks.push(Check::info(
        PHASE,
        "answered after the fence",
        format!("{} (by type: {})", thousands(tally.late), list(&tally.late_by_type)),
    ));
    checks.push(Check::info(
        PHASE,
        "still-valid frames with no answer (by design)",
        format!("{} ({})", sum(&tally.silent_valid), list(&tally.silent_valid)),
    ));
    checks.push(Check::expect(
        PHASE,
        "frames with no answer at all (not silent by design)",
        format!(
            "{} ({}){}",
            sum(&tally.unanswered),
            list(&tally.unanswered),
            first(&tally.unanswered_examples)
        ),
        tally.unanswered.is_empty(),
        "0 (reported, not enforced)",
    ));
    checks.push(Check::info(
        PHASE,
        "connections the server closed",
        format!(
            "{} ({}); frames on them still waiting for an answer: {} ({})",
            sum(&tally.closed),
            list(&tally.closed),
            sum(&tally.cut_off),
            list(&tally.cut_off)
        ),
    ));
    checks.push(Check::hard(
        PHASE,
        "fences never answered on an open connection",
        format!("{}{}", tally.hangs.len(), first(&tally.hangs)),
        tally.hangs.is_empty(),
        "0",
    ));
    checks.push(Check::hard(
        PHASE,
        "frames to the abusive clients violating the schema",
        format!("{}{}", tally.violations.len(), first(&tally.violations)),
        tally.violations.is_empty(),
        "0",
    ));
    checks.extend(witness::checks(PHASE, &baseline, &under_abuse));
    match memory {
        Ok(memory) => checks.push(Check::info(
            PHASE,
            "server peak RSS (VmHWM)",
            format!(
                "{:.1} MiB{}",
                memory.peak as f64 / (1024.0 * 1024.0),
                if peak_reset {
                    " during the abuse"
                } else {
                    " since start"
                }
            ),
        )),
        Err(error) => checks.push(Check::info(PHASE, "server peak RSS (VmHWM)", error)),
    }
    Ok(checks)
}

/// What the abusive connections saw.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    bytes: u64,
    by_kind: BTreeMap<String, u64>,
    /// Frames that got an `error` or a response before their fence.
    answered: u64,
    /// Frames whose response came after their fence.
    late: u64,
    late_by_type: BTreeMap<String, u64>,
    codes: BTreeMap<String, u64>,
    /// Still-valid frames of a type that has no response, by type.
    silent_valid: BTreeMap<String, u64>,
    /// Frames that got nothing, by type (or kind when there is no type).
    unanswered: BTreeMap<String, u64>,
    /// Frames that had no answer yet when the server closed their connection, by type.
    cut_off: BTreeMap<String, u64>,
    /// A few of the unanswered, shortened.
    unanswered_examples: Vec<String>,
    /// Connections the server closed, by the kind of frame that preceded it and how.
    closed: BTreeMap<String, u64>,
    /// Fences not answered in time on a connection that stayed open.
    hangs: Vec<String>,
    violations: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.bytes += other.bytes;
        self.answered += other.answered;
        self.late += other.late;
        for (mine, theirs) in [
            (&mut self.by_kind, other.by_kind),
            (&mut self.late_by_type, other.late_by_type),
            (&mut self.codes, other.codes),
            (&mut self.silent_valid, other.silent_valid),
            (&mut self.unanswered, other.unanswered),
            (&mut self.closed, other.closed),
            (&mut self.cut_off, other.cut_off),
        ] {
            for (key, count) in theirs {
                *mine.entry(key).or_default() += count;
            }
        }
        self.unanswered_examples.extend(other.unanswered_examples);
        self.hangs.extend(other.hangs);
        self.violations.extend(other.violations);
    }
}

/// One abusive connection: `count` mutated frames, each followed by a fence.
async fn abuse(url: String, mut mutator: Mutator, count: usize, schemas: Arc<Schemas>) -> Tally {
    let mut tally = Tally::default();
    // Frames that got no answer before their fence, by request id: their label in `unanswered`
    // and the frame (shortened).
    let mut pending: HashMap<String, (String, String)> = HashMap::new();
    let mut connection: Option<(Socket, Checker)> = None;
    let mut failed_connects = 0;
    let mut serial = 0;
    while serial < count {
        let (socket, checker) = match &mut connection {
            Some((socket, checker)) => (socket, checker),
            None => {
                match wire::connect(&url).await {
                    Some(socket) => connection = Some((socket, Checker::new(schemas.clone()))),
                    None => {
                        failed_connects += 1;
                        if failed_connects > 50 {
                            tally.hangs.push("the server stopped accepting connections".into());
                            return tally;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                continue;
            }
        };
        failed_connects = 0;
        serial += 1;
        let mutant = mutator.next_frame();
        *tally.by_kind.entry(mutant.kind.label().to_owned()).or_default() += 1;
        tally.sent += 1;
        tally.bytes += mutant.payload.len() as u64;
        let fence_id = format!("fence-{serial}");
        let fence = json!({"type": "app_server_info", "request_id": fence_id}).to_string();
        let sent = async {
            socket.feed(message(&mutant.payload)).await?;
            socket.send(Message::text(fence)).await
        };
        if let Err(error) = sent.await {
            *tally
                .closed
                .entry(format!("{}: sending failed ({error})", mutant.kind.label()))
                .or_default() += 1;
            connection = None;
            connection_lost(&mut tally, &mut pending);
            continue;
        }
        let mut answered = false;
        let ended = loop {
            let text = match wire::next_text(socket, FRAME_TIMEOUT).await {
                Ok(text) => text,
                Err(ended) => break Some(ended),
            };
            let Some(frame) = checker.check(&text) else { continue };
            if frame["type"] == "app_server_info_response" && frame["request_id"] == fence_id.as_str() {
                break None;
            }
            answered |= count_frame(&frame, mutant.request_id.as_deref(), &mut tally, &mut pending);
        };
        tally.violations.append(&mut checker.violations);
        match ended {
            None if answered => tally.answered += 1,
            None => classify_silence(&mutant, &mut tally, &mut pending),
            Some(Ended::Silent(_)) => {
                tally.hangs.push(format!(
                    "no answer to the fence after a {} frame ({} bytes)",
                    mutant.kind.label(),
                    mutant.payload.len()
                ));
                connection = None;
                connection_lost(&mut tally, &mut pending);
            }
            Some(ended) => {
                if answered {
                    tally.answered += 1;
                }
                let how = match &ended {
                    Ended::Closed(how) => format!("closed {how}"),
                    other => other.to_string(),
                };
                *tally
                    .closed
                    .entry(format!("{}: {how}", mutant.kind.label()))
                    .or_default() += 1;
                connection = None;
                connection_lost(&mut tally, &mut pending);
            }
        }
    }
    // Answers still on their way (a `runtime_start` answers from a task of its own).
    if let Some((mut socket, mut checker)) = connection {
        let deadline = Instant::now() + LATE_ANSWERS;
        while !pending.is_empty() && Instant::now() < deadline {
            let Ok(text) = wire::next_text(&mut socket, deadline - Instant::now()).await else {
                break;
            };
            if let Some(frame) = checker.check(&text) {
                count_frame(&frame, None, &mut tally, &mut pending);
            }
        }
        tally.violations.append(&mut checker.violations);
        let _ = socket.close(None).await;
    }
    let never = pending.into_values().map(|(_, example)| example);
    tally.unanswered_examples.extend(never.take(EXAMPLES));
    tally
}

/// Frames still waiting for a late answer when their connection is closed (by the server,
/// after a later frame) can never get one: they leave `unanswered` for `cut_off`.
fn connection_lost(tally: &mut Tally, pending: &mut HashMap<String, (String, String)>) {
    for (_, (label, _)) in pending.drain() {
        if let Some(count) = tally.unanswered.get_mut(&label) {
            *count -= 1;
            if *count == 0 {
                tally.unanswered.remove(&label);
            }
        }
        *tally.cut_off.entry(label).or_default() += 1;
    }
}

/// Frames with no answer kept as examples, per connection.
const EXAMPLES: usize = 20;

/// How long an abusive connection waits for the answers still missing after its last frame.
const LATE_ANSWERS: Duration = Duration::from_secs(5);

/// Counts one frame an abusive connection received; `true` when it answers `current`, the
/// frame just sent: an `error` frame, or a response with its `request_id`. A response to an
/// earlier frame that had no answer before its fence is counted as a late answer.
fn count_frame(
    frame: &serde_json::Value,
    current: Option<&str>,
    tally: &mut Tally,
    pending: &mut HashMap<String, (String, String)>,
) -> bool {
    let frame_type = frame["type"].as_str().unwrap_or_default();
    if frame_type == "error" {
        let code = frame["code"].as_str().unwrap_or("?").to_owned();
        *tally.codes.entry(code).or_default() += 1;
        return true;
    }
    let is_response = SERVER_FRAMES
        .iter()
        .any(|known| known.kind == ServerFrameKind::Response && known.name == frame_type);
    let Some(request_id) = frame["request_id"].as_str().filter(|_| is_response) else {
        return false;
    };
    if current == Some(request_id) {
        return true;
    }
    if let Some((label, _)) = pending.remove(request_id) {
        if let Some(count) = tally.unanswered.get_mut(&label) {
            *count -= 1;
            if *count == 0 {
                tally.unanswered.remove(&label);
            }
        }
        tally.late += 1;
        *tally.late_by_type.entry(label).or_default() += 1;
    }
    false
}

/// Counts a frame that got nothing before its fence: still-valid frames of a type that has no
/// response are silent by design; anything else is unanswered (for now: a response may come
/// later, and is then counted as late).
fn classify_silence(mutant: &Mutant, tally: &mut Tally, pending: &mut HashMap<String, (String, String)>) {
    let valid = match &mutant.payload {
        Payload::Text(text) => ClientFrame::from_json(text).is_ok(),
        Payload::Binary(_) | Payload::BadText(_) => false,
    };
    let frame_type = mutant.frame_type.as_deref();
    if valid && frame_type.is_some_and(silent_by_design) {
        *tally
            .silent_valid
            .entry(frame_type.unwrap_or_default().to_owned())
            .or_default() += 1;
        return;
    }
    let label = match (frame_type, valid) {
        (Some(frame_type), true) => format!("{frame_type} (valid)"),
        (Some(frame_type), false) => frame_type.to_owned(),
        (None, _) => format!("({})", mutant.kind.label()),
    };
    *tally.unanswered.entry(label.clone()).or_default() += 1;
    let example = match &mutant.payload {
        Payload::Text(text) => wire::shorten(text),
        Payload::Binary(bytes) | Payload::BadText(bytes) => format!("{} bytes", bytes.len()),
    };
    match &mutant.request_id {
        Some(request_id) => {
            pending.insert(request_id.clone(), (label, example));
        }
        None if tally.unanswered_examples.len() < EXAMPLES => tally.unanswered_examples.push(example),
        None => {}
    }
}

/// The websocket message that carries a payload.
fn message(payload: &Payload) -> Message {
    match payload {
        Payload::Text(text) => Message::text(text.clone()),
        Payload::Binary(bytes) => Message::binary(bytes.clone()),
        Payload::BadText(bytes) => Message::Frame(Frame::message(bytes.clone(), OpCode::Data(Data::Text), true)),
    }
}
