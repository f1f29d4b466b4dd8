// Live updates over Socket.IO (the official client, vendored): every log event the agent may
// see, resumed from the last position after any reconnect (a dropped network, a laptop
// sleep), so nothing is missed and nothing needs a reload.
import { io } from '../vendor/socket.io-client-4.8.1.esm.min.js';
import { refresh, signOut, token, onSession } from './api.js';

const listeners = { event: new Set(), presence: new Set(), status: new Set() };
let socket = null;
let lastPosition = null;
let connected = false;

export function on(kind, listener) {
  listeners[kind].add(listener);
  return () => listeners[kind].delete(listener);
}

const emit = (kind, value) => listeners[kind].forEach((listener) => listener(value));
export const isConnected = () => connected;

/** Positions of the events received lately (duplicates after a resume are dropped). */
const recent = new Set();
const RECENT = 5000;

/** Connects (once per session); resumes from the last event seen on every reconnect. */
export function connect() {
  if (socket) return;
  socket = io({
    path: '/socket.io/',
    transports: ['websocket'],
    auth: (cb) => cb(lastPosition === null ? { token: token() } : { token: token(), last_position: lastPosition }),
  });
  socket.on('connect', () => {
    retries = 0;
    setConnected(true);
  });
  socket.on('disconnect', () => setConnected(false));
  socket.on('connect_error', async (error) => {
    setConnected(false);
    // "<code>: <message>". A refused handshake is not retried by the client: we do, after
    // refreshing an expired token, or from the start of the live stream when the position
    // we had is unknown to the server (a restored database).
    const code = String(error.message).split(':')[0];
    if (code === 'token_expired') await refresh().catch(() => {});
    if (code === 'unknown_position' || code === 'invalid_position') lastPosition = null;
    if (code === 'session_revoked' || code === 'agent_deactivated') return signOut('expired');
    if (!socket?.active) reconnectLater();
  });
  socket.on('event', (envelope) => {
    if (typeof envelope.position === 'number') {
      // A resumed socket may hand an event again. Events come in log order, which on
      // PostgreSQL is not the order of their positions: a lower position is not a duplicate.
      if (recent.has(envelope.position)) return;
      recent.add(envelope.position);
      if (recent.size > RECENT) recent.delete(recent.values().next().value);
      lastPosition = envelope.position;
    }
    emit('event', envelope);
  });
  socket.on('presence', (presence) => emit('presence', presence));
  socket.on('session:expiring', () => refresh().catch(() => {}));
  // The server closed the socket: a login that ended signs out; anything else (an expired
  // token, a slow consumer) reconnects, resuming from the last position.
  socket.on('session:expired', async (why) => {
    if (why?.code === 'session_revoked' || why?.code === 'agent_deactivated') return signOut('expired');
    if (why?.code === 'token_expired') await refresh().catch(() => {});
    reconnectLater();
  });
  // The browser knows first when the network goes: drop the socket and come back on `online`.
  window.addEventListener('offline', dropped);
  window.addEventListener('online', restored);
}

let retries = 0;
let retryTimer = null;

/** Connects again after a growing pause (0.5 s doubling up to 15 s). */
function reconnectLater() {
  clearTimeout(retryTimer);
  const pause = Math.min(15_000, 500 * 2 ** retries);
  retries += 1;
  retryTimer = setTimeout(() => socket && !socket.connected && socket.connect(), pause);
}

function dropped() {
  socket?.disconnect();
}

function restored() {
  socket?.connect();
}

function setConnected(value) {
  connected = value;
  emit('status', value);
}

export function disconnect() {
  clearTimeout(retryTimer);
  window.removeEventListener('offline', dropped);
  window.removeEventListener('online', restored);
  socket?.disconnect();
  socket = null;
  lastPosition = null;
  recent.clear();
  setConnected(false);
}

/** Asks the server to watch a conversation (presence); answers who is viewing it. */
export function join(conversationId) {
  return socket?.connected ? socket.timeout(5000).emitWithAck('conversation:join', { conversation_id: conversationId }).catch(() => null) : Promise.resolve(null);
}

export function leave(conversationId) {
  socket?.emit('conversation:leave', { conversation_id: conversationId });
}

// A refreshed token is handed to the open socket in place (`auth:refresh`).
onSession((session, reason) => {
  if (reason === 'refreshed' && socket?.connected) socket.emit('auth:refresh', { token: session.access_token }, () => {});
  if (!session) disconnect();
});
