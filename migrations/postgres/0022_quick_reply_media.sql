-- Quick replies may send media (projection `quick_replies`), their text as the caption.
alter table quick_replies add column media text;
