// Admin pages (by permission): agents and their rights, groups, dead letters (sends and
// webhooks) with retry and purge, and the server's health.
import { html, useState, useEffect } from './ui.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { when } from './format.js';

/** Loads `path` and offers `reload`; an error is shown in place of the data. */
function useLoad(path) {
  const [state, setState] = useState({ data: null, error: '' });
  const reload = () => api('GET', path).then((data) => setState({ data, error: '' }), (e) => setState({ data: null, error: e.message }));
  useEffect(() => {
    reload();
  }, [path]);
  return [state, reload];
}

function Agents() {
  const [{ data, error }, reload] = useLoad('/api/agents');
  const [problem, setProblem] = useState('');
  const act = (promise) => promise.then(() => { setProblem(''); reload(); }, (e) => setProblem(e.message));
  async function create(event) {
    event.preventDefault();
    const formElement = event.target;
    const form = new FormData(formElement);
    try {
      await api('POST', '/api/agents', Object.fromEntries(form.entries()));
      formElement.reset();
      setProblem('');
      reload();
    } catch (e) {
      setProblem(e.message);
    }
  }
  return html`<section aria-labelledby="agents-title">
    <h2 id="agents-title">${t('admin.agents')}</h2>
    ${(error || problem) && html`<p class="error" role="alert">${error || problem}</p>`}
    <table>
      <thead><tr><th>${t('admin.name')}</th><th>${t('signin.email')}</th><th>${t('admin.role')}</th><th>${t('admin.availability')}</th><th>${t('admin.permissions')}</th><th></th></tr></thead>
      <tbody>${(data || []).map((a) => html`<tr>
        <td>${a.name}</td><td>${a.email}</td>
        <td><select value=${a.role} aria-label=${t('admin.role')} onChange=${(e) => act(api('PATCH', `/api/agents/${a.id}`, { role: e.target.value }))}>
          ${['admin', 'supervisor', 'agent'].map((r) => html`<option value=${r}>${t(`role.${r}`)}</option>`)}</select></td>
        <td>${a.active ? t(`availability.${a.availability}`) : t('admin.inactive')}</td>
        <td><${Rights} agent=${a} onChange=${(permissions) => act(api('PATCH', `/api/agents/${a.id}`, { permissions }))} /></td>
        <td>${a.active
          ? html`<button onClick=${() => act(api('POST', `/api/agents/${a.id}/deactivate`, {}))}>${t('admin.deactivate')}</button>`
          : html`<button onClick=${() => act(api('POST', `/api/agents/${a.id}/reactivate`, {}))}>${t('admin.reactivate')}</button>`}</td>
      </tr>`)}</tbody>
    </table>
    <form class="tools" onSubmit=${create}>
      <input name="name" required aria-label=${t('admin.name')} placeholder=${t('admin.name')} />
      <input name="email" type="email" required aria-label=${t('signin.email')} placeholder=${t('signin.email')} />
      <select name="role" aria-label=${t('admin.role')}>${['agent', 'supervisor', 'admin'].map((r) => html`<option value=${r}>${t(`role.${r}`)}</option>`)}</select>
      <input name="password" type="password" minlength="12" required aria-label=${t('signin.password')} placeholder=${t('signin.password')} />
      <button type="submit">${t('admin.add_agent')}</button>
    </form>
  </section>`;
}

const SCOPES = ['all', 'group', 'assigned', 'none'];
const FLAGS = ['can_use_tags', 'can_manage_templates', 'can_view_analytics', 'can_export_data', 'can_manage_agents'];

/** An agent's permissions as controls; the server refuses what the editor may not grant. */
function Rights({ agent, onChange }) {
  const p = agent.permissions || {};
  return html`<div class="rights">
    ${['can_read_chats', 'can_write_to_chats'].map((scope) => html`<label>${t(`permission.${scope}`)}
      <select value=${p[scope]} onChange=${(e) => onChange({ [scope]: e.target.value })}>
        ${SCOPES.map((s) => html`<option value=${s}>${t(`scope.${s}`)}</option>`)}
      </select></label>`)}
    ${FLAGS.map((flag) => html`<label><input type="checkbox" checked=${!!p[flag]}
      onChange=${(e) => onChange({ [flag]: e.target.checked })} /> ${t(`permission.${flag}`)}</label>`)}
  </div>`;
}

function Groups() {
  const [{ data, error }, reload] = useLoad('/api/groups');
  async function create(event) {
    event.preventDefault();
    const name = new FormData(event.target).get('name');
    await api('POST', '/api/groups', { name }).then(reload, () => {});
    event.target.reset();
  }
  return html`<section aria-labelledby="groups-title">
    <h2 id="groups-title">${t('admin.groups')}</h2>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <ul>${(data || []).map((g) => html`<li>${g.name}</li>`)}</ul>
    <form class="tools" onSubmit=${create}>
      <input name="name" required aria-label=${t('admin.name')} placeholder=${t('admin.name')} />
      <button type="submit">${t('admin.add_group')}</button>
    </form>
  </section>`;
}

/** Dead letters of one kind: `base` lists them, `base/{id}/retry` retries one. */
function DeadLetters({ title, base, retryAll }) {
  const [{ data, error }, reload] = useLoad(base);
  const [problem, setProblem] = useState('');
  const act = (promise) => promise.then(() => { setProblem(''); reload(); }, (e) => setProblem(e.message));
  const purge = () => confirm(t('admin.confirm_purge')) && act(api('DELETE', `${base}?older_than=${encodeURIComponent(new Date().toISOString())}`));
  const items = data?.items || [];
  return html`<section>
    <h2>${title} (${items.length})</h2>
    ${(error || problem) && html`<p class="error" role="alert">${error || problem}</p>`}
    <div class="tools">
      ${retryAll && html`<button onClick=${() => act(api('POST', retryAll, {}))} disabled=${!items.length}>${t('admin.retry_all')}</button>`}
      <button onClick=${purge} disabled=${!items.length}>${t('admin.purge')}</button>
    </div>
    <table>
      <thead><tr><th>${t('admin.when')}</th><th>${t('admin.attempts')}</th><th>${t('admin.error')}</th><th></th></tr></thead>
      <tbody>${items.map((d) => html`<tr>
        <td>${when(d.dead_lettered_at || d.received_at)}</td><td>${d.attempts}</td>
        <td><code>${typeof d.error === 'string' ? d.error : JSON.stringify(d.error)}</code></td>
        <td><button onClick=${() => act(api('POST', `${base}/${encodeURIComponent(d.id)}/retry`, {}))}>${t('ticks.retry')}</button></td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}

function Health() {
  const [{ data, error }] = useLoad('/api/health/detailed');
  return html`<section>
    <h2>${t('admin.health')}</h2>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${data && html`<pre>${JSON.stringify(data, null, 2)}</pre>`}
  </section>`;
}

export function Admin({ me }) {
  const admin = me.role === 'admin';
  return html`<main class="admin" data-testid="admin">
    ${me.permissions?.can_manage_agents && html`<${Agents} /><${Groups} />`}
    ${admin && html`<${DeadLetters} title=${t('admin.dead_sends')} base="/api/dead-letters" />
      <${DeadLetters} title=${t('admin.dead_webhooks')} base="/api/webhooks/dead-letters" retryAll="/api/webhooks/dead-letters/retry-all" />`}
    ${admin && html`<${Health} />`}
  </main>`;
}
