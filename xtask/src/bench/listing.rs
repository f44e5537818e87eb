//! Listing with much stored: a page of 100 messages of a 10,000-message conversation
//! (`conversation_messages_list`) and a page of 50 among 10,000 conversations
//! (`conversation_list`), on a server restarted over that store, and what the stored data costs
//! in memory once it is not loaded.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::BenchResult;
use super::client::{self, Client};
use super::process::{ServerProcess, temp_dir};
use super::report::{Row, Unit};
use super::scenarios::{Bench, Stats, millis, ticks_to_micros};

/// Stored conversations.
const CONVERSATIONS: usize = 10_000;
/// Messages of the long conversation (a user message and a reply per turn).
const MESSAGES: usize = 10_000;
/// Timed calls of each command.
const CALLS: usize = 200;
/// Unmeasured calls before them.
const WARMUP: usize = 10;
const MIB: f64 = 1024.0 * 1024.0;

impl Bench<'_> {
    /// Stores the conversations and the long one, restarts the server over them, and times
    /// pages of each list.
    pub async fn listing_suite(&mut self) -> BenchResult<()> {
        let data = temp_dir("listing")?;
        let server = ServerProcess::start_in(self.binary, data.path(), &[]).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let empty = server.memory()?.rss;
        let mut client = Client::connect(&server.url).await?;
        let started = client::start_runtime(&mut client, "rs-listing", None).await?;
        let filled = Instant::now();
        fill_conversation(&mut client, &started.runtime, MESSAGES / 2, "note [[reply: ok]]").await?;
        store_conversations(&mut client, &started.runtime["agent_id"]).await?;
        self.notes.push(format!(
            "listing: storing {CONVERSATIONS} conversations and a {MESSAGES}-message conversation took {:.1} s",
            filled.elapsed().as_secs_f64()
        ));
        client.close().await;
        server.stop().await?;

        let server = ServerProcess::start_in(self.binary, data.path(), &[]).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stored = server.memory()?.rss;
        self.rows.push(
            Row::new(
                "RSS with 10,000 stored conversations, after a restart, minus an empty store's",
                "scripted",
                (stored as f64 - empty as f64).max(0.0) / MIB,
                Unit::Mib,
                Some(4.0),
            )
            .detail(format!("{:.1} MiB in all", stored as f64 / MIB)),
        );
        let mut client = Client::connect(&server.url).await?;
        let conversation_id = started.runtime["conversation_id"].clone();
        let messages = timed(&server, &mut client, (CALLS, WARMUP), |n, previous| {
            // Walks back through the history, and starts again at the newest page.
            let before = previous
                .filter(|p| p["has_more"] == true)
                .map_or(Value::Null, |p| p["next_before"].clone());
            json!({"type": "conversation_messages_list", "request_id": format!("ml-{n}"),
                "conversation_id": conversation_id, "query": {"limit": 100, "before": before}})
        })
        .await?;
        self.push_rows(
            "conversation_messages_list: a page of 100 of 10,000 messages",
            &messages,
        );
        let conversations = timed(&server, &mut client, (CALLS, WARMUP), |n, previous| {
            let after = previous
                .and_then(|p| p["conversations"].as_array())
                .filter(|page| page.len() == 50)
                .and_then(|page| page.last())
                .map_or(Value::Null, |c| c["id"].clone());
            json!({"type": "conversation_list", "request_id": format!("cl-{n}"),
                "query": {"limit": 50, "after": after}})
        })
        .await?;
        self.push_rows(
            "conversation_list: a page of 50 of 10,000 conversations",
            &conversations,
        );
        let rss = server.memory()?.rss;
        self.rows.push(Row::new(
            "RSS after the listing calls",
            "scripted",
            rss as f64 / MIB,
            Unit::Mib,
            None,
        ));
        client.close().await;
        server.stop().await?;
        Ok(())
    }

    fn push_rows(&mut self, metric: &str, timing: &Timing) {
        self.rows.push(
            Row::new(
                &format!("{metric}, median"),
                "scripted",
                timing.latency.median,
                Unit::Millis,
                Some(1.0),
            )
            .detail(format!("p99 {}", Unit::Millis.show(timing.latency.p99))),
        );
        self.rows.push(Row::new(
            &format!("{metric}: server CPU per call"),
            "scripted",
            timing.cpu_per_call,
            Unit::Micros,
            None,
        ));
    }
}

