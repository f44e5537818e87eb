//! Patient streams: they hold reading back for a consumer that keeps reading, and stop holding
//! it back for one that does not.

use std::time::Duration;

use futures_util::StreamExt;
use letta_app_server_client::types::InputPayload;
use letta_app_server_client::{Client, Gap, Transport};

use crate::support::{Connect, TestServer, assistant_text, collect, new_runtime};

const PATIENCE: Duration = Duration::from_millis(200);

/// A client whose streams buffer 16 frames.
async fn small_buffers(server: &TestServer) -> Client {
    server
        .builder(Transport::Single)
        .event_capacity(16)
        .connect()
        .await
        .expect("client connects")
}

#[tokio::test]
async fn a_slow_reader_of_a_patient_turn_gets_every_frame() {
    let server = TestServer::start().await;
    let client = small_buffers(&server).await;
    let runtime = new_runtime(&client, "Patient").await;
    let mut turn = client
        .turn_patient(&runtime, InputPayload::user_text("[[deltas: 300]]"), PATIENCE)
        .await
        .unwrap();
    let mut frames = Vec::new();
    while let Some(item) = tokio::time::timeout(crate::support::WAIT, turn.next()).await.unwrap() {
        frames.push(item.expect("a reader that keeps reading misses nothing"));
        if frames.len() % 50 == 0 {
            // Slower than the server, but never stopped for longer than the patience.
            tokio::time::sleep(PATIENCE / 4).await;
        }
    }
    let expected: String = (0..300).map(|n| format!("t{n} ")).collect();
    assert_eq!(assistant_text(&frames).trim_end(), expected.trim_end());
    assert_eq!(frames.last().unwrap().frame_type(), "turn_finished");

    // The same reader of a plain stream of that capacity falls behind.
    let turn = client.send_message(&runtime, "[[deltas: 300]]").await.unwrap();
    tokio::time::sleep(PATIENCE).await;
    let mut turn = turn;
    let lagged = tokio::time::timeout(crate::support::WAIT, async {
        while let Some(item) = turn.next().await {
            if matches!(item, Err(Gap::Lagged { .. })) {
                return true;
            }
        }
        false
    });
    assert!(lagged.await.expect("a gap in time"));
    client.close().await;
}

#[tokio::test]
async fn a_patient_stream_nobody_reads_stops_holding_the_connection_back() {
    let server = TestServer::start().await;
    let client = small_buffers(&server).await;
    let runtime = new_runtime(&client, "Forgotten").await;
    let mut forgotten = client.raw_events_patient(None, PATIENCE);
    // A patient turn, read at once: held up for one patience at most, then streamed in full.
    let turn = client
        .turn_patient(&runtime, InputPayload::user_text("[[deltas: 5000]]"), PATIENCE)
        .await
        .unwrap();
    let frames = collect(turn).await;
    assert_eq!(assistant_text(&frames).split_whitespace().count(), 5000);
    client.app_server_info().await.unwrap();

    // The forgotten stream kept what fits in its buffer, then reports what it skipped.
    let mut kept = 0;
    loop {
        match tokio::time::timeout(crate::support::WAIT, forgotten.next())
            .await
            .unwrap()
            .unwrap()
        {
            Ok(_) => kept += 1,
            Err(Gap::Lagged { missed }) => {
                assert!(kept >= 4096 && kept + missed >= 5000, "{kept} + {missed}");
                break;
            }
            Err(gap) => panic!("{gap}"),
        }
    }
    assert!(kept >= 16, "{kept}");
    client.close().await;
}
