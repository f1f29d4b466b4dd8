// Drives the official socket.io-client for the Rust tests and the benchmark.
//
// One JSON command per line on stdin; one JSON report per line on stdout. Every report names
// the socket (`id`) it concerns. Times (`t`) are Unix epoch milliseconds with sub-millisecond
// precision, comparable with the caller's wall clock on the same machine.
//
// Commands:
//   {"op":"connect","id":"a","url":"http://…","auth":{…},"transports":["websocket"]}
//       → {"id":"a","kind":"connect"} or {"id":"a","kind":"connect_error","message":"…"}
//   {"op":"emit","id":"a","event":"auth:refresh","data":{…},"ack":"r1"}
//       → {"id":"a","kind":"ack","ack":"r1","response":…}
//   {"op":"close","id":"a"} → {"id":"a","kind":"disconnect","reason":"io client disconnect"}
//   {"op":"connect_many","id":"idle","url":"…","auth":{…},"count":1000}
//       → {"id":"idle","kind":"connected_many","connected":n,"failed":m}
//       (their events are counted, not reported: {"op":"count","id":"idle"} → {"kind":"count",…})
// Reports for every server event: {"id":"a","kind":"event","name":"…","args":[…],"t":…}
// and on disconnection: {"id":"a","kind":"disconnect","reason":"…"}.
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const sockets = new Map();
const crowds = new Map();
const now = () => performance.timeOrigin + performance.now();
const report = (value) => process.stdout.write(JSON.stringify(value) + "\n");

function open(url, auth, transports) {
  return io(url, {
    auth,
    transports: transports ?? ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 10000,
  });
}

function connect({ id, url, auth, transports }) {
  const socket = open(url, auth, transports);
  sockets.set(id, socket);
  socket.on("connect", () => report({ id, kind: "connect", t: now() }));
  socket.on("connect_error", (error) =>
    report({ id, kind: "connect_error", message: error.message, data: error.data ?? null }),
  );
  socket.on("disconnect", (reason) => report({ id, kind: "disconnect", reason, t: now() }));
  socket.onAny((name, ...args) => report({ id, kind: "event", name, args, t: now() }));
}

async function emit({ id, event, data, ack }) {
  const socket = sockets.get(id);
  if (!socket) return report({ id, kind: "error", message: `no socket ${id}` });
  try {
    const response = await socket.timeout(10000).emitWithAck(event, data);
    report({ id, kind: "ack", ack, response });
  } catch (error) {
    report({ id, kind: "ack", ack, error: String(error?.message ?? error) });
  }
}

async function connectMany({ id, url, auth, count, transports }) {
  const crowd = { sockets: [], events: 0 };
  crowds.set(id, crowd);
  let connected = 0;
  let failed = 0;
  // In slices, so that the server sees a steady trickle rather than one burst.
  for (let start = 0; start < count; start += 100) {
    const slice = [];
    for (let i = start; i < Math.min(count, start + 100); i++) {
      const socket = open(url, auth, transports);
      crowd.sockets.push(socket);
      socket.onAny(() => (crowd.events += 1));
      slice.push(
        new Promise((resolve) => {
          socket.once("connect", () => resolve(true));
          socket.once("connect_error", () => resolve(false));
        }),
      );
    }
    for (const ok of await Promise.all(slice)) ok ? connected++ : failed++;
  }
  report({ id, kind: "connected_many", connected, failed });
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    return report({ kind: "error", message: `not JSON: ${line}` });
  }
  switch (command.op) {
    case "connect":
      return connect(command);
    case "emit":
      return emit(command);
    case "close":
      sockets.get(command.id)?.disconnect();
      return;
    case "connect_many":
      return connectMany(command);
    case "count": {
      const crowd = crowds.get(command.id);
      return report({ id: command.id, kind: "count", events: crowd?.events ?? 0 });
    }
    default:
      return report({ kind: "error", message: `unknown op ${command.op}` });
  }
});
lines.on("close", () => process.exit(0));
