/**
 * The panel's shared state: who is logged in, the balance shown in the header, the
 * action log (bell) and the pop-ups. A tiny observable store; components read it with
 * `useStore(selector)` and re-render when what they selected changes.
 */
import { useEffect, useState } from "preact/hooks";

export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    set(update) {
      const next = typeof update === "function" ? update(state) : update;
      state = { ...state, ...next };
      for (const listener of listeners) listener(state);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export const MAX_TOASTS = 3;

export const store = createStore({
  user: null, // {id, username, phone_masked, two_factor}
  sessionChecked: false,
  account: null, // GET /billing/account
  notifications: [], // this session's entries, newest first (from the API and the stream)
  unread: 0,
  toasts: [], // [{key, level, title, body}]
  live: "connecting", // "live" | "reconnecting"
  changes: 0, // counts stream entries: screens reload their data when it moves
  flash: null, // a message carried to the next screen (e.g. "session ended")
});

/** Add a stream entry to the log (once) and pop it up. */
export function receiveNotification(state, entry) {
  if (state.notifications.some((known) => known.id === entry.id)) return {};
  const toast = { key: entry.id, level: entry.level, title: entry.title, body: entry.body };
  return {
    notifications: [entry, ...state.notifications],
    unread: state.unread + (entry.read ? 0 : 1),
    toasts: [...state.toasts, toast].slice(-MAX_TOASTS),
    changes: state.changes + 1,
  };
}

/** Mark entries read (all when `ids` is null). */
export function markRead(state, ids) {
  const wanted = ids ? new Set(ids) : null;
  let changed = 0;
  const notifications = state.notifications.map((entry) => {
    if (entry.read || (wanted && !wanted.has(entry.id))) return entry;
    changed += 1;
    return { ...entry, read: true };
  });
  return { notifications, unread: Math.max(0, state.unread - changed) };
}

export function dismissToast(state, key) {
  return { toasts: state.toasts.filter((toast) => toast.key !== key) };
}

/** Re-render when `selector(state)` changes. */
export function useStore(selector = (state) => state, target = store) {
  const [value, setValue] = useState(() => selector(target.get()));
  useEffect(() => {
    setValue(selector(target.get()));
    return target.subscribe((state) => setValue(() => selector(state)));
  }, [target]);
  return value;
}
