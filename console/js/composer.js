// The composer: text with a `client_id` idempotency key (a double click sends once), reply-to,
// quick replies by typing `/`. The conversation's lock is held while typing and released after.
import { html, useState, useEffect, useRef } from './ui.js';
import { api } from './api.js';
import { t, language } from './i18n.js';
import { TemplateForm } from './templates.js';

/** How long the lock is asked for while typing; released earlier on send or when idle. */
const LOCK_SECONDS = 60;
const IDLE_RELEASE_MS = 15_000;

export function Composer({ conversation, replyTo, onCancelReply, onError, onSent }) {
  const [text, setText] = useState('');
  const [quickReplies, setQuickReplies] = useState(null);
  const clientId = useRef(crypto.randomUUID());
  const sending = useRef(false);
  const holding = useRef(false);
  const idle = useRef(null);
  const id = conversation.id;

  async function release() {
    clearTimeout(idle.current);
    if (!holding.current) return;
    holding.current = false;
    await api('DELETE', `/api/conversations/${id}/lock`).catch(() => {});
  }

  // Leaving the conversation lets go of its lock.
  useEffect(() => () => {
    release();
  }, [id]);

  async function typing(value) {
    setText(value);
    setQuickReplies(value.startsWith('/') ? value.slice(1).toLowerCase() : null);
    clearTimeout(idle.current);
    idle.current = setTimeout(release, IDLE_RELEASE_MS);
    if (holding.current || !value) return;
    holding.current = true;
    try {
      await api('POST', `/api/conversations/${id}/lock`, { ttl_seconds: LOCK_SECONDS });
    } catch (e) {
      holding.current = false;
      onError(e);
    }
  }

  /** Sends the text to the customer, or (`asNote`) keeps it as a private note. */
  async function send(event, asNote = false) {
    event?.preventDefault();
    const body = text.trim();
    if (!body || sending.current) return;
    sending.current = true;
    try {
      if (asNote) {
        await api('POST', `/api/conversations/${id}/notes`, { text: body });
      } else {
        const request = { client_id: clientId.current, type: 'text', body };
        if (replyTo?.wamid) request.reply_to = replyTo.wamid;
        await api('POST', `/api/conversations/${id}/messages`, request);
      }
      clientId.current = crypto.randomUUID();
      setText('');
      onCancelReply();
      onSent();
      await release();
    } catch (e) {
      onError(e);
    } finally {
      sending.current = false;
    }
  }

  const windowClosed = !conversation.service_window_closes_at || new Date(conversation.service_window_closes_at) < new Date();
  return html`${windowClosed && html`<${TemplateForm} conversation=${conversation} language=${language()} onSent=${onSent} onError=${onError} />`}
  <form class="composer" onSubmit=${send} data-testid="composer">
    ${replyTo && html`<p class="replying">${t('message.reply_to')}: ${replyTo.content?.body || replyTo.id}
      <button type="button" class="link" onClick=${onCancelReply}>${t('composer.cancel_reply')}</button></p>`}
    ${quickReplies !== null && html`<${QuickReplies} filter=${quickReplies} onPick=${(body) => typing(body)} />`}
    <textarea aria-label=${t('composer.placeholder')} placeholder=${t('composer.placeholder')} rows="2" value=${text}
      data-testid="composer-text" onInput=${(e) => typing(e.target.value)}
      onKeyDown=${(e) => e.key === 'Enter' && !e.shiftKey && send(e)}></textarea>
    <button type="submit" data-testid="send">${t('composer.send')}</button>
    <button type="button" onClick=${(e) => send(e, true)} data-testid="send-note">${t('composer.note')}</button>
  </form>`;
}

/** Quick replies whose shortcode starts with what follows the `/`. */
function QuickReplies({ filter, onPick }) {
  const [items, setItems] = useState([]);
  useEffect(() => {
    api('GET', '/api/quick-replies').then((list) => setItems(Array.isArray(list) ? list : [])).catch(() => setItems([]));
  }, []);
  const shown = items.filter((q) => q.shortcode.toLowerCase().startsWith(filter)).slice(0, 8);
  if (shown.length === 0) return null;
  return html`<ul class="quick-replies" aria-label=${t('composer.quick_replies')}>
    ${shown.map((q) => html`<li><button type="button" onClick=${() => onPick(q.text || '')}>/${q.shortcode} <span>${q.text}</span></button></li>`)}
  </ul>`;
}
