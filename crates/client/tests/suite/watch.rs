//! Following a file with [`Client::watch_file`]: its changes as a stream, the watch ended when
//! the stream goes, and restored after a reconnect.

use std::time::Duration;

use futures_util::StreamExt;
use letta_app_server_client::{Error, FileWatch, Gap, Transport};

use crate::support::{Connect, TestServer, WAIT, next};

fn file(server: &TestServer, name: &str) -> String {
    let path = server.data.path().join(name);
    std::fs::write(&path, "").expect("test fixture");
    path.canonicalize().expect("test fixture").display().to_string()
}

/// Writes `path` until the watch reports it (the watch starts once the server has read the
/// `watch_file`, which nothing answers).
async fn changed(watch: &mut FileWatch, path: &str) -> f64 {
    for n in 0..50 {
        std::fs::write(path, format!("{n}")).expect("test fixture");
        if let Ok(Some(change)) = tokio::time::timeout(Duration::from_millis(400), watch.next()).await {
            let change = change.expect("a change");
            assert_eq!(change.path, path);
            return change.last_modified;
        }
    }
    panic!("no change of {path} reported");
}

#[tokio::test]
async fn a_file_is_followed_until_the_stream_is_dropped() {
    let server = TestServer::start().await;
    let path = file(&server, "followed.md");
    let client = server.rust_client(Transport::Single).await;
    let mut watch = client.watch_file(&path).await.expect("watch_file is sent");
    assert_eq!(watch.path(), path);
    let modified = changed(&mut watch, &path).await;
    assert!(modified > 1.7e12, "milliseconds since the epoch: {modified}");

    // A second stream of the same file; dropping the first leaves the second watching.
    let mut second = client.watch_file(&path).await.expect("watch_file is sent");
    drop(watch);
    changed(&mut second, &path).await;
    second.close().await.expect("unwatch_file is sent");
    client.close().await;
}

#[tokio::test]
async fn a_refused_watch_ends_the_stream_with_the_servers_error() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let missing = server.data.path().join("missing.md").display().to_string();
    let mut watch = client.watch_file(&missing).await.expect("watch_file is sent");
    match next(&mut watch).await {
        Err(Error::Server { code, message, .. }) => {
            assert_eq!(code, "internal");
            assert_eq!(message, format!("ENOENT: no such file or directory, watch '{missing}'"));
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, watch.next()).await.expect("ends").is_none());
    client.close().await;
}

#[tokio::test]
async fn the_watch_is_restored_after_a_reconnect() {
    let mut server = TestServer::start().await;
    let path = file(&server, "durable.md");
    let client = server.builder(Transport::Single).connect().await.expect("connects");
    let mut watch = client.watch_file(&path).await.expect("watch_file is sent");
    changed(&mut watch, &path).await;

    server.restart().await;
    assert!(matches!(
        next(&mut watch).await,
        Err(Error::Gap(Gap::Disconnected { .. }))
    ));
    assert!(matches!(next(&mut watch).await, Err(Error::Gap(Gap::Reconnected))));
    changed(&mut watch, &path).await;
    client.close().await;
    assert!(tokio::time::timeout(WAIT, watch.next()).await.expect("ends").is_none());
}
