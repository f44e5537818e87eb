//! The TCP connection under HTTP and the websockets (directly, or under TLS), shared so that any
//! task can cut it off.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// An accepted TCP connection, cheap to clone. The websocket reads and writes through one clone
/// while another stays with the task that ends the connection: a writer blocked on a peer that
/// stopped reading cannot be asked to give its half back, but the connection can still be cut.
///
/// tokio implements `AsyncRead`/`AsyncWrite` only for an owned `TcpStream`; these impls do the
/// same through the stream's shared readiness API.
#[derive(Debug, Clone)]
pub(super) struct Tcp(Arc<TcpStream>);

impl Tcp {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self(Arc::new(stream))
    }

    /// The peer's address, while the connection has one.
    pub(super) fn peer(&self) -> Option<std::net::SocketAddr> {
        self.0.peer_addr().ok()
    }

    /// Reads what the peer sent into `buf` without taking it from the stream.
    pub(super) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.peek(buf).await
    }

    /// Sends FIN: the peer reads the end of the stream after what was written.
    pub(super) fn shutdown_write(&self) {
        let _ = SockRef::from(&*self.0).shutdown(Shutdown::Write);
    }

    /// Cuts the connection off at once: every task using it wakes up to an error or the end of
    /// the stream, and when the last clone is dropped the peer gets a reset and the kernel
    /// discards whatever was still queued for it.
    pub(super) fn terminate(&self) {
        let socket = SockRef::from(&*self.0);
        // A zero linger cannot block: the close becomes a reset.
        let _ = socket.set_linger(Some(Duration::ZERO));
        let _ = socket.shutdown(Shutdown::Both);
    }

    /// Reads and discards what the peer sends until it closes its side (`true`), or `limit`
    /// bytes were discarded or reading failed (`false`).
    pub(super) async fn discard_input(&self, limit: usize) -> bool {
        let mut reader = self.clone();
        let mut buffer = vec![0; 64 * 1024];
        let mut discarded = 0;
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) => return true,
                Ok(read) if discarded + read <= limit => discarded += read,
                Ok(_) | Err(_) => return false,
            }
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&*self.0).shutdown(Shutdown::Write))
    }
}
