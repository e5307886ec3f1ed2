/**
 * History-API routing: every screen has a real address (`/servers/42`), which the gateway
 * answers with the same index.html. `navigate(path)` pushes a new entry; `useRoute()`
 * re-renders on every change and returns `{path, query}`; `match(pattern, path)` reads
 * `:parameters` out of a path.
 */
import { useEffect, useState } from "preact/hooks";

const listeners = new Set();

function current() {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

function notify() {
  const route = current();
  for (const listener of listeners) listener(route);
}

addEventListener("popstate", notify);

export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", path);
  notify();
  scrollTo(0, 0);
}

/** Set query parameters of the current address (filters), without a new history entry. */
export function setQuery(params) {
  const query = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") query.delete(key);
    else query.set(key, String(value));
  }
  const text = query.toString();
  history.replaceState(null, "", location.pathname + (text ? `?${text}` : ""));
  notify();
}

export function useRoute() {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    listeners.add(setRoute);
    return () => listeners.delete(setRoute);
  }, []);
  return route;
}

/** `{id: "42"}` when `path` is `pattern` with `:id` filled, else null. */
export function match(pattern, path) {
  const names = [];
  const source = pattern.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  const found = new RegExp(`^${source}/?$`).exec(path);
  if (!found) return null;
  return Object.fromEntries(names.map((name, index) => [name, decodeURIComponent(found[index + 1])]));
}

/** An `<a>` click handler that routes in-app instead of loading the page. */
export function linkHandler(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.currentTarget;
  if (anchor.target || anchor.origin !== location.origin || anchor.hasAttribute("download")) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
}
