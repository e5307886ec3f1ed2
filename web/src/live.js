/**
 * The live notification stream (GET /api/v1/notifications/stream, Server-Sent Events).
 *
 * The browser's EventSource reconnects by itself after a short drop and sends
 * `Last-Event-ID`; when it gives up (the connection is CLOSED, e.g. the gateway restarted
 * or answered an error) this module opens a new one after a growing pause, passing the
 * last id it saw as `?last_event_id=` so the gateway replays what was missed. Entries are
 * handed on once each (by their log position), in order. A `session_ended` event means
 * the session is over (logout, sign out everywhere, expiry): no reconnect.
 */

export const STREAM_URL = "/api/v1/notifications/stream";
export const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];

/**
 * Open the stream. Callbacks: `onNotification(entry)`, `onSessionEnded()`,
 * `onStatus("live" | "reconnecting")`. The EventSource class and the timer functions can
 * be injected (tests). Returns `{ close() }`.
 */
export function connectLive({
  onNotification = () => {},
  onSessionEnded = () => {},
  onStatus = () => {},
  EventSourceImpl = globalThis.EventSource,
  setTimer = (fn, ms) => setTimeout(fn, ms),
  clearTimer = (id) => clearTimeout(id),
  url = STREAM_URL,
} = {}) {
  let source = null;
  let lastPosition = null;
  let attempts = 0;
  let timer = null;
  let closed = false;

  function streamUrl() {
    return lastPosition === null ? url : `${url}?last_event_id=${encodeURIComponent(lastPosition)}`;
  }

  function handle(event) {
    let entry;
    try {
      entry = JSON.parse(event.data);
    } catch {
      return;
    }
    const position = Number(event.lastEventId || entry.position);
    if (Number.isFinite(position)) {
      if (lastPosition !== null && position <= lastPosition) return; // already handed on
      lastPosition = position;
    }
    onNotification(entry);
  }

  function open() {
    if (closed) return;
    source = new EventSourceImpl(streamUrl(), { withCredentials: true });
    source.addEventListener("open", () => {
      attempts = 0;
      onStatus("live");
    });
    source.addEventListener("notification", handle);
    source.addEventListener("session_ended", () => {
      close();
      onSessionEnded();
    });
    source.addEventListener("error", () => {
      if (closed) return;
      onStatus("reconnecting");
      if (source.readyState === 2) scheduleReopen(); // CLOSED: the browser gave up
    });
  }

  function scheduleReopen() {
    source?.close();
    const delay = BACKOFF_MS[Math.min(attempts, BACKOFF_MS.length - 1)];
    attempts += 1;
    clearTimer(timer);
    timer = setTimer(open, delay);
  }

  function close() {
    closed = true;
    clearTimer(timer);
    source?.close();
  }

  open();
  return { close, get lastPosition() { return lastPosition; } };
}
