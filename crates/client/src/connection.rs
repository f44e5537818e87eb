//! The sockets of one connection: dialling them, and the tasks that write commands and read
//! frames until the connection ends. A supervisor reconnects when a policy is set.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::Error;
use crate::frame::RawFrame;
use crate::options::{Options, Reconnect};
use crate::restore;
use crate::sequencer::Sequencer;
use crate::shared::{OUTBOUND_CAPACITY, Shared};
use crate::tools::ExternalTools;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Commands queued per write.
const WRITE_BATCH: usize = 64;

/// The open sockets of one connection: one, or control then stream.
pub(crate) struct Sockets(Vec<Socket>);

/// Dials every socket of the transport.
pub(crate) async fn open(options: &Options) -> Result<Sockets, Error> {
    let mut sockets = Vec::new();
    for url in options.socket_urls() {
        sockets.push(dial(&url, options.token.as_deref(), options.tls.as_ref()).await?);
    }
    Ok(Sockets(sockets))
}

/// Opens one socket: TLS with `tls` for a `wss://` URL, the token in the upgrade.
async fn dial(url: &str, token: Option<&str>, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Socket, Error> {
    let connect_error = |message: String| Error::Connect {
        url: url.to_owned(),
        message,
    };
    let mut request = url.into_client_request().map_err(|e| connect_error(e.to_string()))?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| connect_error("the token is not a valid header value".into()))?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let connector = tls.map(|config| Connector::Rustls(Arc::clone(config)));
    match tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .trim()
                .to_owned();
            let status = response.status();
            Err(connect_error(if body.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {body}")
            }))
        }
        Err(e) => Err(connect_error(failure(&e))),
    }
}

/// Why dialling failed; a TLS error (which tokio-rustls wraps in an I/O error) says so.
fn failure(error: &tungstenite::Error) -> String {
    if let tungstenite::Error::Io(io) = error
        && let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return format!("TLS handshake failed: {tls}");
    }
    error.to_string()
}

/// What a connection task serves: the client's options, its core and its tools.
pub(crate) struct Connection {
    pub options: Options,
    pub shared: Arc<Shared>,
    pub tools: Arc<ExternalTools>,
}

/// Makes `sockets` the client's connection and returns the task that serves it, then
/// reconnects as the policy allows, until the client closes or the connection is lost for good.
pub(crate) fn start(connection: Connection, sockets: Sockets) -> tokio::task::JoinHandle<()> {
    let commands = link(&connection.shared);
    tokio::spawn(supervise(connection, sockets, commands))
}

/// A new outbound queue, which the client's commands go to from now on.
fn link(shared: &Shared) -> mpsc::Receiver<Message> {
    let (link, commands) = mpsc::channel(OUTBOUND_CAPACITY);
    shared.connected(link);
    commands
}

async fn supervise(connection: Connection, mut sockets: Sockets, mut commands: mpsc::Receiver<Message>) {
    let shared = &connection.shared;
    // The restore of the current connection; a later connection's restore replaces it.
    let mut restoring: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let reason = serve(&connection, sockets, commands).await;
        if let Some(restore) = restoring.take() {
            restore.abort();
        }
        if shared.is_closed() {
            return;
        }
        shared.disconnected(&reason);
        let Some(policy) = connection.options.reconnect.clone() else {
            shared.finish(Error::Disconnected { reason });
            return;
        };
        match redial(&connection, &policy).await {
            Some(new_sockets) => sockets = new_sockets,
            None => {
                shared.finish(Error::Disconnected { reason });
                return;
            }
        }
        commands = link(shared);
        shared.reconnected();
        let restorer = Arc::clone(shared);
        let timeout = connection.options.request_timeout;
        restoring = Some(tokio::spawn(async move {
            let answered = restore::runtimes(&*restorer, restorer.runtimes(), timeout).await;
            restorer.restored(answered);
        }));
    }
}

/// Dials again with back-off; `None` when the policy gives up or the client closes.
async fn redial(connection: &Connection, policy: &Reconnect) -> Option<Sockets> {
    let mut attempt = 1;
    loop {
        tokio::select! {
            () = connection.shared.shutdown.cancelled() => return None,
            () = tokio::time::sleep(policy.delay(attempt)) => {}
        }
        if let Ok(sockets) = open(&connection.options).await {
            return Some(sockets);
        }
        if policy.max_attempts.is_some_and(|max| attempt >= max) {
            return None;
        }
        attempt += 1;
    }
}

/// Writes queued commands to the first socket and reads every socket until one of them ends
/// or the client closes. Returns why the connection ended.
async fn serve(connection: &Connection, Sockets(sockets): Sockets, mut commands: mpsc::Receiver<Message>) -> String {
    let shared = &connection.shared;
    // One socket delivers its events in order; a pair needs putting back in order.
    let sequencer = (sockets.len() > 1).then(|| Mutex::new(Sequencer::default()));
    let mut sockets = sockets.into_iter();
    let Some(control) = sockets.next() else {
        return "no socket".into();
    };
    let (mut sink, control) = control.split();
    let readers = futures_util::future::select_all(
        std::iter::once(control)
            .chain(sockets.map(|socket| socket.split().1))
            .map(|stream| Box::pin(read(connection, sequencer.as_ref(), stream))),
    );
    let write = async {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        loop {
            tokio::select! {
                () = shared.shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return "closed by the client".to_owned();
                }
                received = commands.recv_many(&mut batch, WRITE_BATCH) => {
                    if received == 0 {
                        return "closed by the client".to_owned();
                    }
                }
            }
            for message in batch.drain(..) {
                if let Err(e) = sink.feed(message).await {
                    return format!("writing failed: {e}");
                }
            }
            if let Err(e) = sink.flush().await {
                return format!("writing failed: {e}");
            }
        }
    };
    tokio::select! {
        (reason, _, _) = readers => reason,
        reason = write => reason,
    }
}

/// Reads one socket, dispatching every text frame (in `event_seq` order through `sequencer`
/// when there is one), until it ends. Before each read it waits for room in paced streams.
async fn read(
    connection: &Connection,
    sequencer: Option<&Mutex<Sequencer>>,
    mut stream: futures_util::stream::SplitStream<Socket>,
) -> String {
    loop {
        connection.shared.make_room().await;
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame = RawFrame::new(text);
                match sequencer {
                    Some(sequencer) => sequencer
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .order(frame, |frame| receive(connection, &frame)),
                    None => receive(connection, &frame),
                }
            }
            Some(Ok(Message::Close(frame))) => return close_reason(frame.as_ref()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return format!("reading failed: {e}"),
            None => return "the socket closed".into(),
        }
    }
}

/// Hands a received frame to the client: streams and pending requests, then tool handlers.
fn receive(connection: &Connection, frame: &RawFrame) {
    connection.shared.dispatch(frame);
    if frame.frame_type() == "external_tool_call_request" {
        connection.tools.handle(&connection.shared, frame);
    }
}

fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) if frame.reason.is_empty() => format!("closed by the server ({})", u16::from(frame.code)),
        Some(frame) => format!("closed by the server ({}: {})", u16::from(frame.code), frame.reason),
        None => "closed by the server".into(),
    }
}
