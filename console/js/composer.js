// The composer: text with a `client_id` idempotency key (a double click sends once), reply-to,
// quick replies by typing `/`, a file to attach (sent with the text as its caption), private
// notes, and the template form once the window has closed.
// The conversation's lock is held while typing (renewed while it lasts) and released after
// sending or when idle; lock requests go out one after another, never overtaking.
import { html, useState, useEffect, useRef } from './ui.js';
import { api } from './api.js';
import { t, language } from './i18n.js';
import { TemplateForm } from './templates.js';

/** How long the lock is asked for while typing, and when it is renewed. */
const LOCK_SECONDS = 60;
const RENEW_BEFORE_MS = 20_000;
const IDLE_RELEASE_MS = 15_000;

export function Composer({ conversation, lock, me, replyTo, onCancelReply, onError, onSent }) {
  const [text, setText] = useState('');
  const [quickReply, setQuickReply] = useState(null);
  const [attachment, setAttachment] = useState(null);
  const fileInput = useRef(null);
  const clientId = useRef(crypto.randomUUID());
  const sending = useRef(false);
  const queue = useRef(Promise.resolve());
  const blockedUntil = useRef(0);
  const idle = useRef(null);
  const path = `/api/conversations/${encodeURIComponent(conversation.id)}`;
  const mine = lock && lock.agent_id === me.id;
  // Until when this agent holds the lock: as asked for, or as the conversation shows it; a
  // lock the conversation stops showing as ours (released elsewhere, taken over) is gone.
  const heldUntil = useRef(0);
  const shownMine = useRef(false);
  if (mine) heldUntil.current = Math.max(heldUntil.current, new Date(lock.expires_at).getTime());
  else if (shownMine.current) heldUntil.current = 0;
  shownMine.current = !!mine;

  /** Runs lock requests in order. */
  const enqueue = (request) => {
    queue.current = queue.current.then(request, request);
    return queue.current;
  };

  const release = () => {
    clearTimeout(idle.current);
    return enqueue(async () => {
      if (heldUntil.current > Date.now()) await api('DELETE', `${path}/lock`).catch(() => {});
      heldUntil.current = 0;
    });
  };

  // Leaving the conversation lets go of its lock.
  useEffect(() => () => {
    release();
  }, [conversation.id]);

  function keepLock() {
    clearTimeout(idle.current);
    idle.current = setTimeout(release, IDLE_RELEASE_MS);
    const now = Date.now();
    if (heldUntil.current - now > RENEW_BEFORE_MS || blockedUntil.current > now) return;
    heldUntil.current = now + LOCK_SECONDS * 1000; // asked for: no second request meanwhile
    enqueue(async () => {
      try {
        const state = await api('POST', `${path}/lock`, { ttl_seconds: LOCK_SECONDS });
        heldUntil.current = new Date(state.expires_at).getTime();
      } catch (e) {
        heldUntil.current = 0;
        if (e.code === 'conversation_locked') blockedUntil.current = new Date(e.body.expires_at).getTime();
        onError(e);
      }
    });
  }

  function typing(value) {
    setText(value);
    if (value) keepLock();
  }

  /** Sends to the customer (the quick reply if one is picked), or keeps a private note. */
  async function send(event, asNote = false) {
    event?.preventDefault();
    const body = text.trim();
    if ((!body && !quickReply && !attachment) || sending.current) return;
    sending.current = true;
    try {
      if (asNote) {
        await api('POST', `${path}/notes`, { text: body });
      } else {
        let request;
        if (attachment) {
          // Kept by the server first (Meta's types and limits checked there), then sent.
          const form = new FormData();
          form.append('file', attachment);
          const upload = await api('POST', '/api/media', form);
          request = { client_id: clientId.current, type: upload.kind, upload_id: upload.id };
          if (body && upload.kind !== 'audio' && upload.kind !== 'sticker') request.caption = body;
          if (upload.kind === 'document') request.filename = attachment.name;
        } else {
          request = quickReply
            ? { client_id: clientId.current, quick_reply_id: quickReply.id }
            : { client_id: clientId.current, type: 'text', body };
        }
        if (replyTo?.wamid) request.reply_to = replyTo.wamid;
        await api('POST', `${path}/messages`, request);
      }
      clientId.current = crypto.randomUUID();
      setText('');
      setQuickReply(null);
      setAttachment(null);
      if (fileInput.current) fileInput.current.value = '';
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
  const filter = !quickReply && text.startsWith('/') ? text.slice(1).toLowerCase() : null;
  return html`${windowClosed && html`<${TemplateForm} conversation=${conversation} language=${language()} onSent=${onSent} onError=${onError} />`}
  <form class="composer" onSubmit=${send} data-testid="composer">
    ${replyTo && html`<p class="replying">${t('message.reply_to')}: ${replyTo.content?.body || replyTo.id}
      <button type="button" class="link" onClick=${onCancelReply}>${t('composer.cancel_reply')}</button></p>`}
    ${filter !== null && html`<${QuickReplies} filter=${filter} onPick=${(q) => { setQuickReply(q); setText(q.text || ''); keepLock(); }} />`}
    ${quickReply && html`<p class="replying">/${quickReply.shortcode}
      <button type="button" class="link" onClick=${() => { setQuickReply(null); setText(''); }}>✕</button></p>`}
    <textarea aria-label=${t('composer.placeholder')} placeholder=${t('composer.placeholder')} rows="2" value=${text}
      readOnly=${!!quickReply} data-testid="composer-text" onInput=${(e) => typing(e.target.value)}
      onKeyDown=${(e) => e.key === 'Enter' && !e.shiftKey && !e.isComposing && send(e)}></textarea>
    ${attachment && html`<p class="replying" data-testid="attachment">📎 ${attachment.name}
      <button type="button" class="link" onClick=${() => { setAttachment(null); fileInput.current.value = ''; }}>✕</button></p>`}
    <label class="attach link" title=${t('composer.attach')}>${t('composer.attach_short')}<input type="file" ref=${fileInput} data-testid="attach" aria-label=${t('composer.attach')}
      accept="image/jpeg,image/png,image/webp,audio/*,video/mp4,video/3gpp,application/pdf,text/plain,.doc,.docx,.xls,.xlsx,.ppt,.pptx"
      onChange=${(e) => { setAttachment(e.target.files[0] || null); keepLock(); }} /></label>
    <button type="submit" data-testid="send">${t('composer.send')}</button>
    <button type="button" onClick=${(e) => send(e, true)} disabled=${!!quickReply} data-testid="send-note">${t('composer.note')}</button>
  </form>`;
}

/** Quick replies whose shortcode starts with what follows the `/`. */
function QuickReplies({ filter, onPick }) {
  const [items, setItems] = useState([]);
  useEffect(() => {
    api('GET', '/api/quick-replies').then((list) => setItems(Array.isArray(list) ? list : [])).catch(() => setItems([]));
  }, []);
  const shown = items.filter((q) => q.shortcode.replace(/^\//, '').toLowerCase().startsWith(filter)).slice(0, 8);
  if (shown.length === 0) return null;
  return html`<ul class="quick-replies" aria-label=${t('composer.quick_replies')}>
    ${shown.map((q) => html`<li><button type="button" onClick=${() => onPick(q)}>/${q.shortcode.replace(/^\//, '')} <span>${q.title || q.text}</span></button></li>`)}
  </ul>`;
}
