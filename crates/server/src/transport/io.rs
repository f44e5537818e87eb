//! The bytes of a connection: plain TCP, or TLS over it. HTTP and the websockets read and write
//! [`Io`] whichever it is; the [`Tcp`] under it stays at hand to cut the connection off.
//!
//! A TLS port answers a request that starts in plain text (a `ws://` or `http://` client) with
//! a 400 saying to use `wss://` or `https://`; any other bytes that are not a TLS handshake, a
//! failed handshake, or none completed within [`Config::tls_handshake_timeout`] close the
//! connection. None of it reaches HTTP, and none of it holds up another connection.
//!
//! [`Config::tls_handshake_timeout`]: crate::Config::tls_handshake_timeout

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::tcp::Tcp;

/// The first byte of a TLS record carrying a handshake message (RFC 8446 §5.1): every TLS
/// connection starts with one, its `ClientHello`.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The body of the answer to plain HTTP on a TLS port.
const PLAIN_ON_TLS_PORT: &str = "this port speaks TLS: connect with wss:// or https://\n";

/// What a plain-text client may send before the server gives up reading it.
const PLAIN_REQUEST_LIMIT: usize = 64 * 1024;

/// A connection's bytes.
pub(super) enum Io {
    /// Plain TCP.
    Plain(Tcp),
    /// TLS over TCP (boxed: a TLS session is a few KiB).
    Tls(Box<TlsStream<Tcp>>),
}

impl Io {
    /// The TCP connection under it.
    pub(super) fn tcp(&self) -> Tcp {
        match self {
            Self::Plain(tcp) => tcp.clone(),
            Self::Tls(stream) => stream.get_ref().0.clone(),
        }
    }

    /// Completes the TLS handshake of a new connection, or answers and drops one that is not
    /// TLS; `None` when the connection is done with. The caller bounds how long it may take.
    pub(super) async fn accept_tls(tcp: Tcp, acceptor: &TlsAcceptor) -> Option<Self> {
        let mut first = [0];
        match tcp.peek(&mut first).await {
            Ok(1) if first[0] == TLS_HANDSHAKE_RECORD => {}
            Ok(1) if first[0].is_ascii_uppercase() => {
                // A method name: HTTP in plain text.
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\
                     Content-Length: {}\r\n\r\n{PLAIN_ON_TLS_PORT}",
                    PLAIN_ON_TLS_PORT.len()
                );
                if tcp.clone().write_all(answer.as_bytes()).await.is_ok() {
                    tcp.shutdown_write();
                    // Read what the client sent, so that closing does not reset the connection
                    // before it read the answer.
                    tcp.discard_input(PLAIN_REQUEST_LIMIT).await;
                }
                return None;
            }
            _ => return None,
        }
        let stream = acceptor.accept(tcp).await.ok()?;
        Some(Self::Tls(Box::new(stream)))
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
