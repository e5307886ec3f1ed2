/** Small building blocks every screen uses: links, errors, loading and empty states,
 * form fields with their API error, dialogs, paging, badges, and the data-loading hook. */
import { html } from "htm/preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api.js";
import { wait } from "../format.js";
import { linkHandler } from "../router.js";
import { MAX_TOASTS, store, useStore } from "../store.js";
import { t } from "../strings.js";

export function Link({ href, children, ...rest }) {
  return html`<a href=${href} onClick=${linkHandler} ...${rest}>${children}</a>`;
}

/** The text a customer reads for an error: the API's message, or what went wrong. */
export function errorText(error) {
  if (!error) return "";
  if (error instanceof ApiError) {
    if (error.code === "network_error") return t("app.network_error");
    if (error.status === 429 && error.retryAfter) return `${error.message} ${t("app.retry_after", { wait: wait(error.retryAfter) })}`;
    if (error.status === 404) return error.message || t("app.not_found");
    return error.message;
  }
  return String(error.message || error);
}

/** An error with the API's message and its request id (for support). */
export function ErrorBanner({ error, onRetry }) {
  if (!error) return null;
  return html`<div class="banner banner-error" role="alert">
    <div>
      <p class="banner-message">${errorText(error)}</p>
      ${error.requestId && html`<p class="banner-meta">${t("app.request_id", { id: error.requestId })}</p>`}
    </div>
    ${onRetry && html`<button type="button" class="button" onClick=${onRetry}>${t("app.retry")}</button>`}
  </div>`;
}

export function Notice({ kind = "info", children }) {
  return html`<div class=${`banner banner-${kind}`} role="status">${children}</div>`;
}

export function Loading({ label = t("app.loading") }) {
  return html`<div class="loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span>${label}</div>`;
}

export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

/**
 * Load data for a screen: `load()` runs at mount, when `deps` change, when `reload()` is
 * called, and whenever a live notification arrives (any operation may have changed what
 * the screen shows). The previous data stays on screen while reloading.
 */
