//! An erasure request on the stream. JetStream keeps what was published, so when the
//! publisher has published a `ConversationCustomerErased`, it deletes from the stream every
//! earlier message of that conversation (found by its `Switchboard-Conversation-Id` header in a
//! headers-only scan): a consumer replaying the stream afterwards finds neither the customer's
//! data nor the events that carried it, and the erasure itself stays. The log stays the
//! source of truth: republishing it into a new stream gives `[erased]` in their place.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

/// What went wrong with NATS.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long the scan waits for the next header before deciding it has seen them all.
const QUIET: Duration = Duration::from_secs(2);

/// Deletes the messages of `conversation` before stream sequence `erased_at` from `stream`;
/// returns how many.
///
/// # Errors
/// NATS failures.
pub(crate) async fn forget_conversation(
    context: &jetstream::Context,
    stream: &str,
    conversation: &str,
    erased_at: u64,
) -> Result<u64, Error> {
    let stream = context.get_stream(stream).await?;
    let scan = stream
        .create_consumer(consumer::pull::OrderedConfig {
            headers_only: true,
            ..Default::default()
        })
        .await?;
    let mut messages = scan.messages().await?;
    let mut deleted = 0;
    while let Ok(Some(message)) = tokio::time::timeout(QUIET, messages.next()).await {
        let message = message?;
        let sequence = message.info()?.stream_sequence;
        if sequence >= erased_at {
            break;
        }
        let of_conversation = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Switchboard-Conversation-Id"))
            .is_some_and(|c| c.as_str() == conversation);
        if of_conversation && stream.delete_message(sequence).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}