/// Latencies and server CPU of a series of calls.
pub(super) struct Timing {
    pub(super) latency: Stats,
    pub(super) cpu_per_call: f64,
}

/// Sends `calls` commands (after `warmup` unmeasured ones) one at a time, each made by `next`
/// from the answer to the one before, and times each answer, which must be a success.
pub(super) async fn timed(
    server: &ServerProcess,
    client: &mut Client,
    (calls, warmup): (usize, usize),
    mut next: impl FnMut(usize, Option<&Value>) -> Value,
) -> BenchResult<Timing> {
    let mut latencies = Vec::with_capacity(calls);
    let mut previous: Option<Value> = None;
    let mut ticks = 0;
    for n in 0..warmup + calls {
        if n == warmup {
            ticks = server.cpu_ticks()?;
        }
        let frame = next(n, previous.as_ref());
        let sent = Instant::now();
        client.send(&frame).await?;
        let answer = answer(client, &frame["request_id"]).await?;
        if n >= warmup {
            latencies.push(millis(sent.elapsed()));
        }
        if answer["success"] != true {
            return Err(format!("a call failed: {answer}"));
        }
        previous = Some(answer);
    }
    let ticks = server.cpu_ticks()?.saturating_sub(ticks);
    Ok(Timing {
        latency: Stats::of(latencies),
        cpu_per_call: ticks_to_micros(ticks) / calls as f64,
    })
}

/// The answer carrying `request_id` (other frames are skipped).
async fn answer(client: &mut Client, request_id: &Value) -> BenchResult<Value> {
    loop {
        let frame = client.recv().await?;
        let value: Value = serde_json::from_str(&frame.text).map_err(|e| format!("a frame that is not JSON: {e}"))?;
        if value["request_id"] == *request_id {
            return Ok(value);
        }
    }
}

/// Runs `turns` turns of `text` (with its scripted reply) in the conversation of `runtime`,
/// one at a time: two messages each.
pub(super) async fn fill_conversation(
    client: &mut Client,
    runtime: &Value,
    turns: usize,
    text: &str,
) -> BenchResult<()> {
    for turn in 0..turns {
        let id = format!("fill-{turn}");
        client.send(&client::input(&id, runtime, text, &id)).await?;
        loop {
            let frame = client.recv().await?;
            match frame.frame_type() {
                "turn_finished" => break,
                "error" => return Err(format!("filling the conversation: {}", frame.text)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Stores [`CONVERSATIONS`] conversations of `agent_id`, pipelined in batches: a batch is
/// sent, then its answers read.
async fn store_conversations(client: &mut Client, agent_id: &Value) -> BenchResult<()> {
    const BATCH: usize = 100;
    for batch in 0..CONVERSATIONS / BATCH {
        for n in 0..BATCH {
            let summary = format!("Conversation {}", batch * BATCH + n);
            let create = json!({"type": "conversation_create", "request_id": format!("cc-{batch}-{n}"),
                "body": {"agent_id": agent_id, "summary": summary}});
            client.send(&create).await?;
        }
        let mut answered = 0;
        while answered < BATCH {
            let frame = client.recv().await?;
            if frame.frame_type() == "conversation_create_response" {
                if !frame.text.contains("\"success\":true") {
                    return Err(format!("storing conversations: {}", frame.text));
                }
                answered += 1;
            }
        }
    }
    Ok(())
}
