// The inbox: tabs (mine / unassigned / all, with counts), status filter, search, live.
import { html, useState, useEffect, useRef } from './ui.js';
import { api } from './api.js';
import * as live from './live.js';
import { t } from './i18n.js';
import { currentLock, time, when, windowText } from './format.js';

const TABS = { mine: 'assignee=me', unassigned: 'assignee=none', all: '' };
const STATUSES = ['open', 'pending', 'snoozed', 'resolved'];

/**
 * The query parameter that makes a read include the event at `seen`: read models follow the
 * log a moment behind, and a list loaded on a socket event must not show the time before it.
 */
export const readAfter = (seen) => (seen === null ? '' : `min_position=${seen}`);

/**
 * Calls `load` now, and again whenever the log says something changed: at most every 100 ms
 * (a burst of events is one reload, and a steady stream still reloads), and only the answer of
 * the newest load is kept (`load(isCurrent, seen)`: apply the result only while `isCurrent()`;
 * `seen` is the position of the newest event that caused it, for `readAfter`).
 */
export function useLive(load, deps, concerns = () => true) {
  const timer = useRef(null);
  const sequence = useRef(0);
  useEffect(() => {
    // The last event received is the furthest along the log: events come in log order, which
    // on PostgreSQL is not the order of their positions.
    let seen = null;
    let loading = null;
    let pending = false;
    const run = () => {
      timer.current = null;
      // One load at a time: an event during a load asks for one more after it.
      if (loading) {
        pending = true;
        return;
      }
      const mine = ++sequence.current;
      loading = Promise.resolve(load(() => mine === sequence.current, seen)).finally(() => {
        loading = null;
        if (pending) {
          pending = false;
          again();
        }
      });
    };
    const again = () => {
      timer.current ??= setTimeout(run, 100);
    };
    run();
    const offEvent = live.on('event', (envelope) => {
      if (!concerns(envelope)) return;
      if (typeof envelope.position === 'number') seen = envelope.position;
      again();
    });
    const offStatus = live.on('status', (up) => up && again());
    return () => {
      offEvent();
      offStatus();
      clearTimeout(timer.current);
      timer.current = null;
    };
  }, deps);
}

export function Inbox({ selected, onSelect, agents }) {
  const [tab, setTab] = useState('all');
  const [status, setStatus] = useState('');
  const [query, setQuery] = useState('');
  const [page, setPage] = useState({ items: [] });
  const [counts, setCounts] = useState(null);
  const [error, setError] = useState('');

  const params = [TABS[tab], status && `status=${status}`, query && `q=${encodeURIComponent(query)}`].filter(Boolean).join('&');
  useLive(async (isCurrent, seen) => {
    try {
      const filters = [status && `status=${status}`, query && `q=${encodeURIComponent(query)}`, readAfter(seen)].filter(Boolean).join('&');
      const after = readAfter(seen);
      const [list, tabCounts] = await Promise.all([
        api('GET', `/api/conversations?limit=100${params ? `&${params}` : ''}${after ? `&${after}` : ''}`),
        api('GET', `/api/conversations/counts${filters ? `?${filters}` : ''}`),
      ]);
      if (!isCurrent()) return;
      setPage((shown) => (shown.params === params && shown.items.length > list.items.length
        ? { ...shown, items: mergeNewest(list.items, shown.items) } : { ...list, params }));
      setCounts(tabCounts);
      setError('');
    } catch (e) {
      setError(e.message);
    }
  }, [params]);

  async function more() {
    const next = await api('GET', `/api/conversations?limit=100&cursor=${encodeURIComponent(page.next_cursor)}${params ? `&${params}` : ''}`).catch((e) => setError(e.message));
    if (next) setPage((shown) => ({ ...shown, items: shown.items.concat(next.items), next_cursor: next.next_cursor }));
  }

  return html`<nav class="inbox" aria-label=${t('inbox.title')}>
    <div class="tabs" role="tablist">
      ${Object.keys(TABS).map((name) => html`<button role="tab" aria-selected=${tab === name} data-testid=${`tab-${name}`}
          onClick=${() => setTab(name)}>${t(`inbox.${name}`)} <span class="count">${counts ? counts[name] : ''}</span></button>`)}
    </div>
    <div class="filters">
      <input type="search" aria-label=${t('inbox.search')} placeholder=${t('inbox.search')} value=${query}
        onInput=${(e) => setQuery(e.target.value)} data-testid="inbox-search" />
      <select aria-label=${t('inbox.status')} value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t('inbox.any_status')}</option>
        ${STATUSES.map((s) => html`<option value=${s}>${t(`status.${s}`)}</option>`)}
      </select>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <ul class="conversations" data-testid="conversation-list">
      ${page.items.length === 0 && html`<li class="empty">${t('inbox.empty')}</li>`}
      ${page.items.map((c) => html`<${Row} key=${c.id} conversation=${c} active=${c.id === selected} onSelect=${onSelect} agents=${agents} />`)}
    </ul>
    ${page.next_cursor && html`<button class="link more" onClick=${more}>${t('inbox.more')}</button>`}
  </nav>`;
}

/** The first page as it is now, then the older rows already shown beyond it. */
function mergeNewest(first, shown) {
  const ids = new Set(first.map((c) => c.id));
  return first.concat(shown.slice(first.length).filter((c) => !ids.has(c.id)));
}

function Row({ conversation: c, active, onSelect, agents }) {
  const name = c.customer.profile_name || c.customer.wa_id || c.id;
  return html`<li>
    <button class=${`row ${active ? 'active' : ''}`} data-testid="conversation-row" data-id=${c.id} onClick=${() => onSelect(c.id)}>
      <span class="who">${name}</span>
      <span class="at">${when(c.last_activity_at)}</span>
      <span class="preview">${c.last_message?.preview || ''}</span>
      <span class="meta">
        ${c.unread_count > 0 && html`<span class="badge" data-testid="unread" title=${t('inbox.unread', { count: c.unread_count })}>${c.unread_count}</span>`}
        ${c.owned_by_bot && html`<span class="pill">${t('inbox.bot')}</span>`}
        ${currentLock(c.lock) && html`<span class="pill lock" title=${t('lock.other', { name: agents.name(c.lock.agent_id), time: time(c.lock.expires_at) })}>🔒</span>`}
        <span class="window">${windowText(c.service_window_closes_at)}</span>
      </span>
    </button>
  </li>`;
}
