//! The one builder used by `main`, the tests and the tools: connect, migrate, wire, bind.

use std::future::Future;
use std::sync::Arc;

use secrecy::SecretString;
use switchboard_domain::agent::{Email, Role};
use switchboard_domain::Timestamp;
use switchboard_projections::{all_projections, ProjectionRunner};
use switchboard_store::vault::MasterKeys;
use switchboard_store::{Database, EventRepository, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::accounts::{self, NewAgent};
use crate::auth::{passwords, Auth};
use crate::clock::Clock;
use crate::config::Settings;
use crate::cqrs::{framework, Frameworks};
use crate::http::{self, AppState, Shared};
use crate::telemetry::error_chain;
use crate::webhooks::inbox::WebhookInbox;
use crate::webhooks::processor::WebhookProcessor;
use crate::workers::health::{Worker, WorkerHealth};
use crate::workers::lock_expiry::LockExpiry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database setup failed")]
    Store(#[from] StoreError),
    /// The first admin could not be created.
    #[error("creating the first admin failed")]
    FirstAdmin(#[source] crate::auth::accounts::AccountError),
    /// The media directory could not be used.
    #[error("cannot keep media files")]
    Media(#[source] crate::media::StoreError),
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
    first_admin: Option<FirstAdmin>,
    listener: TcpListener,
    port: u16,
    state: AppState,
    frameworks: Frameworks,
    settings: Settings,
}

/// The admin created on the first start of an empty install, with a one-time password to be
/// shown once (and changed).
pub struct FirstAdmin {
    /// Login email.
    pub email: String,
    /// The generated password.
    pub password: SecretString,
}

impl Application {
    /// Connects, migrates and binds. Port 0 picks a free port; [`Self::port`] reports it.
    ///
    /// # Errors
    /// When the database cannot be set up or the address cannot be bound.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let (database, log, frameworks) =
            connect_store(&settings.database, &settings.master_keys).await?;
        let first_admin = create_first_admin(&log, &frameworks, &settings, clock.now()).await?;
        let inbox = WebhookInbox::start(database.clone());
        let media = crate::media::MediaStore::open(&settings.media).map_err(StartupError::Media)?;
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
        let auth = Auth::new(&settings.auth);
        let limits = Arc::new(crate::edge::limits::Limits::new(
            &settings.edge,
            Arc::clone(&auth.keys),
            Arc::clone(&clock),
        ));
        let state = AppState::new(Shared {
            database,
            log,
            inbox,
            whatsapp: Arc::new(settings.whatsapp.clone()),
            clock,
            frameworks: frameworks.clone(),
            auth,
            conversations: Arc::new(settings.conversations.clone()),
            workers: Arc::new(WorkerHealth::default()),
            started: std::time::Instant::now(),
            metrics: crate::metrics::handle(),
            event_stream_max: settings.realtime.event_stream_max,
            graph: if settings.outbound.send {
                crate::whatsapp::graph::GraphClient::new(settings.outbound.graph.clone()).ok()
            } else {
                None
            },
            stopped_projections: switchboard_projections::StoppedProjections::default(),
            sockets_connected: Arc::default(),
            media,
            outgoing: Arc::new(settings.outgoing.clone()),
            stream: Arc::new(crate::stream::StreamStatus::new(
                settings.stream.url.is_some(),
            )),
            edge: Arc::new(settings.edge.clone()),
            limits,
        });
        Ok(Self {
            first_admin,
            listener,
            port,
            state,
            frameworks,
            settings,
        })
    }

    /// The admin created by this start, if the install was empty. Shown once: take it.
    pub fn take_first_admin(&mut self) -> Option<FirstAdmin> {
        self.first_admin.take()
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
                self.settings.whatsapp.extra_fields.clone(),
            );
            self.state.workers.expect(Worker::WebhookProcessor);
            workers.spawn(processor.run(
                self.state.inbox.stored(),
                stopped.clone(),
                Arc::clone(&self.state.workers),
            ));
        }
        if self.settings.workers.expire_locks {
            let expiry = LockExpiry::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.conversations.expiry_interval,
            );
            self.state.workers.expect(Worker::LockExpiry);
            workers.spawn(expiry.run(stopped.clone(), Arc::clone(&self.state.workers)));
        }
        if self.settings.workers.expire_locks {
            let watch = crate::workers::sla::SlaWatch::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.conversations.sla_interval,
            );
            workers.spawn(watch.run(stopped.clone()));
        }
        if self.settings.workers.auto_assign {
            let assigner = crate::workers::auto_assign::AutoAssigner::new(
                self.state.log.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.conversations.assign_interval,
            );
            workers.spawn(assigner.run(stopped.clone()));
        }
        if let switchboard_store::Database::Postgres(pool) = &self.state.database {
            workers.spawn(crate::workers::listen::run(
                pool.clone(),
                self.state.log.clone(),
                stopped.clone(),
            ));
        }
        if self.settings.outbound.send {
            // The client the state holds, so that health sees what the sender's calls met.
            let graph = match self.state.graph.clone() {
                Some(graph) => Ok(graph),
                None => {
                    crate::whatsapp::graph::GraphClient::new(self.settings.outbound.graph.clone())
                }
            };
            match graph {
                Ok(graph) => {
                    let sender = crate::workers::outbound::OutboundSender::new(
                        self.state.log.clone(),
                        graph,
                        Arc::clone(&self.state.clock),
                        self.settings.workers.webhook_retry,
                        &self.settings.outbound,
                    )
                    .with_media(self.state.media.clone());
                    workers.spawn(sender.run(stopped.clone()));
                }
                Err(error) => {
                    tracing::error!(%error, "the Graph API client cannot be built; not sending")
                }
            }
        }
        if self.settings.workers.auto_assign {
            match crate::outgoing::deliver::Deliverer::new(
                self.state.log.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.outgoing.clone(),
            ) {
                Ok(deliverer) => {
                    workers.spawn(deliverer.run(stopped.clone()));
                }
                Err(error) => tracing::error!(%error, "no outgoing webhooks: HTTP client"),
            }
            let watch = crate::workers::bot_watch::BotWatch::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.outgoing.clone(),
            );
            workers.spawn(watch.run(stopped.clone()));
        }
        if self.settings.stream.url.is_some() {
            let publisher = crate::stream::publisher::Publisher::new(
                self.state.log.clone(),
                self.settings.stream.clone(),
                Arc::clone(&self.state.stream),
            );
            workers.spawn(publisher.run(stopped.clone()));
        }
        if let Some(keep) = self.settings.workers.raw_webhook_retention {
            let retention = crate::webhooks::retention::RawWebhookRetention::new(
                self.state.database.clone(),
                Arc::clone(&self.state.clock),
                keep,
            );
            workers.spawn(retention.run(std::time::Duration::from_secs(60), stopped.clone()));
        }
        if self.settings.workers.content_retention.enabled() {
            let retention = crate::privacy::retention::ContentRetentionWorker::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.workers.content_retention.clone(),
            );
            let every = self.settings.workers.content_retention_interval;
            workers.spawn(retention.run(every, stopped.clone()));
        }
        crate::privacy::rewrap_in_background(self.state.log.clone());
        if let Some(keep) = self.settings.media.retention {
            let retention = crate::media::retention::Retention::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                self.state.media.clone(),
                Arc::clone(&self.state.clock),
                keep,
            );
            workers.spawn(retention.run(stopped.clone()));
        }
        if let Some(graph) = self.state.graph.clone() {
            let fetcher = crate::media::fetch::MediaFetcher::new(
                self.state.log.clone(),
                self.state.stopped_projections.clone(),
                self.frameworks.clone(),
                graph,
                self.state.media.clone(),
                Arc::clone(&self.state.clock),
                self.settings.media.clone(),
            );
            workers.spawn(fetcher.run(stopped.clone()));
        }
        if let Some(graph) = self.state.graph.clone() {
            // Once at start, in the background: a slow or failing Meta delays nothing else.
            tokio::spawn(crate::workers::template_sync::at_start(
                graph,
                self.frameworks.clone(),
                self.state.log.clone(),
                Arc::clone(&self.state.clock),
                self.settings.whatsapp.business_accounts.clone(),
            ));
        }
        if self.settings.workers.run_projections {
            let runner = ProjectionRunner::new(self.state.log.clone(), all_projections())
                .reporting_to(self.state.stopped_projections.clone());
            let health = Arc::clone(&self.state.workers);
            health.expect(Worker::Projections);
            workers.spawn(runner.run(stopped.clone(), move || health.beat(Worker::Projections)));
        }
        workers.spawn(Arc::clone(&self.state.auth.cache).keep_checked(
            self.state.log.clone(),
            Arc::clone(&self.state.clock),
            stopped.clone(),
        ));
        let (socket_layer, realtime) =
            crate::realtime::Realtime::new(self.state.clone(), self.settings.realtime.clone());
        workers.spawn(realtime.clone().run_fanout(stopped.clone()));
        workers.spawn(realtime.clone().run_expiry(stopped.clone()));
        if self.settings.workers.auto_assign {
            let presence = crate::workers::availability::Presence::new(
                self.state.database.clone(),
                self.frameworks.clone(),
                Arc::clone(&self.state.clock),
                self.settings.conversations.availability_grace,
            );
            let sockets = realtime.clone();
            workers.spawn(presence.run(move || sockets.agents_connected(), stopped.clone()));
        }
        let database = self.state.database.clone();
        let edge = Arc::clone(&self.state.edge);
        let app = http::router(self.state).layer(socket_layer);
        let served = crate::edge::listen::serve(self.listener, app, &edge, async move {
            shutdown.await;
            tracing::info!("shutting down");
            realtime.close().await;
        })
        .await;
        if let Err(error) = &served {
            tracing::error!(error = %error_chain(error), "server failed");
        }
        let _receivers_gone = stop.send(true);
        // Workers finish what they hold (a send under way, a batch being committed); one that
        // does not within the deadline is aborted, so a stop never hangs.
        let finished = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(edge.shutdown_deadline, finished)
            .await
            .is_err()
        {
            tracing::warn!(
                open = workers.len(),
                "workers still running at the deadline were aborted"
            );
            workers.abort_all();
        }
        database.close().await;
        served
    }
}

