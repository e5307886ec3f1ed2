import { describe, expect, it, vi } from "vitest";
import { api, ApiError, onUnauthenticated, queryString } from "../src/api.js";

function answer(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status, headers: { "Content-Type": "application/json", ...headers },
  });
}

describe("api", () => {
  it("sends JSON with the cookie and an idempotency key when asked", async () => {
    const fetchImpl = vi.fn(async () => answer(202, { operation: { id: "op1" } }));
    const result = await api("/servers/s1/actions", { method: "POST", body: { action: "reboot" }, idempotencyKey: true, fetchImpl });
    expect(result.operation.id).toBe("op1");
    const [url, init] = fetchImpl.mock.calls[0];
    expect(url).toBe("/api/v1/servers/s1/actions");
    expect(init.credentials).toBe("same-origin");
    expect(init.headers["Content-Type"]).toBe("application/json");
    expect(init.headers["Idempotency-Key"]).toMatch(/.{8,}/);
    expect(JSON.parse(init.body)).toEqual({ action: "reboot" });
  });

  it("turns the error envelope into an ApiError with fields and request id", async () => {
    const fetchImpl = async () => answer(400, {
      error: { code: "validation_error", message: "Check the fields.", fields: { amount: ["At least 20."] } }, request_id: "req-1",
    });
    const error = await api("/billing/topups", { method: "POST", body: { amount: "5" }, fetchImpl }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.code).toBe("validation_error");
    expect(error.fieldMessage("amount")).toBe("At least 20.");
    expect(error.fieldMessage("method")).toBeNull();
    expect(error.requestId).toBe("req-1");
  });

  it("reads Retry-After of a 429 as seconds", async () => {
    const fetchImpl = async () => answer(429, { error: { code: "rate_limited", message: "Slow down." } }, { "Retry-After": "42" });
    const error = await api("/auth/login", { method: "POST", body: {}, fetchImpl }).catch((e) => e);
    expect(error.retryAfter).toBe(42);
  });

  it("tells listeners about a 401 outside /auth, not on the login calls", async () => {
    const heard = [];
    const stop = onUnauthenticated((error) => heard.push(error.code));
    const fetchImpl = async () => answer(401, { error: { code: "unauthenticated", message: "Log in." } });
    await api("/servers", { fetchImpl }).catch(() => {});
    await api("/auth/session", { fetchImpl }).catch(() => {});
    stop();
    await api("/servers", { fetchImpl }).catch(() => {});
    expect(heard).toEqual(["unauthenticated"]);
  });

  it("reports a network failure as network_error", async () => {
    const fetchImpl = async () => { throw new TypeError("Failed to fetch"); };
    const error = await api("/servers", { fetchImpl }).catch((e) => e);
    expect(error.code).toBe("network_error");
    expect(error.status).toBe(0);
  });

  it("answers null for 204 and leaves empty filters out of the query", async () => {
    const fetchImpl = vi.fn(async () => new Response(null, { status: 204 }));
    expect(await api("/notifications/read", { method: "POST", body: { all: true }, fetchImpl })).toBeNull();
    expect(queryString({ location: "NL", status: "", q: null, page: 2 })).toBe("?location=NL&page=2");
  });
});
