// Sending an approved template, with a form for its variables (the way to write to a customer
// once the 24-hour window has closed).
import { html, useState, useEffect } from './ui.js';
import { api } from './api.js';
import { t } from './i18n.js';

/** The `parameters` key of a template variable (see `POST /api/templates/{id}/send`). */
function parameterKey(variable) {
  if (variable.component === 'header') return variable.kind === 'text' ? `header.${variable.name}` : 'header';
  const button = /^button\[(\d+)\]$/.exec(variable.component);
  return button ? `button.${button[1]}` : variable.name;
}

export function TemplateForm({ conversation, language, onSent, onError }) {
  const [templates, setTemplates] = useState([]);
  const [chosen, setChosen] = useState(null);
  const [values, setValues] = useState({});
  const [clientId, setClientId] = useState(() => crypto.randomUUID());

  useEffect(() => {
    api('GET', '/api/templates?status=APPROVED').then(setTemplates).catch(onError);
  }, []);

  async function send(event) {
    event.preventDefault();
    if (!chosen) return;
    try {
      await api('POST', `/api/templates/${encodeURIComponent(chosen.id)}/send`, {
        client_id: clientId,
        conversation_id: conversation.id,
        parameters: values,
      });
      setClientId(crypto.randomUUID());
      setValues({});
      onSent();
    } catch (e) {
      onError(e);
    }
  }

  // The agent's language first (`es` matches `es`, `es_MX`, …), then by name.
  const own = (x) => (String(x.language || '').toLowerCase().startsWith(language) ? 0 : 1);
  const sorted = [...templates].sort((a, b) => own(a) - own(b) || String(a.name).localeCompare(String(b.name)));
  return html`<form class="template-form" onSubmit=${send} data-testid="template-form">
    <label>${t('composer.template_pick')}
      <select onChange=${(e) => { setChosen(templates.find((x) => x.id === e.target.value) || null); setValues({}); }}>
        <option value="">—</option>
        ${sorted.map((x) => html`<option value=${x.id}>${x.name} (${x.language})</option>`)}
      </select>
    </label>
    ${chosen?.variables.map((v) => {
      const key = parameterKey(v);
      return html`<label>{{${v.name}}} <small>${v.component}, ${v.kind}</small>
        <input required value=${values[key] || ''} placeholder=${v.example || ''}
          onInput=${(e) => setValues({ ...values, [key]: e.target.value })} /></label>`;
    })}
    <button type="submit" disabled=${!chosen}>${t('composer.template')}</button>
  </form>`;
}
