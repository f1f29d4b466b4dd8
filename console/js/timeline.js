// A conversation's timeline: every message type shown as a person expects, with ticks.
import { html, useEffect, useRef } from './ui.js';
import { t } from './i18n.js';
import { when } from './format.js';

/** Text with its links made clickable (never as HTML: customer text is data). */
function Linked({ text }) {
  const parts = String(text ?? '').split(/(https?:\/\/[^\s]+)/g);
  return parts.map((part, i) => (i % 2 === 1 ? html`<a href=${part} target="_blank" rel="noopener noreferrer">${part}</a>` : part));
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
      return html`<p class="media">📎 ${t(`media.${message.type}`)}
        ${content.filename ? ` · ${content.filename}` : ''}${content.caption ? html`<br /><${Linked} text=${content.caption} />` : ''}</p>`;
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
