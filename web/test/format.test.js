import { describe, expect, it } from "vitest";
import { ago, binaryBytes, bytes, countdown, dateTime, money, wait } from "../src/format.js";

describe("format", () => {
  it("writes money with its currency code", () => {
    expect(money("1234.5", "EUR")).toBe("EUR 1,234.50");
    expect(money("0.00", "USD")).toBe("USD 0.00");
  });
  it("keeps an amount it cannot read as it came", () => {
    expect(money("n/a", "EUR")).toBe("n/a EUR");
  });
  it("counts the 2FA window down as m:ss, never below zero", () => {
    expect(countdown(300)).toBe("5:00");
    expect(countdown(61)).toBe("1:01");
    expect(countdown(0.2)).toBe("0:01");
    expect(countdown(-4)).toBe("0:00");
  });
  it("writes a Retry-After wait in seconds, then minutes", () => {
    expect(wait(1)).toBe("1 second");
    expect(wait(45)).toBe("45 seconds");
    expect(wait(600)).toBe("10 minutes");
  });
  it("writes sizes in decimal units, limits in binary ones", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1500)).toBe("1.5 KB");
    expect(bytes(2_000_000_000)).toBe("2 GB");
    expect(bytes(123_456_789)).toBe("123 MB");
    expect(binaryBytes(10 * 1024 * 1024)).toBe("10 MiB");
  });
  it("writes dates without shifting a plain date across zones", () => {
    expect(dateTime("2026-12-31")).toBe("31 Dec 2026");
    expect(dateTime("")).toBe("");
  });
  it("says how long ago an entry happened", () => {
    const now = Date.parse("2026-12-06T12:00:00Z");
    expect(ago("2026-12-06T11:59:50Z", now)).toBe("just now");
    expect(ago("2026-12-06T11:55:00Z", now)).toBe("5 min ago");
    expect(ago("2026-12-06T09:00:00Z", now)).toBe("3 h ago");
  });
});
