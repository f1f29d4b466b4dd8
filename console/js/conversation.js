// One conversation: header (customer, window, owner, status, assignment, tags), lock and
// viewers (collision warnings), the timeline, and the composer.
import { html, useState, useEffect } from './ui.js';
import { api } from './api.js';
import * as live from './live.js';
import { t } from './i18n.js';
import { currentLock, time, windowText } from './format.js';
import { readAfter, useLive } from './inbox.js';
import { Timeline } from './timeline.js';
import { Composer } from './composer.js';

/** Every message of a conversation, oldest first (the API pages forward), including `seen`. */
async function allMessages(id, seen) {
  let items = [];
  let cursor = null;
  const after = readAfter(seen);
  for (let page = 0; page < 20; page += 1) {
    const answer = await api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}${after && !cursor ? `&${after}` : ''}`);
    items = items.concat(answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** A readable sentence for an API refusal. */
export function explain(error, agents) {
  if (error.code === 'conversation_locked') {
    return t('error.locked', { name: agents.name(error.body.locked_by), time: time(error.body.expires_at) });
  }
  if (error.code === 'conversation_changed') return t('error.changed');
  if (error.code === 'window_closed') return t('error.window_closed');
  if (error.status === 403) return t('error.forbidden');
  if (error.status === 0) return t('error.network');
  return t('error.generic', { message: error.message });
}

export function Conversation({ id, me, agents, onBack }) {
  const path = encodeURIComponent(id);
  const [conversation, setConversation] = useState(null);
  const [messages, setMessages] = useState([]);
  const [viewers, setViewers] = useState([]);
  const [problem, setProblem] = useState('');
  const [replyTo, setReplyTo] = useState(null);
  const [, tick] = useState(0);

  useLive(async (isCurrent, seen) => {
    try {
      const after = readAfter(seen);
      const [view, items] = await Promise.all([api('GET', `/api/conversations/${path}${after ? `?${after}` : ''}`), allMessages(id, seen)]);
      if (!isCurrent()) return;
      setConversation(view);
      setMessages(items);
      if (view.unread_count > 0 && document.visibilityState === 'visible') api('POST', `/api/conversations/${path}/read`).catch(() => {});
    } catch (e) {
      setProblem(explain(e, agents));
    }
  }, [id], (envelope) => !envelope.conversation_id || envelope.conversation_id === id);

  // Presence: who else is viewing (joined again after every reconnect).
  useEffect(() => {
    const joinRoom = () => live.join(id).then((answer) => answer?.viewers && setViewers(answer.viewers));
    joinRoom();
    const offStatus = live.on('status', (up) => up && joinRoom());
    const offPresence = live.on('presence', (p) => p.conversation_id === id && setViewers(p.data.viewers));
    const clock = setInterval(() => tick((n) => n + 1), 30_000);
    setProblem('');
    return () => {
      live.leave(id);
      offStatus();
      offPresence();
      clearInterval(clock);
    };
  }, [id]);

  if (!conversation) return html`<section class="conversation" aria-busy="true"></section>`;
  const c = conversation;
  const act = (method, action, body) => api(method, `/api/conversations/${path}${action}`, body).then(() => setProblem('')).catch((e) => setProblem(explain(e, agents)));
  const assign = (value) => {
    const [kind, target] = value.split(':');
    if (!kind) return act('DELETE', '/assignment');
    return act('PUT', '/assignment', kind === 'group' ? { group_id: target } : { agent_id: target });
  };
  const others = viewers.filter((v) => v !== me.id);
  const lock = currentLock(c.lock);
  const lockedByOther = lock && lock.agent_id !== me.id;

  return html`<section class="conversation" data-testid="conversation" aria-label=${c.customer.profile_name || c.customer.wa_id}>
    <header>
      <button class="back link" onClick=${onBack}>← ${t('conversation.back')}</button>
      <h2>${c.customer.profile_name || c.customer.wa_id}</h2>
      <span class="phone">${c.customer.wa_id || ''}</span>
      <span class="window" data-testid="window">${windowText(c.service_window_closes_at)}</span>
      <div class="actions">
        ${c.owned_by_bot
          ? html`<button onClick=${() => act('POST', '/takeover')}>${t('conversation.takeover')}</button>`
          : html`<button onClick=${() => act('POST', '/handback')}>${t('conversation.handback')}</button>`}
        <label>${t('inbox.status')}
          <select value=${c.status} onChange=${(e) => act('PUT', '/status', e.target.value === 'snoozed'
            ? { status: 'snoozed', snoozed_until: new Date(Date.now() + 3_600_000).toISOString() } : { status: e.target.value })}>
            ${['open', 'pending', 'snoozed', 'resolved'].map((s) => html`<option value=${s}>${t(`status.${s}`)}</option>`)}
          </select>
        </label>
        <label>${t('conversation.assign')}
          <select value=${c.assigned_agent_id ? `agent:${c.assigned_agent_id}` : c.assigned_group_id ? `group:${c.assigned_group_id}` : ''}
            onChange=${(e) => assign(e.target.value)} data-testid="assign">
            <option value="">${t('conversation.unassign')}</option>
            ${agents.list().filter((a) => a.active !== false).map((a) => html`<option value=${`agent:${a.id}`}>${a.id === me.id ? t('conversation.assign_me') : a.name}</option>`)}
            ${agents.groups().map((g) => html`<option value=${`group:${g.id}`}>${t('conversation.group', { name: g.name })}</option>`)}
          </select>
        </label>
      </div>
      <div class="tags" aria-label=${t('conversation.tags')}>
        ${c.tags.map((tag) => html`<span class="pill">${tag} <button class="link" aria-label=${t('conversation.remove_tag', { tag })} onClick=${() => act('DELETE', `/tags/${encodeURIComponent(tag)}`)}>×</button></span>`)}
        <form onSubmit=${(e) => { e.preventDefault(); const tag = e.target.tag.value.trim(); if (tag) act('POST', '/tags', { tag }); e.target.reset(); }}>
          <input name="tag" aria-label=${t('conversation.add_tag')} placeholder=${t('conversation.add_tag')} size="10" />
        </form>
      </div>
    </header>
    <div class="presence">
      ${lock && !lockedByOther && html`<span class="lock mine" data-testid="lock-mine">🔒 ${t('lock.mine')}
        <button class="link" onClick=${() => act('DELETE', '/lock')}>${t('lock.release')}</button></span>`}
      ${lockedByOther && html`<span class="lock other" role="status" data-testid="lock-other">🔒 ${t('lock.other', { name: agents.name(lock.agent_id), time: time(lock.expires_at) })}</span>`}
      ${others.length > 0 && html`<span class="viewers" data-testid="viewers">👁 ${t('viewers.others', { names: others.map(agents.name).join(', ') })}</span>`}
    </div>
    ${problem && html`<p class="error" role="alert" data-testid="problem">${problem}</p>`}
    <${Timeline} messages=${messages} onReply=${setReplyTo}
      onRetry=${(m) => api('POST', `/api/dead-letters/${encodeURIComponent(m.id)}/retry`, {}).catch((e) => setProblem(explain(e, agents)))} />
    <${Composer} key=${id} conversation=${c} lock=${lock} me=${me} replyTo=${replyTo} onCancelReply=${() => setReplyTo(null)}
      onError=${(e) => setProblem(explain(e, agents))} onSent=${() => setProblem('')} />
  </section>`;
}
