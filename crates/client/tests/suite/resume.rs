//! Event streams that resume where they left off after the connection drops (this project's
//! server, docs/protocol.md §2.2): a TCP proxy between client and server cuts the connection at
//! random points of a long reply, and what the client's caller sees is the uninterrupted turn.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use letta_app_server_client::{Client, Frame, Gap, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestServer, WAIT, assistant_text, fast, new_runtime};

/// A TCP proxy that passes everything through, except that a connection stops (both ways, at
/// once, mid-frame as like as not) once it has carried the next planned number of bytes from
/// the server.
struct Proxy {
    addr: SocketAddr,
    /// Bytes from the server after which a connection is cut, one per cut to come.
    plan: Arc<Mutex<VecDeque<usize>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let plan = Arc::new(Mutex::new(VecDeque::new()));
        let accepting = tokio::spawn({
            let plan = Arc::clone(&plan);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::spawn(pass(client, server, Arc::clone(&plan)));
                }
            }
        });
        Self { addr, plan, accepting }
    }

    /// Plans cuts after these numbers of bytes from the server, counted from now on the
    /// connection open now, then on each new one.
    fn cut_after(&self, budgets: impl IntoIterator<Item = usize>) {
        self.plan.lock().expect("plan").extend(budgets);
    }

    fn cuts_left(&self) -> usize {
        self.plan.lock().expect("plan").len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Copies both ways until either side ends, or the server's side has sent its budget.
async fn pass(client: TcpStream, server: TcpStream, plan: Arc<Mutex<VecDeque<usize>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0; 16 * 1024];
        let mut budget: Option<usize> = None;
        while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
            if budget.is_none() {
                budget = plan.lock().expect("plan").pop_front();
            }
            let n = budget.map_or(n, |left| n.min(left));
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            if let Some(left) = budget.as_mut() {
                *left -= n;
                if *left == 0 {
                    break;
                }
            }
        }
    };
    // Whichever ends first drops both connections.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// A small random number generator (xorshift), seeded so that a failure can be replayed with
/// `RESUME_SEED`.
struct Random(u64);

impl Random {
    fn seeded() -> (Self, u64) {
        let seed = std::env::var("RESUME_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
            });
        (Self(seed), seed)
    }

    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// Every frame of a stream until it ends, and how many times it was interrupted and resumed;
/// any other gap fails the test.
async fn collect_resumed<S>(stream: S, seed: u64) -> (Vec<Frame>, usize)
where
    S: Stream<Item = Result<Frame, Gap>> + Unpin,
{
    let mut frames = Vec::new();
    let (mut interrupted, mut resumed) = (0, 0);
    let mut items = stream;
    while let Some(item) = tokio::time::timeout(WAIT, items.next())
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: a frame in time"))
    {
        match item {
            Ok(frame) => frames.push(frame),
            Err(Gap::Interrupted { .. }) => interrupted += 1,
            Err(Gap::Resumed) => resumed += 1,
            Err(gap) => panic!("seed {seed}: {gap:?}"),
        }
    }
    assert!(
        interrupted - resumed <= 1,
        "seed {seed}: {interrupted} interruptions, {resumed} resumed"
    );
    (frames, interrupted)
}

/// The reply of `[[deltas: n]]`.
fn reply(n: usize) -> String {
    (0..n).map(|i| format!("t{i} ")).collect()
}

/// The `conversation_seq` of each numbered frame, which must follow one another.
fn assert_consecutive(frames: &[Frame], seed: u64) {
    let seqs: Vec<u64> = frames.iter().filter_map(|f| f.raw.conversation_seq()).collect();
    assert!(!seqs.is_empty(), "seed {seed}: no numbered frame");
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "seed {seed}: a gap or a repeat");
    }
}

#[tokio::test]
async fn a_turn_arrives_whole_across_connections_cut_at_random_points() {
    let server = TestServer::start().await;
    let target = server.server.as_ref().expect("running").local_addr();
    for transport in [Transport::Single, Transport::Split] {
        let (mut random, seed) = Random::seeded();
        let proxy = Proxy::start(target).await;
        let client = Client::builder(&format!("ws://{}", proxy.addr))
            .transport(transport)
            .reconnect(fast(true))
            .connect()
            .await
            .expect("connects");
        let runtime = new_runtime(&client, "Cut short").await;
        let events = client.runtime_events(&runtime);
        let deltas = 1500;
        let turn = client
            .send_message(&runtime, &format!("go [[deltas: {deltas}]] [[delay: 1]]"))
            .await
            .expect("the input is accepted");
        // Six cuts in the first ~600 KB the reply takes (about 300 bytes a delta).
        let cuts: Vec<usize> = (0..6).map(|_| 1 + random.below(100_000)).collect();
        proxy.cut_after(cuts.clone());
        let (frames, interruptions) = collect_resumed(turn, seed).await;
        assert!(interruptions >= 1, "seed {seed}");
        assert_eq!(assistant_text(&frames), reply(deltas), "seed {seed}, cuts {cuts:?}");
        assert_eq!(
            frames.last().map(Frame::frame_type),
            Some("turn_finished"),
            "seed {seed}"
        );
        assert_consecutive(&frames, seed);
        assert_eq!(proxy.cuts_left(), 0, "seed {seed}: every planned cut happened");

        // The runtime's stream saw no gap either, and numbers every frame after the answers.
        client.close().await;
        let (seen, _) = collect_resumed(events, seed).await;
        assert_consecutive(&seen, seed);
        assert_eq!(assistant_text(&seen), reply(deltas), "seed {seed}, {transport:?}");
    }
}

#[tokio::test]
async fn a_turn_cut_by_kill_9_ends_in_the_stream_without_a_gap() {
    use letta_app_server_tests::process::{ServerProcess, command, server_binary};
    let binary = server_binary().expect("the server binary");
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::spawn(command(&binary, data.path(), &[])).expect("the server starts");
    let url = server.url.clone();
    let client = Client::builder(&url)
        .reconnect(fast(true))
        .connect()
        .await
        .expect("connects");
    let runtime = new_runtime(&client, "Killed").await;
    let mut turn = client
        .send_message(&runtime, "go [[deltas: 2000]] [[delay: 2]]")
        .await
        .expect("the input is accepted");
    let mut frames = Vec::new();
    while assistant_text(&frames).len() < 200 {
        frames.push(
            tokio::time::timeout(WAIT, turn.next())
                .await
                .expect("a frame")
                .expect("more")
                .expect("no gap"),
        );
    }
    server.kill_9().expect("kill -9");
    // The same data, on the same port.
    let listen = url.trim_end_matches("/ws");
    let mut again = std::process::Command::new(&binary);
    again
        .args(["--listen", listen, "--data-dir"])
        .arg(data.path())
        .stdin(std::process::Stdio::null());
    let mut server = ServerProcess::spawn(again).expect("the server starts again");

    let (rest, interruptions) = collect_resumed(turn, 0).await;
    assert_eq!(interruptions, 1);
    frames.extend(rest);
    let finished = frames.last().expect("turn_finished").raw.json();
    assert_eq!(
        (&finished["type"], &finished["stop_reason"]),
        (&"turn_finished".into(), &"error".into()),
        "{finished}"
    );
    assert_consecutive(&frames, 0);
    assert!(reply(2000).starts_with(&assistant_text(&frames)));
    client.close().await;
    server.kill_9().expect("kill -9");
}
