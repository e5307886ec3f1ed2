import { describe, expect, it } from "vitest";
import { BACKOFF_MS, connectLive } from "../src/live.js";

/** A scripted EventSource: the test plays the server's side. */
class FakeSource {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    FakeSource.opened.push(this);
  }
  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }
  emit(type, event = {}) {
    for (const listener of this.listeners[type] || []) listener(event);
  }
  open() { this.readyState = 1; this.emit("open"); }
  send(position, entry) { this.emit("notification", { data: JSON.stringify({ position, ...entry }), lastEventId: String(position) }); }
  drop({ closed }) { this.readyState = closed ? 2 : 0; this.emit("error"); }
  close() { this.readyState = 2; this.closed = true; }
}

function harness() {
  FakeSource.opened = [];
  const timers = [];
  const received = [];
  const statuses = [];
  let ended = 0;
  const live = connectLive({
    EventSourceImpl: FakeSource,
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimer: () => {},
    onNotification: (entry) => received.push(entry.id),
    onStatus: (status) => statuses.push(status),
    onSessionEnded: () => { ended += 1; },
  });
  return { live, timers, received, statuses, ended: () => ended, source: () => FakeSource.opened.at(-1) };
}

describe("live stream", () => {
  it("hands on each entry once, in order", () => {
    const h = harness();
    h.source().open();
    h.source().send(1, { id: "a" });
    h.source().send(2, { id: "b" });
    h.source().send(2, { id: "b" });
    expect(h.received).toEqual(["a", "b"]);
    expect(h.statuses).toEqual(["live"]);
  });

  it("leaves a short drop to the browser, which resends Last-Event-ID itself", () => {
    const h = harness();
    h.source().open();
    h.source().drop({ closed: false });
    expect(h.timers).toHaveLength(0);
    expect(FakeSource.opened).toHaveLength(1);
    expect(h.statuses.at(-1)).toBe("reconnecting");
  });

  it("reopens a closed stream from the last entry seen, backing off, without repeating entries", () => {
    const h = harness();
    h.source().open();
    h.source().send(7, { id: "seven" });
    h.source().drop({ closed: true });
    expect(h.timers[0].ms).toBe(BACKOFF_MS[0]);
    h.timers[0].fn();
    expect(h.source().url).toBe("/api/v1/notifications/stream?last_event_id=7");
    h.source().drop({ closed: true });
    expect(h.timers[1].ms).toBe(BACKOFF_MS[1]);
    h.timers[1].fn();
    h.source().open();
    h.source().send(7, { id: "seven" }); // replayed by the server
    h.source().send(8, { id: "eight" });
    expect(h.received).toEqual(["seven", "eight"]);
    h.source().drop({ closed: true });
    expect(h.timers[2].ms).toBe(BACKOFF_MS[0]); // a successful open resets the backoff
  });

  it("stops for good when the session ends", () => {
    const h = harness();
    h.source().open();
    h.source().emit("session_ended", { data: "{}" });
    expect(h.ended()).toBe(1);
    expect(h.source().closed).toBe(true);
    h.source().drop({ closed: true });
    expect(h.timers).toHaveLength(0);
  });
});
