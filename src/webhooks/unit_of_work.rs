//! Many commands on many aggregates, committed in one transaction.
//!
//! cqrs-es commits each command in its own transaction: right for an agent's command, too
//! slow for a backlog of webhooks (two commits per message). When webhooks pile up, the
//! processor loads every aggregate a batch touches in one query per type, runs the commands
//! through the same domain `handle`/`apply` in memory, and appends all resulting events
//! together with the inbox bookkeeping in one transaction. Optimistic concurrency still holds:
//! if another writer took a sequence first, the whole batch writes nothing and is redone one
//! command at a time through cqrs-es.

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use switchboard_domain::business_account::{BusinessAccount, BusinessAccountCommand};
use switchboard_domain::conversation::{Conversation, ConversationCommand};
use switchboard_domain::message::{Message, MessageCommand};
use switchboard_domain::template::{Template, TemplateCommand};
use switchboard_store::{EventRepository, Loaded, NewEvent, Snapshot, StoreError};

use crate::webhooks::commands::{CommandBus, Refusal};

/// Loaded aggregates of one type, with the events they gained in this unit of work.
struct Streams<A: Aggregate> {
    loaded: HashMap<String, Loaded<A>>,
    touched: Vec<String>,
}

impl<A> Streams<A>
where
    A: Aggregate<Services = ()>,
{
    /// `held` states are taken as they are; the other `ids` are loaded.
    async fn load(
        log: &EventRepository,
        ids: &[&str],
        mut held: HashMap<String, Loaded<A>>,
    ) -> Result<Self, StoreError> {
        let missing: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !held.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            held.extend(log.load_with_snapshots::<A>(&missing).await?);
        }
        Ok(Self {
            loaded: held,
            touched: Vec::new(),
        })
    }

    /// Snapshots of the aggregates that gained enough events.
    fn snapshots(&mut self, out: &mut Vec<Snapshot>) {
        for id in &self.touched {
            if let Some(snapshot) = self
                .loaded
                .get_mut(id)
                .and_then(|l| l.take_snapshot_if_due(id))
            {
                out.push(snapshot);
            }
        }
    }

    async fn execute(
        &mut self,
        id: &str,
        command: A::Command,
        metadata: &Value,
        out: &mut Vec<NewEvent>,
    ) -> Result<(), Refusal> {
        let loaded = self.loaded.entry(id.to_owned()).or_insert_with(|| Loaded {
            aggregate: A::default(),
            sequence: 0,
            snapshot_sequence: 0,
        });
        let sink = EventSink::default();
        loaded
            .aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(|e| Refusal::Permanent(e.to_string()))?;
        let events = sink.collect().await;
        if !events.is_empty() && !self.touched.iter().any(|t| t == id) {
            self.touched.push(id.to_owned());
        }
        let sequence = &mut loaded.sequence;
        for event in events {
            *sequence += 1;
            let payload = serde_json::to_value(&event)
                .map_err(|e| Refusal::Permanent(format!("event does not serialize: {e}")))?;
            out.push(NewEvent {
                aggregate_type: A::TYPE,
                aggregate_id: id.to_owned(),
                sequence: *sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload,
                metadata: metadata.clone(),
            });
        }
        Ok(())
    }
}

/// What a unit of work appends, and what it leaves the conversations it touched.
pub struct Changes {
    /// Events in the order they were decided.
    pub events: Vec<NewEvent>,
    /// Snapshots now due.
    pub snapshots: Vec<Snapshot>,
    /// Each conversation that gained events, as they leave it.
    pub conversations: Vec<(String, Loaded<Conversation>)>,
}

/// The aggregates of a batch and the events they gained, in the order they were decided.
pub struct UnitOfWork {
    conversations: Streams<Conversation>,
    messages: Streams<Message>,
    templates: Streams<Template>,
    accounts: Streams<BusinessAccount>,
    metadata: Value,
    events: Vec<NewEvent>,
}

impl UnitOfWork {
    /// Loads every aggregate named in `targets` (`(aggregate type, id)` pairs), except the
    /// conversations `held` in memory already (if one is stale, the append fails as a
    /// conflict: nothing is written).
    ///
    /// # Errors
    /// When the database fails or a stored event is unreadable.
    pub async fn load(
        log: &EventRepository,
        targets: &[(&'static str, String)],
        held: impl FnOnce(&[&str]) -> HashMap<String, Loaded<Conversation>>,
    ) -> Result<Self, StoreError> {
        let ids_of = |kind: &str| -> Vec<&str> {
            let mut ids: Vec<&str> = targets
                .iter()
                .filter(|(t, _)| *t == kind)
                .map(|(_, id)| id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let conversations = ids_of(Conversation::TYPE);
        let held = held(&conversations);
        Ok(Self {
            conversations: Streams::load(log, &conversations, held).await?,
            messages: Streams::load(log, &ids_of(Message::TYPE), HashMap::new()).await?,
            templates: Streams::load(log, &ids_of(Template::TYPE), HashMap::new()).await?,
            accounts: Streams::load(log, &ids_of(BusinessAccount::TYPE), HashMap::new()).await?,
            metadata: Value::Null,
            events: Vec::new(),
        })
    }

    /// Sets the metadata stamped on the events of the following commands.
    pub fn set_metadata(&mut self, metadata: Value) {
        self.metadata = metadata;
    }

    /// The events decided so far, and the snapshots now due, to append; and the conversations
    /// as those events leave them (for the conversations' store, once appended).
    pub fn into_changes(mut self) -> Changes {
        let mut snapshots = Vec::new();
        self.conversations.snapshots(&mut snapshots);
        self.messages.snapshots(&mut snapshots);
        self.templates.snapshots(&mut snapshots);
        self.accounts.snapshots(&mut snapshots);
        let conversations = std::mem::take(&mut self.conversations.touched)
            .into_iter()
            .filter_map(|id| {
                let loaded = self.conversations.loaded.remove(&id)?;
                Some((id, loaded))
            })
            .collect();
        Changes {
            events: self.events,
            snapshots,
            conversations,
        }
    }
}

impl CommandBus for UnitOfWork {
    async fn conversation(
        &mut self,
        id: &str,
        command: ConversationCommand,
    ) -> Result<(), Refusal> {
        self.conversations
            .execute(id, command, &self.metadata, &mut self.events)
            .await
    }

    async fn message(&mut self, id: &str, command: MessageCommand) -> Result<(), Refusal> {
        self.messages
            .execute(id, command, &self.metadata, &mut self.events)
            .await
    }

    async fn template(&mut self, id: &str, command: TemplateCommand) -> Result<(), Refusal> {
        self.templates
            .execute(id, command, &self.metadata, &mut self.events)
            .await
    }

    async fn account(&mut self, id: &str, command: BusinessAccountCommand) -> Result<(), Refusal> {
        self.accounts
            .execute(id, command, &self.metadata, &mut self.events)
            .await
    }
}
