import { describe, expect, it } from "vitest";
import { createStore, dismissToast, markRead, MAX_TOASTS, receiveNotification } from "../src/store.js";
import { amountProblem } from "../src/screens/billing.js";
import { attachmentProblem } from "../src/screens/support.js";

const entry = (id, extra = {}) => ({ id, level: "info", title: `t${id}`, body: "", read: false, ...extra });

describe("store", () => {
  it("notifies subscribers with the merged state", () => {
    const store = createStore({ a: 1, b: 2 });
    const seen = [];
    const stop = store.subscribe((state) => seen.push(state));
    store.set({ a: 3 });
    store.set((state) => ({ b: state.b + 1 }));
    stop();
    store.set({ a: 9 });
    expect(seen).toEqual([{ a: 3, b: 2 }, { a: 3, b: 3 }]);
  });

  it("adds a stream entry once: the log, the unread count, a pop-up and a change tick", () => {
    let state = { notifications: [], unread: 0, toasts: [], changes: 0 };
    state = { ...state, ...receiveNotification(state, entry("1")) };
    state = { ...state, ...receiveNotification(state, entry("1")) };
    state = { ...state, ...receiveNotification(state, entry("2")) };
    expect(state.notifications.map((n) => n.id)).toEqual(["2", "1"]);
    expect(state.unread).toBe(2);
    expect(state.toasts.map((toast) => toast.key)).toEqual(["1", "2"]);
    expect(state.changes).toBe(2);
  });

  it("keeps only the latest pop-ups and dismisses one by key", () => {
    let state = { notifications: [], unread: 0, toasts: [], changes: 0 };
    for (let i = 0; i < MAX_TOASTS + 2; i += 1) state = { ...state, ...receiveNotification(state, entry(String(i))) };
    expect(state.toasts).toHaveLength(MAX_TOASTS);
    state = { ...state, ...dismissToast(state, String(MAX_TOASTS + 1)) };
    expect(state.toasts.map((toast) => toast.key)).not.toContain(String(MAX_TOASTS + 1));
  });

  it("marks some or all entries read and lowers the unread count accordingly", () => {
    const state = { notifications: [entry("1"), entry("2"), entry("3", { read: true })], unread: 2 };
    expect(markRead(state, ["1"]).unread).toBe(1);
    const all = markRead(state, null);
    expect(all.unread).toBe(0);
    expect(all.notifications.every((n) => n.read)).toBe(true);
  });
});

describe("form checks before the API", () => {
  it("refuses a top-up under 20", () => {
    expect(amountProblem("19.99")).toMatch(/20/);
    expect(amountProblem("")).toMatch(/20/);
    expect(amountProblem("abc")).toMatch(/20/);
    expect(amountProblem("20")).toBeNull();
    expect(amountProblem("25,50")).toBeNull();
  });

  it("checks attachments against the rules the API publishes", () => {
    const rules = { max_files: 2, max_file_bytes: 100, max_message_bytes: 150, types: { "image/png": "PNG image" } };
    const file = (name, size, type = "image/png") => ({ name, size, type });
    expect(attachmentProblem([file("a.png", 50)], rules)).toBeNull();
    expect(attachmentProblem([file("a.png", 101)], rules)).toMatch(/a\.png/);
    expect(attachmentProblem([file("a.exe", 10, "application/x-msdownload")], rules)).toMatch(/not allowed/);
    expect(attachmentProblem([file("a.png", 90), file("b.png", 90)], rules)).toMatch(/larger/);
    expect(attachmentProblem([file("a", 1), file("b", 1), file("c", 1)], rules)).toMatch(/At most 2/);
  });
});
