//! The simulated network ([`crate::NetworkModel`]): a listener whose connections hold back their
//! first read for the connect cost and are counted, and paced reading of upload bodies.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::state::Shared;

/// Accepts connections, counts them in the record and wraps them in [`SlowStart`].
pub(crate) struct NetListener {
    pub(crate) listener: TcpListener,
    pub(crate) shared: Arc<Shared>,
}

impl axum::serve::Listener for NetListener {
    type Io = SlowStart;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SlowStart, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, address)) => {
                    // Small replies must not wait for Nagle: latency comes from the model only.
                    let _ = stream.set_nodelay(true);
                    self.shared.lock().record.connections_opened += 1;
                    let cost = self.shared.config.network.connect_cost;
                    return (SlowStart::new(stream, cost), address);
                }
                // e.g. too many open files: back off instead of spinning (as axum does).
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A TCP stream whose first read waits for the connection's set-up cost. Only reads wait: the
/// accept loop goes on, and nothing is written before a request was read anyway.
pub(crate) struct SlowStart {
    stream: TcpStream,
    start: Option<Pin<Box<Sleep>>>,
}

impl SlowStart {
    fn new(stream: TcpStream, cost: Duration) -> Self {
        let start = (!cost.is_zero()).then(|| Box::pin(tokio::time::sleep(cost)));
        SlowStart { stream, start }
    }
}

impl AsyncRead for SlowStart {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(start) = self.start.as_mut() {
            if start.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.start = None;
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SlowStart {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Reads `body` (at most `limit` bytes) no faster than `bytes_per_second`: after each frame it
/// sleeps until the bytes so far would have arrived at that rate, and reads nothing meanwhile, so
/// the sender is held back by TCP flow control rather than timed after the fact.
pub(crate) async fn read_paced(
    mut body: Body,
    limit: usize,
    bytes_per_second: u64,
) -> Result<Bytes, String> {
    let started = Instant::now();
    let mut received: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if received.len() + data.len() > limit {
            return Err("body too large".into());
        }
        received.extend_from_slice(&data);
        let due = Duration::from_secs_f64(received.len() as f64 / bytes_per_second.max(1) as f64);
        tokio::time::sleep_until(started + due).await;
    }
    Ok(Bytes::from(received))
}
