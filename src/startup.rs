//! The one builder used by `main`, the tests and the tools: connect, migrate, wire, bind.

use std::future::Future;
use std::sync::Arc;

use switchboard_projections::{all_projections, ProjectionRunner};
use switchboard_store::{Database, EventRepository, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Settings;
use crate::cqrs::{framework, Frameworks};
use crate::http::{self, AppState};
use crate::telemetry::error_chain;
use crate::webhooks::inbox::WebhookInbox;
use crate::webhooks::processor::WebhookProcessor;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database setup failed")]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A built server: database migrated, workers wired, listener bound.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    frameworks: Frameworks,
    settings: Settings,
}

impl Application {
    /// Connects, migrates and binds. Port 0 picks a free port; [`Self::port`] reports it.
    ///
    /// # Errors
    /// When the database cannot be set up or the address cannot be bound.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let database = Database::connect(&settings.database).await?;
        database.migrate().await?;
        let log = EventRepository::new(database.clone());
        let frameworks = framework(&log);
        let inbox = WebhookInbox::start(database.clone());
        let listener = TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?
            .port();
        let state = AppState {
            database,
            log,
            inbox,
            whatsapp: Arc::new(settings.whatsapp.clone()),
            clock,
        };
        Ok(Self {
            listener,
            port,
            state,
            frameworks,
            settings,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database (tests use it to prove durability).
    pub fn database(&self) -> &Database {
        &self.state.database
    }

    /// Serves requests and runs the workers until `shutdown` completes, then stops them all
    /// and closes the database.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        if self.settings.workers.process_webhooks {
            let processor = WebhookProcessor::new(
                self.state.log.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.workers.clone(),
            );
            workers.spawn(processor.run(self.state.inbox.stored(), stopped.clone()));
        }
        if self.settings.workers.run_projections {
            let runner = ProjectionRunner::new(self.state.log.clone(), all_projections());
            workers.spawn(runner.run(stopped.clone()));
        }
        let database = self.state.database.clone();
        let app = http::router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down");
            })
            .await;
        if let Err(error) = &served {
            tracing::error!(error = %error_chain(error), "server failed");
        }
        let _receivers_gone = stop.send(true);
        while workers.join_next().await.is_some() {}
        database.close().await;
        served
    }
}
