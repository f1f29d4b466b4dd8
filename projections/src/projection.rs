//! What a projection is.

use switchboard_store::{RecordedEvent, Statement};

use crate::DecodedEvent;

/// One read model's update rule: from an event to the statements that bring the model up to date.
///
/// Pure: no I/O, no clock. The statements must be idempotent per event only in the sense that
/// the runner applies each event exactly once (checkpoint in the same transaction).
pub trait Projection: Send + Sync {
    /// The checkpoint name; frozen once shipped.
    fn name(&self) -> &'static str;

    /// Appends the statements for `event` to `out` (nothing when the event does not concern it).
    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>);

    /// The tables this projection owns (a rebuild builds fresh copies and swaps them in).
    fn tables(&self) -> &'static [&'static str];

    /// The aggregate types whose events it reads: an event of one of them that cannot be
    /// decoded stops this projection (and only the projections that read it).
    fn reads(&self) -> &'static [&'static str];
}

/// Every projection of the application, in the order they are applied.
pub fn all_projections() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(crate::conversations::ConversationsProjection),
        Box::new(crate::messages::MessagesProjection),
        Box::new(crate::templates::TemplatesProjection),
        Box::new(crate::account_notifications::AccountNotificationsProjection),
        Box::new(crate::agents::AgentsProjection),
        Box::new(crate::groups::GroupsProjection),
        Box::new(crate::search::SearchProjection),
        Box::new(crate::assignment::AssignmentProjection),
        Box::new(crate::quick_replies::QuickRepliesProjection),
        Box::new(crate::response_times::ResponseTimesProjection),
        Box::new(crate::sla::SlaProjection),
        Box::new(crate::media::MediaProjection),
        Box::new(crate::api_keys::ApiKeysProjection),
        Box::new(crate::webhook_endpoints::WebhookEndpointsProjection),
    ]
}

/// The projections with these names (in application order); unknown names are ignored.
pub fn by_names(names: &[&str]) -> Vec<Box<dyn Projection>> {
    all_projections()
        .into_iter()
        .filter(|p| names.contains(&p.name()))
        .collect()
}
