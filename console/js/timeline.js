// A conversation's timeline: every message type shown as a person expects, with ticks.
import { html, useEffect, useRef, useState } from './ui.js';
import { t } from './i18n.js';
import { when } from './format.js';
import { api } from './api.js';

/** Text with its links made clickable (never as HTML: customer text is data). */
function Linked({ text }) {
  const parts = String(text ?? '').split(/(https?:\/\/[^\s]+)/g);
  return parts.map((part, i) => (i % 2 === 1 ? html`<a href=${part} target="_blank" rel="noopener noreferrer">${part}</a>` : part));
}

/**
 * A message's file, shown as itself: the server fetches it from Meta as it arrives, so while
 * it is `media_pending` this asks again a few times; a file that could not be kept says why.
 * Images and players load through a five-minute link (they cannot send the bearer header).
 */
function MediaFile({ message }) {
  const content = message.content || {};
  const id = content.upload_id || message.id;
  const [state, setState] = useState({ status: 'loading' });
  useEffect(() => {
    if (!id) return undefined;
    let stopped = false;
    let tries = 0;
    const load = async () => {
      try {
        // 409 media_pending while the server fetches it from Meta.
        const link = await api('GET', `/api/media/${encodeURIComponent(id)}/link`);
        if (!stopped) setState({ status: 'ready', url: link.url });
      } catch (error) {
        if (stopped) return;
        if (error.code === 'media_pending' && tries < 20) {
          tries += 1;
          setTimeout(load, 1500);
        } else if (error.code === 'media_pending') {
          setState({ status: 'pending' });
        } else {
          setState({ status: 'unavailable', reason: error.message });
        }
      }
    };
    load();
    return () => { stopped = true; };
  }, [id]);
  if (!id) return null;
  if (state.status === 'loading' || state.status === 'pending') {
    return html`<span class="media-note" data-testid="media-pending">${t('media.fetching')}</span>`;
  }
  if (state.status === 'unavailable') {
    return html`<span class="media-note" data-testid="media-unavailable">${t('media.unavailable')} ${state.reason ? `(${state.reason})` : ''}</span>`;
  }
  switch (message.type) {
    case 'image':
    case 'sticker':
      return html`<img class="media-image" data-testid="media-image" src=${state.url} alt=${content.caption || t(`media.${message.type}`)} loading="lazy" />`;
    case 'audio':
      return html`<audio controls preload="metadata" data-testid="media-audio" src=${state.url}></audio>`;
    case 'video':
      return html`<video controls preload="metadata" class="media-video" data-testid="media-video" src=${state.url}></video>`;
    default:
      return html`<a href=${state.url} target="_blank" rel="noopener" download=${content.filename || ''} data-testid="media-document">📄 ${content.filename || t('media.document')}</a>`;
  }
}

function Body({ message }) {
  const content = message.content || {};
  switch (message.type) {
    case 'text':
      return html`<p class="text"><${Linked} text=${content.body} /></p>`;
    case 'note':
      return html`<p class="text"><strong>${t('message.note')}: </strong><${Linked} text=${content.body ?? content.text} /></p>`;
    case 'image':
    case 'video':
    case 'audio':
    case 'document':
    case 'sticker':
      return html`<div class="media">
        ${content.upload_id || message.direction === 'inbound' || !message.requested_by
          ? html`<${MediaFile} message=${message} />`
          : html`<span>📎 ${t(`media.${message.type}`)}${content.filename ? ` · ${content.filename}` : ''}</span>`}
        ${content.caption ? html`<p class="caption"><${Linked} text=${content.caption} /></p>` : ''}</div>`;
    case 'location':
      return html`<p class="location">📍 ${t('message.location')}: ${content.name || ''} ${content.address || ''}
        (${content.latitude}, ${content.longitude})</p>`;
    case 'contacts':
      return html`<p class="contacts">👤 ${t('message.contacts')}: ${(content.contacts || content || []).map?.((c) => c.name?.formatted_name).filter(Boolean).join(', ')}</p>`;
    case 'reaction':
      return html`<p class="reaction">${t('message.reaction', { emoji: content.emoji || '' })}</p>`;
    case 'interactive':
    case 'button':
      return html`<p class="text">${content.button_reply?.title || content.list_reply?.title || content.text || content.body?.text || content.title || ''}</p>`;
    case 'template':
      return html`<p class="text"><${Linked} text=${content.rendered || content.name} /></p>`;
    case 'system':
      return html`<p class="system">${t('message.system')}: ${content.body || ''}</p>`;
    default:
      return html`<p class="unsupported">${content.body ? html`<${Linked} text=${content.body} />` : t('message.unsupported', { kind: message.type || '?' })}</p>`;
  }
}

/** Delivery ticks: ✓ sent, ✓✓ delivered, blue ✓✓ read, ✗ failed (Meta's reason, retry). */
function Ticks({ message, onRetry }) {
  const status = message.status || 'queued';
  const marks = { queued: '🕓', accepted: '✓', sent: '✓', delivered: '✓✓', read: '✓✓', played: '✓✓', failed: '✗', dead_lettered: '✗' };
  const reason = (message.status_errors || []).map?.((e) => e.error_data?.details || e.message || e.title).filter(Boolean).join('; ');
  return html`<span class=${`ticks ${status}`} data-testid="ticks" data-status=${status} title=${t(`ticks.${status}`)} aria-label=${t(`ticks.${status}`)}>
    ${marks[status] || ''}
    ${(status === 'failed' || status === 'dead_lettered') && html` <span class="reason">${reason}</span>`}
    ${status === 'dead_lettered' && html` <button class="link" onClick=${() => onRetry(message)}>${t('ticks.retry')}</button>`}
  </span>`;
}

/** Follows the newest message, unless the agent scrolled up to read older ones. */
function useFollow(count) {
  const list = useRef(null);
  const following = useRef(true);
  useEffect(() => {
    const element = list.current;
    if (element && following.current) element.scrollTop = element.scrollHeight;
  }, [count]);
  const onScroll = (event) => {
    const element = event.currentTarget;
    following.current = element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  };
  return [list, onScroll];
}

export function Timeline({ messages, onReply, onRetry }) {
  const [list, onScroll] = useFollow(messages.length);
  return html`<ol class="timeline" data-testid="timeline" aria-live="polite" ref=${list} onScroll=${onScroll}>
    ${messages.map((m) => html`<li key=${m.id} class=${`message ${m.direction}`} data-testid="message" data-direction=${m.direction}>
      ${m.context?.id && html`<p class="quoted">${t('message.reply_to')} ${m.context.id}</p>`}
      <${Body} message=${m} />
      <footer>
        <time datetime=${m.sent_at}>${when(m.sent_at)}</time>
        ${m.direction === 'outbound' && html`<${Ticks} message=${m} onRetry=${onRetry} />`}
        ${m.direction === 'inbound' && html`<button class="link" aria-label=${t('message.reply')} title=${t('message.reply')} onClick=${() => onReply(m)}>↩</button>`}
      </footer>
    </li>`)}
  </ol>`;
}
