// Dates and times in the agent's own time zone and language (Intl, no library).
import { language, t } from './i18n.js';

export function time(iso) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}

/** A time today, or a date and time on another day. */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  const options = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(language(), options).format(date);
}

/** A duration as "3 h 12 min" / "45 s", for countdowns. */
export function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const units = new Intl.NumberFormat(language());
  if (seconds < 60) return `${units.format(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${units.format(minutes)} min`;
  return `${units.format(Math.floor(minutes / 60))} h ${units.format(minutes % 60)} min`;
}

/** The lock as it stands now: a recorded lock lapses at `expires_at`. */
export function currentLock(lock, now = Date.now()) {
  return lock && new Date(lock.expires_at).getTime() > now ? lock : null;
}

/** The 24-hour window's state for a conversation. */
export function windowText(closesAt, now = Date.now()) {
  if (!closesAt) return t('window.none');
  const left = new Date(closesAt).getTime() - now;
  return left > 0 ? t('window.open', { time: duration(left) }) : t('window.closed');
}
