// The console's root: sign-in, the first-start password change, then inbox and conversation.
import { html, render, useState, useEffect, useMemo } from './ui.js';
import { api, onSession, currentSession, resume, signOut } from './api.js';
import * as live from './live.js';
import { LANGUAGES, language, preferredLanguage, t, useLanguage } from './i18n.js';
import { SignIn, ChangePassword } from './signin.js';
import { Inbox } from './inbox.js';
import { Conversation } from './conversation.js';
import { Admin } from './admin.js';

/** Colleagues by name (lock holders, viewers, assignment) and groups, from the directory. */
function useAgents(session) {
  const [list, setList] = useState([]);
  const [groups, setGroups] = useState([]);
  useEffect(() => {
    if (!session || session.agent.password_change_required) return;
    api('GET', '/api/agents/directory').then(setList).catch(() => setList([session.agent]));
    api('GET', '/api/groups').then(setGroups).catch(() => setGroups([]));
  }, [session?.agent.id, session?.agent.password_change_required]);
  return useMemo(() => ({
    list: () => list,
    groups: () => groups,
    name: (id) => list.find((a) => a.id === id)?.name || (id ? `#${String(id).slice(0, 8)}` : ''),
  }), [list, groups]);
}

function App() {
  const [session, setSession] = useState(currentSession());
  const [notice, setNotice] = useState('');
  const [, setLang] = useState(language());
  const [selected, setSelected] = useState(() => location.hash.slice(1) || null);
  const [online, setOnline] = useState(false);
  const [view, setView] = useState('inbox');
  const agents = useAgents(session);

  useEffect(() => onSession((next, reason) => {
    setSession(next);
    if (reason === 'expired') setNotice(t('signin.expired'));
    if (reason === 'password-changed') setNotice(t('password.done'));
    if (reason === 'signed-in') setNotice('');
  }), []);
  useEffect(() => live.on('status', setOnline), []);
  useEffect(() => {
    if (session && !session.agent.password_change_required) live.connect();
  }, [session?.agent.id, session?.agent.password_change_required]);
  useEffect(() => {
    history.replaceState(null, '', selected ? `#${selected}` : location.pathname);
  }, [selected]);
  // Escape goes back to the inbox (outside text fields, where it belongs to them).
  useEffect(() => {
    const onKey = (event) => {
      if (event.key === 'Escape' && !/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) setSelected(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  async function switchLanguage(lang) {
    await useLanguage(lang, true);
    setLang(lang);
  }

  const mayAdminister = session && !session.agent.password_change_required
    && (session.agent.role === 'admin' || session.agent.permissions?.can_manage_agents);
  const header = html`<header class="top">
    <strong>${t('app.title')}</strong>
    ${session && html`<span class=${`live ${online ? 'up' : 'down'}`} data-testid="live" data-online=${String(online)}>${online ? t('live.online') : t('live.offline')}</span>`}
    ${mayAdminister && html`<nav>
      <button aria-current=${view === 'inbox' ? 'page' : null} onClick=${() => setView('inbox')}>${t('inbox.title')}</button>
      <button aria-current=${view === 'admin' ? 'page' : null} onClick=${() => setView('admin')} data-testid="nav-admin">${t('admin.title')}</button>
    </nav>`}
    <span class="spacer"></span>
    <label>${t('nav.language')}
      <select value=${language()} onChange=${(e) => switchLanguage(e.target.value)} data-testid="language">
        ${LANGUAGES.map((l) => html`<option value=${l}>${l === 'es' ? 'Español' : 'English'}</option>`)}
      </select>
    </label>
    ${session && html`<span class="me">${session.agent.name}</span>
      <button class="link" onClick=${() => signOut()} data-testid="signout">${t('nav.signout')}</button>`}
  </header>`;

  if (!session) return html`${header}<main class="center"><${SignIn} notice=${notice} /></main>`;
  if (session.agent.password_change_required) return html`${header}<main class="center"><${ChangePassword} /></main>`;
  if (view === 'admin' && mayAdminister) return html`${header}<${Admin} me=${session.agent} />`;
  return html`${header}<main class=${`workspace ${selected ? 'has-selection' : ''}`}>
    <${Inbox} selected=${selected} onSelect=${setSelected} agents=${agents} />
    ${selected
      ? html`<${Conversation} key=${selected} id=${selected} me=${session.agent} agents=${agents} onBack=${() => setSelected(null)} />`
      : html`<section class="conversation placeholder"><p>${t('inbox.pick')}</p></section>`}
  </main>`;
}

await useLanguage(preferredLanguage());
resume();
render(html`<${App} />`, document.getElementById('app'));
