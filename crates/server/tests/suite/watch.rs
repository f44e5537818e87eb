//! Watching files (docs/protocol.md §4.1): `watch_file` / `unwatch_file` and the debounced
//! `file_changed` pushes, from the OS's notifications on a real directory; bounded per
//! connection and ended with it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::Client;

/// Long enough for a debounced change to have been pushed.
const SETTLED: Duration = Duration::from_millis(600);

async fn watch(client: &mut Client, path: &str) {
    client
        .send(json!({"type": "watch_file", "request_id": format!("watch-{path}"), "path": path}))
        .await;
    // Answered by nothing; a round trip makes sure the watch is in place.
    round_trip(client).await;
}

async fn unwatch(client: &mut Client, path: &str) {
    client
        .send(json!({"type": "unwatch_file", "request_id": "unwatch", "path": path}))
        .await;
    round_trip(client).await;
}

async fn round_trip(client: &mut Client) {
    client
        .send(json!({"type": "app_server_info", "request_id": "ping"}))
        .await;
    let frame = client.recv().await;
    assert_eq!(frame["type"], "app_server_info_response", "{frame}");
}

/// The `file_changed` a change of `path` pushes: its modification time in whole milliseconds.
fn changed(path: &str) -> Value {
    let modified = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .expect("test fixture");
    let millis = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs_f64()
        * 1000.0;
    json!({"type": "file_changed", "path": path, "lastModified": millis.round()})
}

/// The inotify instances this process holds (each test runs in a process of its own).
fn inotify_instances() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs")
        .filter_map(Result::ok)
        .filter(|entry| std::fs::read_link(entry.path()).is_ok_and(|target| target == Path::new("anon_inode:inotify")))
        .count()
}

/// Waits up to five seconds for the process to hold `count` inotify instances.
async fn instances_become(count: usize) -> bool {
    for _ in 0..100 {
        if inotify_instances() == count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn directory(server: &TestServer) -> String {
    let directory = server.data.path().join("watched");
    std::fs::create_dir_all(&directory).expect("test fixture");
    directory.canonicalize().expect("test fixture").display().to_string()
}

#[tokio::test]
async fn a_watched_file_reports_writes_and_editors_renaming_a_new_file_over_it() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let path = format!("{root}/notes.md");
    std::fs::write(&path, "one\n").expect("test fixture");
    let mut client = server.client().await;
    watch(&mut client, &path).await;

    std::fs::write(&path, "two\n").expect("test fixture");
    assert_eq!(client.recv().await, changed(&path));

    // A save by rename, as many editors do; the file keeps being watched afterwards.
    std::fs::write(format!("{root}/.notes.md.swp"), "three\n").expect("test fixture");
    std::fs::rename(format!("{root}/.notes.md.swp"), &path).expect("test fixture");
    assert_eq!(client.recv().await, changed(&path));
    std::fs::write(&path, "four\n").expect("test fixture");
    assert_eq!(client.recv().await, changed(&path));

    // Other files of the directory are not reported.
    std::fs::write(format!("{root}/other.md"), "x").expect("test fixture");
    client.expect_silence(SETTLED).await;

    // Deleted: nothing to report; created again: reported.
    std::fs::remove_file(&path).expect("test fixture");
    client.expect_silence(SETTLED).await;
    std::fs::write(&path, "five\n").expect("test fixture");
    assert_eq!(client.recv().await, changed(&path));

    // A relative path is resolved against the boot working directory, and reported as written.
    watch(&mut client, "watched/other.md").await;
    std::fs::write(format!("{root}/other.md"), "y").expect("test fixture");
    let relative = client.recv().await;
    assert_eq!(relative["path"], "watched/other.md", "{relative}");
}

#[tokio::test]
async fn changes_in_quick_succession_are_pushed_once() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let path = format!("{root}/log.txt");
    std::fs::write(&path, "").expect("test fixture");
    let mut client = server.client().await;
    watch(&mut client, &path).await;

    for n in 0..10 {
        std::fs::write(&path, format!("{n}\n")).expect("test fixture");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.recv().await, changed(&path));
    client.expect_silence(SETTLED).await;
}

#[tokio::test]
async fn watches_are_counted_per_path_and_unwatching_stops_them() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let path = format!("{root}/a.txt");
    std::fs::write(&path, "").expect("test fixture");
    let mut client = server.client().await;

    // Two windows watch the file: it is watched until both unwatch it, as on real Letta.
    watch(&mut client, &path).await;
    watch(&mut client, &path).await;
    unwatch(&mut client, &path).await;
    std::fs::write(&path, "1").expect("test fixture");
    assert_eq!(client.recv().await, changed(&path));
    unwatch(&mut client, &path).await;
    std::fs::write(&path, "2").expect("test fixture");
    client.expect_silence(SETTLED).await;

    // Unwatching what is not watched does nothing.
    unwatch(&mut client, &format!("{root}/never.txt")).await;
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_watched_directory_reports_changes_of_its_entries() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let mut client = server.client().await;
    watch(&mut client, &root).await;
    std::fs::write(format!("{root}/new.txt"), "x").expect("test fixture");
    let frame = client.recv().await;
    assert_eq!(frame, changed(&root));
}

#[tokio::test]
async fn a_missing_file_cannot_be_watched() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let path = format!("{root}/gone.txt");
    let mut client = server.client().await;
    client
        .send(json!({"type": "watch_file", "request_id": "w-1", "path": path}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({"type": "error", "request_id": "w-1", "code": "internal", "frame_type": "watch_file",
            "message": format!("ENOENT: no such file or directory, watch '{path}'")})
    );
    // It is not watched: creating it reports nothing.
    std::fs::write(&path, "x").expect("test fixture");
    client.expect_silence(SETTLED).await;
}

#[tokio::test]
async fn watches_are_bounded_per_connection_and_end_with_it() {
    let server = TestServer::start().await;
    let root = directory(&server);
    let before = inotify_instances();
    let mut client = server.client().await;
    for n in 0..256 {
        let path = format!("{root}/f{n}.txt");
        std::fs::write(&path, "").expect("test fixture");
        client
            .send(json!({"type": "watch_file", "request_id": format!("w-{n}"), "path": path}))
            .await;
    }
    let past = format!("{root}/f256.txt");
    std::fs::write(&past, "").expect("test fixture");
    client
        .send(json!({"type": "watch_file", "request_id": "w-256", "path": past}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({"type": "error", "request_id": "w-256", "code": "limit_exceeded", "frame_type": "watch_file",
            "message": "too many watched files: a connection may watch 256 at once"})
    );
    // Watching a path watched already is no new watch.
    watch(&mut client, &format!("{root}/f0.txt")).await;
    client.expect_silence(Duration::from_millis(100)).await;
    assert_eq!(inotify_instances(), before + 1, "one OS watcher for the connection");

    // Another connection's watches are its own.
    let mut other = server.client().await;
    watch(&mut other, &past).await;
    assert!(instances_become(before + 2).await);

    client.close().await;
    assert!(
        instances_become(before + 1).await,
        "the closed connection's watcher is gone"
    );
    std::fs::write(&past, "still watched").expect("test fixture");
    assert_eq!(other.recv().await, changed(&past));

    // The last unwatch lets the OS watcher go.
    unwatch(&mut other, &past).await;
    assert!(instances_become(before).await);
}