/// Connects to the database, brings its schema up to date and wires the command side: the
/// store as the server, the command line and the tools all see it.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn connect_store(
    config: &switchboard_store::DatabaseConfig,
    master_keys: &Arc<MasterKeys>,
) -> Result<(Database, EventRepository, Frameworks), StoreError> {
    let database = Database::connect(config).await?;
    database.migrate().await?;
    let log = EventRepository::new(database.clone(), master_keys.clone());
    let frameworks = framework(&log);
    Ok((database, log, frameworks))
}

/// On an install with no agent at all, registers an admin with a random password.
async fn create_first_admin(
    log: &EventRepository,
    frameworks: &Frameworks,
    settings: &Settings,
    now: Timestamp,
) -> Result<Option<FirstAdmin>, StartupError> {
    if accounts::any_registered(log).await? {
        return Ok(None);
    }
    let email = Email::parse(&settings.auth.first_admin_email)
        .map_err(|message| StartupError::FirstAdmin(accounts::AccountError::Command(message)))?;
    let password = passwords::generate();
    let admin = NewAgent {
        email: email.clone(),
        name: "Administrator".to_owned(),
        role: Role::Admin,
        groups: vec![],
        permissions: None,
        working_hours: None,
        password: password.clone(),
        one_time_password: true,
    };
    match accounts::register(frameworks, log.database(), admin, None, now).await {
        Ok(_) => Ok(Some(FirstAdmin {
            email: email.to_string(),
            password,
        })),
        // Another instance starting at the same moment created it.
        Err(accounts::AccountError::Agent(
            switchboard_domain::agent::AgentError::AlreadyRegistered,
        )) => Ok(None),
        Err(error) => Err(StartupError::FirstAdmin(error)),
    }
}
