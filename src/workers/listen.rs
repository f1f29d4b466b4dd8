//! PostgreSQL LISTEN for `switchboard_events`: events committed by any server instance wake
//! this instance's projection runner and event streams at once. No broker needed.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use switchboard_store::EventRepository;
use tokio::sync::watch;

/// The channel the `events_notify` trigger notifies.
pub const CHANNEL: &str = "switchboard_events";

/// Listens until `shutdown` fires, reconnecting after failures.
pub async fn run(pool: PgPool, log: EventRepository, mut shutdown: watch::Receiver<bool>) {
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            loop {
                listener.recv().await?;
                log.notify_appended();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listener => {
                if let Err(error) = result {
                    tracing::warn!(%error, "event notifications lost; reconnecting");
                }
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Whatever was committed meanwhile is found by the readers' own polling too.
        log.notify_appended();
    }
}
