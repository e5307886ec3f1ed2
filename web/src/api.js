/**
 * The gateway's HTTP API (/api/v1, see the OpenAPI document) as the panel calls it.
 *
 * - The session is the HttpOnly `session` cookie the gateway sets at login: this module
 *   never sees a token and stores nothing.
 * - Every failure is an `ApiError` carrying the API's error envelope: `status`, `code`,
 *   `message`, `fields` (validation errors by field), `requestId`, and `retryAfter`
 *   (seconds, from the header of a 429).
 * - Creating commands send an `Idempotency-Key`, so a retried click does the work once.
 * - A 401 on anything but the login calls tells `onUnauthenticated` listeners (the app
 *   goes back to the login screen).
 */

export const API_BASE = "/api/v1";

export class ApiError extends Error {
  constructor({ status, code, message, fields = {}, requestId = null, retryAfter = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** The first message for `field`, if the API named that field. */
  fieldMessage(field) {
    const messages = this.fields?.[field];
    if (!messages) return null;
    return Array.isArray(messages) ? messages.join(" ") : String(messages);
  }
}

const unauthenticatedListeners = new Set();

/** Call `listener(error)` whenever a call outside /auth answers 401; returns an unsubscribe. */
export function onUnauthenticated(listener) {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

/** A fresh idempotency key. */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function retryAfterSeconds(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

/** The `ApiError` of a failed `Response` (its JSON envelope when it has one). */
export async function errorFromResponse(response) {
  let envelope = {};
  try {
    envelope = await response.json();
  } catch {
    envelope = {};
  }
  const error = envelope.error || {};
  return new ApiError({
    status: response.status,
    code: error.code || `http_${response.status}`,
    message: error.message || response.statusText || `HTTP ${response.status}`,
    fields: error.fields || {},
    requestId: envelope.request_id || response.headers.get("X-Request-ID"),
    retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
  });
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function queryString(params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the API. `body` is sent as JSON, `form` (a FormData) as multipart. `idempotencyKey`:
 * true for a new key, or a key to reuse when retrying the same command. Resolves to the
 * decoded JSON (null for 204); rejects with an `ApiError`.
 */
export async function api(path, { method = "GET", body, form, query, idempotencyKey, signal, fetchImpl } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey === true ? newIdempotencyKey() : idempotencyKey;
  let response;
  try {
    response = await (fetchImpl || globalThis.fetch)(`${API_BASE}${path}${queryString(query)}`, {
      method, headers, body: payload, credentials: "same-origin", signal,
    });
  } catch (cause) {
    if (cause?.name === "AbortError") throw cause;
    throw new ApiError({ status: 0, code: "network_error", message: "network_error" });
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (error.status === 401 && !path.startsWith("/auth/")) {
      for (const listener of unauthenticatedListeners) listener(error);
    }
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** The URL of an API download (export, attachment), for a plain link. */
export function apiUrl(path, query) {
  return `${API_BASE}${path}${queryString(query)}`;
}
