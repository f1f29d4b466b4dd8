//! What each webhook instruction asks of the aggregates, written once for both ways of
//! executing it: one command at a time through cqrs-es, or many in one unit of work.

use switchboard_domain::business_account::{BusinessAccount, BusinessAccountCommand};
use switchboard_domain::conversation::{Conversation, ConversationCommand};
use switchboard_domain::message::{Message, MessageCommand};
use switchboard_domain::template::{Template, TemplateCommand};

use crate::whatsapp::payload::Instruction;

/// Why an instruction was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It can never succeed as it is (the domain refused it, or stored events are unreadable).
    Permanent(String),
    /// Storage trouble: try again later.
    Transient(String),
}

/// Executes commands on aggregates by id.
pub(crate) trait CommandBus {
    /// A conversation command.
    async fn conversation(&mut self, id: &str, command: ConversationCommand)
        -> Result<(), Refusal>;
    /// A message command.
    async fn message(&mut self, id: &str, command: MessageCommand) -> Result<(), Refusal>;
    /// A template command.
    async fn template(&mut self, id: &str, command: TemplateCommand) -> Result<(), Refusal>;
    /// A business account command.
    async fn account(&mut self, id: &str, command: BusinessAccountCommand) -> Result<(), Refusal>;
}

/// The aggregates an instruction touches, as `(aggregate type, id)`: loaded up front in a batch.
pub(crate) fn targets(instruction: &Instruction) -> Vec<(&'static str, String)> {
    use cqrs_es::Aggregate;
    match instruction {
        Instruction::CustomerMessage(m) => vec![
            (Conversation::TYPE, m.conversation_id.to_string()),
            (Message::TYPE, m.wamid.to_string()),
        ],
        Instruction::Echo(e) => vec![
            (Conversation::TYPE, e.conversation_id.to_string()),
            (Message::TYPE, e.wamid.to_string()),
        ],
        Instruction::Status(s) => vec![
            (Conversation::TYPE, s.conversation_id.to_string()),
            (Message::TYPE, s.message_id().to_owned()),
        ],
        Instruction::Template { template_id, .. } => vec![(Template::TYPE, template_id.clone())],
        Instruction::AccountNotification { waba_id, .. } => {
            vec![(BusinessAccount::TYPE, waba_id.to_string())]
        }
    }
}

/// Sends the commands an instruction stands for. The conversation is always told first, so a
/// message never refers to a conversation that does not exist yet.
pub(crate) async fn apply(
    instruction: Instruction,
    bus: &mut impl CommandBus,
) -> Result<(), Refusal> {
    match instruction {
        Instruction::CustomerMessage(m) => {
            let conversation_id = m.conversation_id.to_string();
            let conversation = ConversationCommand::RecordCustomerMessage {
                phone_number_id: m.phone_number_id.clone(),
                customer: m.customer.clone(),
                profile_name: m.profile_name.clone(),
                wamid: m.wamid.clone(),
                sent_at: m.sent_at,
                opens_window: m.content.opens_service_window(),
            };
            bus.conversation(&conversation_id, conversation).await?;
            let message = MessageCommand::ReceiveInbound {
                conversation_id: m.conversation_id,
                phone_number_id: m.phone_number_id,
                customer: m.customer,
                profile_name: m.profile_name,
                sent_at: m.sent_at,
                content: m.content,
                context: m.context,
                referral: m.referral,
                errors: m.errors,
            };
            bus.message(m.wamid.as_str(), message).await
        }
        Instruction::Echo(e) => {
            let touch = ConversationCommand::Touch {
                phone_number_id: e.phone_number_id.clone(),
                customer: e.customer.clone(),
                at: e.sent_at,
            };
            bus.conversation(&e.conversation_id.to_string(), touch)
                .await?;
            let message = MessageCommand::RecordEcho {
                conversation_id: e.conversation_id,
                phone_number_id: e.phone_number_id,
                customer: e.customer,
                sent_at: e.sent_at,
                content: e.content,
            };
            bus.message(e.wamid.as_str(), message).await
        }
        Instruction::Status(s) => {
            let touch = ConversationCommand::Touch {
                phone_number_id: s.phone_number_id.clone(),
                customer: s.customer.clone(),
                at: s.report.at,
            };
            bus.conversation(&s.conversation_id.to_string(), touch)
                .await?;
            let message_id = s.message_id().to_owned();
            let status = MessageCommand::RecordStatus {
                conversation_id: s.conversation_id,
                phone_number_id: s.phone_number_id,
                report: s.report,
            };
            bus.message(&message_id, status).await
        }
        Instruction::Template {
            template_id,
            report_id,
            change,
        } => {
            bus.template(
                &template_id,
                TemplateCommand::RecordChange { report_id, change },
            )
            .await
        }
        Instruction::AccountNotification {
            waba_id,
            notification_id,
            notification,
        } => {
            let command = BusinessAccountCommand::RecordNotification {
                notification_id,
                notification,
            };
            bus.account(waba_id.as_str(), command).await
        }
    }
}
