//! The accept loop, on hyper's own connection builder rather than `axum::serve`, which offers
//! no header read timeout, no connection cap and no shutdown deadline.
//!
//! - **Header read timeout**: a client has `header_read_timeout` to send a request's headers;
//!   hyper also starts it while a kept-alive connection waits for its next request, so it is
//!   the idle timeout too. A slow-loris client dribbling bytes is dropped when it runs out.
//! - **Connection cap**: at most `max_connections` open at once; beyond that new connections
//!   wait in the kernel's backlog rather than exhausting descriptors. The permit lives in the
//!   connection's I/O object ([`Counted`]), so a connection upgraded to a WebSocket (which
//!   hyper hands over and forgets) still counts until it closes.
//! - **Graceful shutdown**: when `shutdown` completes the listener closes, each connection
//!   finishes the request it is serving (an acknowledged webhook is stored before its 200)
//!   and closes; what is still open after `deadline` is aborted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::EdgeSettings;

/// Serves `app` on `listener` until `shutdown` completes, then drains within the deadline.
///
/// # Errors
/// Never for a client's doing; accept errors are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &EdgeSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true);
    // Each connection holds a permit until it closes: the cap.
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let (stopping, _) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was accepted: wait
                    // a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // No Nagle delay: small frames (socket events, short answers) go out at once instead
        // of waiting up to 40 ms for the client's delayed acknowledgement.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let io = TokioIo::new(Counted {
            stream: tcp,
            _permit: permit,
        });
        let connection = http
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = stopping.subscribe();
        // Finished connections leave the set as it goes, so it holds only live ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_deadline, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            deadline_s = settings.shutdown_deadline.as_secs(),
            "connections still open at the shutdown deadline were aborted"
        );
        connections.abort_all();
    }
    Ok(())
}

/// A connection's stream with its place under the cap: the permit goes when the stream does,
/// whoever holds it then (hyper, or a WebSocket after an upgrade).
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
