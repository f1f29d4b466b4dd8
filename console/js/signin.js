// Sign-in, and the first-start flow: a password chosen by someone else is changed first.
import { html, useState } from './ui.js';
import { api, signIn, signOut, passwordChanged, ApiError } from './api.js';
import { t } from './i18n.js';

export function SignIn({ notice }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    setBusy(true);
    setError('');
    try {
      await signIn(form.get('email'), form.get('password'));
    } catch (e) {
      setError(e.status === 401 ? t('signin.failed') : e.status === 429 || e.status === 503 ? t('signin.busy') : t('error.generic', { message: e.message }));
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="card signin" onSubmit=${submit} data-testid="signin">
    <h1>${t('signin.title')}</h1>
    ${notice && html`<p class="notice" role="status" data-testid="signin-notice">${notice}</p>`}
    <label>${t('signin.email')}<input name="email" type="email" autocomplete="username" required /></label>
    <label>${t('signin.password')}<input name="password" type="password" autocomplete="current-password" required /></label>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button type="submit" disabled=${busy}>${t('signin.submit')}</button>
  </form>`;
}

export function ChangePassword({ onDone }) {
  const [error, setError] = useState('');
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    if (form.get('new_password') !== form.get('repeat')) return setError(t('password.mismatch'));
    try {
      await api('PUT', '/api/auth/password', { current_password: form.get('current_password'), new_password: form.get('new_password') });
      passwordChanged();
      await api('POST', '/api/auth/logout', {}).catch(() => {});
      await signOut('password-changed');
      onDone?.();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  }
  return html`<form class="card signin" onSubmit=${submit} data-testid="change-password">
    <h1>${t('password.title')}</h1>
    <p>${t('password.explain')}</p>
    <label>${t('password.current')}<input name="current_password" type="password" autocomplete="current-password" required /></label>
    <label>${t('password.new')}<input name="new_password" type="password" autocomplete="new-password" minlength="12" required /></label>
    <label>${t('password.repeat')}<input name="repeat" type="password" autocomplete="new-password" minlength="12" required /></label>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <button type="submit">${t('password.submit')}</button>
  </form>`;
}
