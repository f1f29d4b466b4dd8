// The session (access/refresh pair, kept across reloads) and calls to `/api`.
//
// The access token is refreshed ahead of its expiry (a quarter of its lifetime before, at most a
// minute), and once more on a 401 `token_expired`; refreshes are single-flight, so a burst of
// calls or a socket's `session:expiring` never spends the refresh token twice.

const STORAGE_KEY = 'switchboard.session';

/** An error answer from the API (`{error: {code, message}}`), or a network failure. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || (status === 0 ? 'network' : 'unknown');
    this.body = body || {};
  }
}

let session = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
let refreshing = null;
let timer = null;
/** Bumped on every sign-in and sign-out: a refresh started before is dropped. */
let generation = 0;
let failures = 0;
const listeners = new Set();

/** Calls `listener(session, reason)` whenever the session changes (null: signed out). */
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export const currentSession = () => session;
export const token = () => session?.access_token;

function store(next, reason) {
  if (reason === 'signed-in' || !next) generation += 1;
  session = next;
  clearTimeout(timer);
  if (next) {
    // Expiry by the local clock: `expires_in` from when the pair arrived (the server's clock
    // and ours may differ).
    next.received_at ??= Date.now();
    localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    const lifetime = next.expires_in * 1000;
    const ahead = Math.min(60_000, lifetime / 4);
    const due = next.received_at + lifetime - ahead - Date.now();
    timer = setTimeout(refreshOnTime, Math.max(1_000, due));
  } else {
    localStorage.removeItem(STORAGE_KEY);
  }
  listeners.forEach((listener) => listener(next, reason));
}

async function call(method, path, body, bearer) {
  const headers = { accept: 'application/json' };
  // A form (a file upload) goes as multipart, its boundary set by the browser.
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined || form ? body : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

export async function signIn(email, password) {
  store(await call('POST', '/api/auth/login', { email, password }), 'signed-in');
  return session;
}

/** The timed refresh; a failure that is not a refusal (the network) is tried again soon. */
function refreshOnTime() {
  refresh().then(
    () => {
      failures = 0;
    },
    (error) => {
      if (error.status === 401 || !session) return;
      failures += 1;
      timer = setTimeout(refreshOnTime, Math.min(30_000, 1_000 * 2 ** failures));
    },
  );
}
window.addEventListener('online', () => session && failures > 0 && refreshOnTime());

// Several tabs share one login: a pair another tab received (or its sign-out) is adopted here,
// so tabs never spend the same refresh token twice.
window.addEventListener('storage', (event) => {
  if (event.key !== STORAGE_KEY) return;
  const next = JSON.parse(event.newValue || 'null');
  if (!next) return store(null, 'signed-out-elsewhere');
  if (next.refresh_token !== session?.refresh_token) store(next, session ? 'refreshed' : 'signed-in');
});

/** Swaps the refresh token for a new pair (single-flight). */
export function refresh() {
  if (!session) return Promise.reject(new ApiError(401, null));
  // Another tab may have refreshed already: take its pair if it is still fresh.
  const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
  if (stored && stored.refresh_token !== session.refresh_token && stored.received_at + stored.expires_in * 500 > Date.now()) {
    store(stored, 'refreshed');
    return Promise.resolve(stored);
  }
  const started = generation;
  refreshing ??= call('POST', '/api/auth/refresh', { refresh_token: session.refresh_token })
    .then((next) => {
      if (started !== generation) throw new ApiError(401, null);
      store(next, 'refreshed');
      return next;
    })
    .catch((error) => {
      if (error.status === 401 && started === generation) store(null, 'expired');
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Ends the session: `reason` says why ('signed-out', 'expired'). */
export async function signOut(reason = 'signed-out') {
  const ending = session;
  store(null, reason);
  if (ending && reason === 'signed-out') {
    await call('POST', '/api/auth/logout', { refresh_token: ending.refresh_token }, ending.access_token).catch(() => {});
  }
}

/** Marks the session's password as changed (after `PUT /api/auth/password`). */
export function passwordChanged() {
  if (session) store({ ...session, agent: { ...session.agent, password_change_required: false } }, 'refreshed');
}

/** An authenticated API call; retried once after a refresh when the token had expired. */
export async function api(method, path, body) {
  try {
    return await call(method, path, body, token());
  } catch (error) {
    if (error.status !== 401 || !session) throw error;
    if (error.code === 'token_expired') {
      await refresh();
      return call(method, path, body, token());
    }
    store(null, 'expired');
    throw error;
  }
}

/** Re-arms the refresh timer of a session loaded from storage (or drops an expired one). */
export function resume() {
  if (session) store(session, 'resumed');
}
