-- The claim a batch of webhooks was taken under, so that a whole batch is marked processed in
-- one statement (failures and retries are marked one by one before, and leave the claim).
alter table raw_webhooks add column claim_token text;
create index raw_webhooks_claim on raw_webhooks (claim_token) where claim_token is not null;
