// The live events (GET /v1/user/events): one WebSocket for the whole page, shared by every subscriber.
//
// It opens with the first subscriber and closes with the last; a dropped connection is opened again after 1, 2,
// 4 ... at most 30 s. Events that happened while it was down are lost (the server does not keep them): a page
// that shows state reads it again over REST each time the stream opens (onOpen).

import { getToken } from "./api.js";

const MAX_BACKOFF_MS = 30000;
const listeners = new Map(); // type -> Set of functions
let socket = null;
let backoff = 1000;
let retryTimer = null;
let connected = false;

/** Call fn(event) for each event of `type` ("device_status_update", "command_update", "ota_progress", "alarm",
 * "campaign", ...; "*" for all; "connection" for {type: "connection", state: "open" | "closed"}, and at once
 * {state: "open", already: true} when it is open already). Returns the function that unsubscribes it. */
export function onEvent(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  connect();
  if (type === "connection" && connected) {
    queueMicrotask(() => fn({ type: "connection", state: "open", already: true }));
  }
  return () => {
    listeners.get(type)?.delete(fn);
    if (subscriberCount() === 0) disconnect();
  };
}

/** Call fn() each time the stream opens from now on (not at once when it is open already): a page reads again
 * what it shows, as events may have been missed before (or while the stream was down). Returns the unsubscribe. */
export function onOpen(fn) {
  return onEvent("connection", (event) => {
    if (event.state === "open" && !event.already) fn();
  });
}

/** Whether the stream is open now. */
export function isConnected() {
  return connected;
}

/** Close the stream (signing out): it opens again with the next subscriber. */
export function disconnect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (socket) {
    const old = socket;
    socket = null;
    old.close(1000);
  }
  setConnected(false);
}

function subscriberCount() {
  let count = 0;
  for (const set of listeners.values()) count += set.size;
  return count;
}

function connect() {
  const token = getToken();
  if (socket || retryTimer || !token) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/v1/user/events?token=${encodeURIComponent(token)}`);
  socket = ws;
  ws.onopen = () => {
    backoff = 1000;
    setConnected(true);
  };
  ws.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return; // (the server sends JSON only)
    }
    dispatch(event.type, event);
  };
  ws.onclose = () => {
    if (socket !== ws) return; // closed on purpose
    socket = null;
    setConnected(false);
    if (subscriberCount() > 0 && getToken()) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  };
}

function setConnected(value) {
  if (connected === value) return;
  connected = value;
  dispatch("connection", { type: "connection", state: value ? "open" : "closed" });
}

function dispatch(type, event) {
  for (const key of [type, "*"]) {
    for (const fn of [...(listeners.get(key) || [])]) {
      try {
        fn(event);
      } catch (error) {
        console.error("event listener failed", error);
      }
    }
  }
}
