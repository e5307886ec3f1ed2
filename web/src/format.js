/** How the panel writes money, dates, sizes and countdowns (English, the browser's zone). */

const LOCALE = "en-GB";

/** "1,234.50 EUR" from the API's decimal string ("1234.50") and a currency. */
export function money(amount, currency = "EUR") {
  const value = Number(amount);
  if (!Number.isFinite(value)) return `${amount ?? ""} ${currency}`.trim();
  try {
    return new Intl.NumberFormat(LOCALE, { style: "currency", currency, currencyDisplay: "code" })
      .format(value).replace(/\u00a0/g, " ");
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

/** "6 Dec 2026, 14:05" from an ISO date-time; "6 Dec 2026" from a date. */
export function dateTime(iso) {
  if (!iso) return "";
  const onlyDate = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  const when = new Date(onlyDate ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  const options = onlyDate
    ? { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }
    : { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(LOCALE, options).format(when);
}

/** "2 min ago" style, for the action log. */
export function ago(iso, now = Date.now()) {
  const when = Date.parse(iso);
  if (Number.isNaN(when)) return "";
  const seconds = Math.round((now - when) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return dateTime(iso);
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** "1.5 GB" from bytes (decimal units, as storage limits are sold). */
export function bytes(count) {
  let value = Number(count) || 0;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits).replace(/\.0+$|(\.\d*?)0+$/, "$1")} ${UNITS[unit]}`;
}

/** "4:59" from seconds; "0:00" when none are left. */
export function countdown(seconds) {
  const left = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

/** "45 seconds" / "3 minutes" for a Retry-After wait. */
export function wait(seconds) {
  const left = Math.max(1, Math.ceil(seconds));
  if (left < 90) return `${left} second${left === 1 ? "" : "s"}`;
  const minutes = Math.ceil(left / 60);
  return `${minutes} minutes`;
}

/** "10 MiB" for the attachment limits, which are counted in binary units. */
export function binaryBytes(count) {
  const value = Number(count) || 0;
  if (value >= 1024 ** 2) return `${+(value / 1024 ** 2).toFixed(1)} MiB`;
  if (value >= 1024) return `${+(value / 1024).toFixed(1)} KiB`;
  return `${value} B`;
}
