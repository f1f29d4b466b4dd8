//! The accept loop, on hyper's own connection builder rather than `axum::serve`, which offers
//! no header read timeout, no connection cap and no shutdown deadline.
//!
//! - **Header read timeout**: a client has `header_read_timeout` to send a request's headers;
//!   hyper also starts it while a kept-alive connection waits for its next request, so it is
//!   the idle timeout too. A slow-loris client dribbling bytes is dropped when it runs out.
//! - **Connection cap**: at most `max_connections` open at once (sockets included); beyond
//!   that new connections wait in the kernel's backlog rather than exhausting descriptors.
//! - **Graceful shutdown**: when `shutdown` completes the listener closes, each connection
//!   finishes the request it is serving (an acknowledged webhook is stored before its 200)
//!   and closes; what is still open after `deadline` is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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
    // Each connection holds a permit until it closes: the cap, and (all permits back) the end
    // of the drain.
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let (stopping, _) = tokio::sync::watch::channel(false);
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
        let connection = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = stopping.subscribe();
        tokio::spawn(async move {
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
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(settings.shutdown_deadline, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            deadline_s = settings.shutdown_deadline.as_secs(),
            "connections still open at the shutdown deadline were dropped"
        );
    }
    Ok(())
}
