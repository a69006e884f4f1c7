// The official Socket.IO JavaScript client, as a casino front end uses it, against a PEP:
//   node tests/js/listen.mjs URL TOKEN
// Two connections with the Frontend JWT in `auth: {token}`: "default" (the client's default
// options: long-polling, then its upgrade to WebSocket) and "websocket" (`transports:
// ['websocket']`). Sends nothing; prints one JSON line per happening on stdout:
//   {"client": "default", "type": "ready", "transport": "websocket"}  connected (and upgraded)
//   {"client": ..., "type": "event", "event": "ranks:on:xpUp", "data": {...}}
//   {"client": ..., "type": "connect_error", "message": "..."} and the like, then exit 1
// It disconnects and exits 0 when its stdin closes (or after LIFETIME_MS, never hanging CI).
import { io } from "socket.io-client";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node listen.mjs URL TOKEN");
  process.exit(2);
}
const LIFETIME_MS = 60_000;
const UPGRADE_WAIT_MS = 10_000;

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const sockets = [];

function fail(client, type, message) {
  print({ client, type, message: String(message) });
  finish(1);
}

function finish(code) {
  for (const socket of sockets) socket.disconnect();
  process.exitCode = code;
  // Let stdout drain, then leave even if a transport keeps a handle open.
  setTimeout(() => process.exit(code), 50).unref();
}

function listen(client, options) {
  const socket = io(url, { auth: { token }, reconnection: false, forceNew: true, ...options });
  sockets.push(socket);
  socket.onAny((event, data) => print({ client, type: "event", event, data }));
  socket.on("connect_error", (error) => fail(client, "connect_error", error.message));
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") fail(client, "disconnect", reason);
  });
  socket.on("connect", () => {
    const engine = socket.io.engine;
    const ready = () => print({ client, type: "ready", transport: engine.transport.name });
    if (engine.transport.name === "websocket" || options.transports) {
      ready();
      return;
    }
    // Default options: connected on polling; ready once the upgrade to WebSocket is done.
    const timer = setTimeout(() => fail(client, "no_upgrade", engine.transport.name),
      UPGRADE_WAIT_MS);
    engine.once("upgrade", () => {
      clearTimeout(timer);
      ready();
    });
    engine.once("upgradeError", (error) => fail(client, "upgrade_error", error.message));
  });
}

listen("default", {});
listen("websocket", { transports: ["websocket"] });
process.stdin.on("end", () => finish(0));
process.stdin.resume();
setTimeout(() => fail("all", "lifetime", `still running after ${LIFETIME_MS} ms`),
  LIFETIME_MS).unref();
