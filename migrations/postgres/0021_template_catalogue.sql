-- Template catalogue (projection `templates`): components as Meta lists them, how variables
-- are named, who submitted and last changed each template; sends look templates up by name
-- and language.
alter table templates add column components text;
alter table templates add column parameter_format text;
alter table templates add column submitted_by text;
alter table templates add column updated_by text;
create index templates_by_name on templates (name, language);
