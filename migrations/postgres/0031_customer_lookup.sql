-- Data-protection requests find a customer's conversations by number or business-scoped id.
create index conversations_by_customer_wa_id on conversations (customer_wa_id);
create index conversations_by_customer_user_id on conversations (customer_user_id);
