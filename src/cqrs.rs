//! The one place that wires aggregates to the event store. Server, workers and tools call
//! [`framework`]; nothing else builds a `CqrsFramework`.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use switchboard_domain::agent::Agent;
use switchboard_domain::api_key::ApiKey;
use switchboard_domain::assignment::AssignmentPolicy;
use switchboard_domain::business_account::BusinessAccount;
use switchboard_domain::conversation::Conversation;
use switchboard_domain::group::Group;
use switchboard_domain::message::Message;
use switchboard_domain::quick_reply::QuickReply;
use switchboard_domain::sla::SlaPolicy;
use switchboard_domain::template::Template;
use switchboard_domain::upload::Upload;
use switchboard_domain::webhook_endpoint::WebhookEndpoint;
use switchboard_store::{EventRepository, SnapshotStore};

/// The command side of one aggregate type whose stream stays short (loaded whole).
pub type Framework<A> = Arc<CqrsFramework<A, PersistedEventStore<EventRepository, A>>>;

/// The command side of an aggregate type whose stream grows long: loaded from snapshots, kept
/// in memory while used, each command decided against that state and made atomic by the
/// append ([`SnapshotStore::execute`]; it retries lost races itself).
pub type SnapshotFramework<A> = Arc<SnapshotStore<A>>;

/// The command side of every aggregate.
#[derive(Clone)]
pub struct Frameworks {
    /// Conversations (a stream that grows with every customer message: snapshotted, and the
    /// ones in use kept in memory; one instance's writes to one conversation take turns).
    pub conversations: SnapshotFramework<Conversation>,
    /// Messages.
    pub messages: Framework<Message>,
    /// Templates.
    pub templates: Framework<Template>,
    /// Business accounts.
    pub accounts: Framework<BusinessAccount>,
    /// Agents.
    pub agents: Framework<Agent>,
    /// Groups.
    pub groups: Framework<Group>,
    /// Auto-assignment policies (one per pool).
    pub policies: Framework<AssignmentPolicy>,
    /// Quick replies.
    pub quick_replies: Framework<QuickReply>,
    /// SLA policies.
    pub sla_policies: Framework<SlaPolicy>,
    /// Files agents uploaded.
    pub uploads: Framework<Upload>,
    /// Integrations' credentials.
    pub api_keys: Framework<ApiKey>,
    /// Outgoing webhook endpoints.
    pub webhook_endpoints: Framework<WebhookEndpoint>,
}

/// Wires every aggregate to `log`. Read models are not registered here: projections tail the
/// log instead (see `switchboard-projections`), so a command's transaction is just its events.
pub fn framework(log: &EventRepository) -> Frameworks {
    Frameworks {
        conversations: Arc::new(SnapshotStore::new(log.clone())),
        messages: wire(log),
        templates: wire(log),
        accounts: wire(log),
        agents: wire(log),
        groups: wire(log),
        policies: wire(log),
        quick_replies: wire(log),
        sla_policies: wire(log),
        uploads: wire(log),
        api_keys: wire(log),
        webhook_endpoints: wire(log),
    }
}

fn wire<A>(log: &EventRepository) -> Framework<A>
where
    A: Aggregate<Services = ()> + 'static,
{
    let store = PersistedEventStore::new_event_store(log.clone());
    Arc::new(CqrsFramework::new(store, vec![], ()))
}

/// How many times a command is retried when another writer got to the aggregate first.
const CONFLICT_RETRIES: usize = 8;

/// Executes `command`, retrying on optimistic-concurrency conflicts (the command is re-decided
/// against the fresh state each time, so a retry never repeats a stale decision).
///
/// # Errors
/// The domain's refusal, or a storage failure; a conflict only after every retry lost.
pub async fn execute<A, ES>(
    framework: &Arc<CqrsFramework<A, ES>>,
    aggregate_id: &str,
    command: A::Command,
    metadata: &HashMap<String, String>,
) -> Result<(), AggregateError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone,
    ES: cqrs_es::EventStore<A>,
{
    let mut attempt = 0;
    loop {
        match framework
            .execute_with_metadata(aggregate_id, command.clone(), metadata.clone())
            .await
        {
            Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => attempt += 1,
            other => return other,
        }
    }
}