export function useResource(load, deps = [], { live = true } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const changes = useStore((s) => (live ? s.changes : 0));
  const [tick, setTick] = useState(0);
  const generation = useRef(0);
  useEffect(() => {
    const mine = ++generation.current;
    setState((previous) => ({ ...previous, loading: true }));
    load().then(
      (data) => mine === generation.current && setState({ data, error: null, loading: false }),
      (error) => mine === generation.current && setState((previous) => ({ data: previous.data, error, loading: false })),
    );
  }, [...deps, changes, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

/** A labelled form field; shows the API's message for `name` from `error`. */
export function Field({ label, name, error, hint, children, id }) {
  const fieldId = id || `field-${name}`;
  const message = error instanceof ApiError ? error.fieldMessage(name) : typeof error === "string" ? error : null;
  return html`<div class=${`field${message ? " field-invalid" : ""}`}>
    <label for=${fieldId}>${label}</label>
    ${children}
    ${hint && html`<p class="field-hint" id=${`${fieldId}-hint`}>${hint}</p>`}
    ${message && html`<p class="field-error" id=${`${fieldId}-error`} role="alert">${message}</p>`}
  </div>`;
}

/** `aria-*` attributes of an input inside a `Field`. */
export function describedBy(name, error, hint, id) {
  const fieldId = id || `field-${name}`;
  const message = error instanceof ApiError ? error.fieldMessage(name) : typeof error === "string" ? error : null;
  const ids = [hint && `${fieldId}-hint`, message && `${fieldId}-error`].filter(Boolean).join(" ");
  return { id: fieldId, name, "aria-invalid": message ? "true" : undefined, "aria-describedby": ids || undefined };
}

/** The error of a form, unless it is only about fields shown at the fields. */
export function formLevelError(error, shownFields) {
  if (!(error instanceof ApiError)) return error;
  const fields = Object.keys(error.fields || {});
  if (error.code === "validation_error" && fields.length && fields.every((name) => shownFields.includes(name))) return null;
  return error;
}

/** A modal dialog (the native <dialog>: focus kept inside, Escape closes). */
export function Modal({ title, onClose, children, wide = false }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.open && dialog.close();
  }, []);
  const titleId = `dialog-${title.replace(/\W+/g, "-").toLowerCase()}`;
  return html`<dialog ref=${ref} class=${`modal${wide ? " modal-wide" : ""}`} aria-labelledby=${titleId}
      onCancel=${(event) => { event.preventDefault(); onClose(); }}>
    <header class="modal-header">
      <h2 id=${titleId}>${title}</h2>
      <button type="button" class="icon-button" aria-label=${t("app.close")} onClick=${onClose}>×</button>
    </header>
    <div class="modal-body">${children}</div>
  </dialog>`;
}

/**
 * A form's submit or a button's command: `busy` while `action(...args)` runs, `error` when
 * it throws. `run(event, ...args)` stops the browser's own submit (when given an event)
 * and resolves to whether the action succeeded.
 */
export function useAction(action) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function run(event, ...args) {
    event?.preventDefault?.();
    setBusy(true);
    setError(null);
    try {
      await action(...args);
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, setError, run };
}

/**
 * A confirmation dialog. With `expected` (a server number, a storage name) the customer
 * must type it first; `danger` marks a destructive action (red warning and button).
 */
export function ConfirmDialog({ title, warning, expected = null, prompt, action, danger = true, onConfirm, onClose, children }) {
  const [typed, setTyped] = useState("");
  const confirm = useAction(async () => {
    await onConfirm();
    onClose();
  });
  const matches = expected === null || typed.trim() === expected;
  return html`<${Modal} title=${title} onClose=${onClose}>
    <form onSubmit=${(event) => (matches ? confirm.run(event) : event.preventDefault())} class="stack">
      ${warning && html`<p class=${danger ? "warning" : ""}>${warning}</p>`}
      ${children}
      ${expected !== null && html`<${Field} label=${prompt} name="confirm">
        <input id="field-confirm" autocomplete="off" value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} />
      <//>`}
      <${ErrorBanner} error=${confirm.error} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class=${`button ${danger ? "button-danger" : "button-primary"}`} disabled=${!matches || confirm.busy}>${action}</button>
      </div>
    </form>
  <//>`;
}

export function Pager({ page, perPage, total, onPage }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (pages <= 1) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" class="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)} aria-label=${t("pager.prev")}>‹</button>
    <span>${t("pager.of", { page, pages })}</span>
    <button type="button" class="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)} aria-label=${t("pager.next")}>›</button>
  </nav>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${`badge badge-${kind}`}>${children}</span>`;
}

/** Tabs as a row of buttons (`role=tablist`); `tabs` is [[value, label], …]. */
export function Tabs({ tabs, value, onChange, label }) {
  return html`<div class="tabs" role="tablist" aria-label=${label}>
    ${tabs.map(([key, text]) => html`<button type="button" role="tab" aria-selected=${key === value ? "true" : "false"}
        class=${`tab${key === value ? " tab-active" : ""}`} onClick=${() => onChange(key)}>${text}</button>`)}
  </div>`;
}

export function CopyButton({ text, label = t("app.copy") }) {
  const [done, setDone] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  }
  return html`<button type="button" class="button button-small" onClick=${copy}>${done ? t("app.copied") : label}</button>`;
}

/** Show a pop-up (top right) that is not from the stream, e.g. a saved tag. */
export function toast(level, title, body = "") {
  const key = `local-${Date.now()}-${Math.random()}`;
  store.set((state) => ({ toasts: [...state.toasts, { key, level, title, body }].slice(-MAX_TOASTS) }));
}

/** Page heading with optional actions on the right. */
export function PageHeader({ title, children, back }) {
  return html`<header class="page-header">
    <div>
      ${back && html`<${Link} class="back-link" href=${back}>← ${t("app.back")}<//>`}
      <h1 tabindex="-1" id="page-title">${title}</h1>
    </div>
    <div class="page-actions">${children}</div>
  </header>`;
}
