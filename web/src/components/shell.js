/** The frame around every screen once logged in: navigation, the balance, the bell with
 * the action log, the account menu, the pop-ups, and the live stream feeding them. */
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { ago, money } from "../format.js";
import { navigate, useRoute } from "../router.js";
import { dismissToast, markRead, store, useStore } from "../store.js";
import { t } from "../strings.js";
import { ErrorBanner, Link, Loading } from "./ui.js";

const NAV = [
  ["/servers", "nav.servers", "▤"],
  ["/instant", "nav.instant", "⚡"],
  ["/stock", "nav.stock", "▦"],
  ["/storage", "nav.storage", "◫"],
  ["/billing", "nav.billing", "€"],
  ["/support", "nav.support", "✉"],
  ["/developer", "nav.developer", "⌘"],
];

export const TOAST_SECONDS = 8;

function Toasts() {
  const toasts = useStore((s) => s.toasts);
  return html`<div class="toasts" role="region" aria-live="polite" aria-label=${t("toasts.label")}>
    ${toasts.map((item) => html`<${Toast} key=${item.key} item=${item} />`)}
  </div>`;
}

/** One pop-up; it stays while the pointer or the keyboard focus is on it. */
function Toast({ item }) {
  const [held, setHeld] = useState(false);
  useEffect(() => {
    if (held) return undefined;
    const timer = setTimeout(() => store.set((s) => dismissToast(s, item.key)), TOAST_SECONDS * 1000);
    return () => clearTimeout(timer);
  }, [item.key, held]);
  return html`<div class=${`toast toast-${item.level || "info"}`} role=${item.level === "error" ? "alert" : "status"}
      onMouseEnter=${() => setHeld(true)} onMouseLeave=${() => setHeld(false)}
      onFocusIn=${() => setHeld(true)} onFocusOut=${() => setHeld(false)}>
    <div class="toast-text">
      <p class="toast-title">${item.title}</p>
      ${item.body && html`<p class="toast-body">${item.body}</p>`}
    </div>
    <button type="button" class="icon-button" aria-label=${t("app.close")} onClick=${() => store.set((s) => dismissToast(s, item.key))}>×</button>
  </div>`;
}

/** While `open`, the Escape key calls `close` (the bell's panel, the account menu). */
function useEscape(open, close) {
  useEffect(() => {
    if (!open) return undefined;
    const onKey = (event) => event.key === "Escape" && close();
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [open]);
}

function Bell() {
  const [open, setOpen] = useState(false);
  const [scope, setScope] = useState("session");
  const [all, setAll] = useState(null);
  const [error, setError] = useState(null);
  const { notifications, unread } = useStore((s) => ({ notifications: s.notifications, unread: s.unread }));
  const panel = useRef(null);

  useEffect(() => {
    if (!open || scope !== "all") return;
    api("/notifications", { query: { scope: "all", per_page: 100 } }).then((page) => setAll(page.items), setError);
  }, [open, scope, notifications.length]);

  useEscape(open, () => setOpen(false));

  async function markAll() {
    setError(null);
    try {
      await api("/notifications/read", { method: "POST", body: { all: true } });
      store.set((s) => markRead(s, null));
      setAll((items) => items && items.map((item) => ({ ...item, read: true })));
    } catch (failure) {
      setError(failure);
    }
  }

  async function readOne(entry) {
    if (entry.read) return;
    try {
      await api("/notifications/read", { method: "POST", body: { ids: [entry.id] } });
      store.set((s) => markRead(s, [entry.id]));
      setAll((items) => items && items.map((item) => (item.id === entry.id ? { ...item, read: true } : item)));
    } catch (failure) {
      setError(failure);
    }
  }

  const items = scope === "all" ? all : notifications;
  return html`<div class="bell">
    <button type="button" class="icon-button bell-button" aria-expanded=${open ? "true" : "false"} aria-controls="action-log"
        onClick=${() => setOpen(!open)}>
      <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/></svg>
      <span class="visually-hidden">${t("bell.label_before")}</span><span class=${unread > 0 ? "bell-count" : "visually-hidden"}>${unread > 99 ? "99+" : unread}</span><span class="visually-hidden">${t("bell.label_after")}</span>
    </button>
    ${open && html`<section id="action-log" class="bell-panel" ref=${panel} aria-label=${t("bell.title")}>
      <header class="bell-header">
        <h2>${t("bell.title")}</h2>
        <button type="button" class="link-button" onClick=${markAll} disabled=${unread === 0 && scope === "session"}>${t("bell.mark_all")}</button>
      </header>
      <div class="segmented" role="group" aria-label=${t("bell.title")}>
        <button type="button" aria-pressed=${scope === "session" ? "true" : "false"} onClick=${() => setScope("session")}>${t("bell.session")}</button>
        <button type="button" aria-pressed=${scope === "all" ? "true" : "false"} onClick=${() => setScope("all")}>${t("bell.all")}</button>
      </div>
      <${ErrorBanner} error=${error} />
      ${items === null ? html`<${Loading} />` : items.length === 0 ? html`<p class="bell-empty">${t("bell.empty")}</p>` : html`
        <ul class="bell-list">
          ${items.map((entry) => html`<li key=${entry.id} class=${`bell-item level-${entry.level}${entry.read ? "" : " unread"}`}>
            <button type="button" class="bell-entry" onClick=${() => readOne(entry)}>
              <span class="bell-entry-title">${entry.title}${!entry.read && html`<span class="visually-hidden"> (${t("bell.unread")})</span>`}</span>
              ${entry.body && html`<span class="bell-entry-body">${entry.body}</span>`}
              <time datetime=${entry.created_at}>${ago(entry.created_at)}</time>
            </button>
          </li>`)}
        </ul>`}
    </section>`}
  </div>`;
}

function UserMenu({ user, onLogout }) {
  const [open, setOpen] = useState(false);
  useEscape(open, () => setOpen(false));
  return html`<div class="user-menu">
    <button type="button" class="user-button" aria-haspopup="menu" aria-expanded=${open ? "true" : "false"}
        onClick=${() => setOpen(!open)}>
      <span class="avatar" aria-hidden="true">${user.username.slice(0, 1).toUpperCase()}</span>
      <span class="visually-hidden">${t("user.menu_before")}</span><span class="user-name">${user.username}</span> <span aria-hidden="true">▾</span>
    </button>
    ${open && html`<ul class="menu" role="menu">
      <li role="none"><button type="button" role="menuitem" onClick=${() => onLogout(false)}>${t("user.logout")}</button></li>
      <li role="none"><button type="button" role="menuitem" onClick=${() => onLogout(true)}>${t("user.logout_everywhere")}</button></li>
    </ul>`}
  </div>`;
}

function BalanceChip() {
  const account = useStore((s) => s.account);
  if (!account) return null;
  return html`<${Link} href="/billing" class=${`balance-chip${account.overdue ? " balance-overdue" : ""}`}>
    <span class="balance-label">${t("nav.balance")}</span> <strong>${money(account.balance, account.currency)}</strong>
  <//>`;
}

export function Shell({ children, onLogout }) {
  const { path } = useRoute();
  const user = useStore((s) => s.user);
  const live = useStore((s) => s.live);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);
  return html`<div class="shell">
    <a class="skip-link" href="#main">${t("app.skip")}</a>
    <header class="topbar">
      <button type="button" class="icon-button nav-toggle" aria-expanded=${menuOpen ? "true" : "false"} aria-controls="sidebar"
          aria-label=${t("nav.menu")} onClick=${() => setMenuOpen(!menuOpen)}>☰</button>
      <${Link} href="/servers" class="brand"><span class="brand-mark" aria-hidden="true">◆</span> ${t("app.name")}<//>
      <div class="topbar-right">
        <${BalanceChip} />
        <${Bell} />
        <${UserMenu} user=${user} onLogout=${onLogout} />
      </div>
    </header>
    <nav id="sidebar" class=${`sidebar${menuOpen ? " sidebar-open" : ""}`} aria-label=${t("nav.main")}>
      <ul>
        ${NAV.map(([href, key, icon]) => {
          const active = path === href || path.startsWith(`${href}/`);
          return html`<li><${Link} href=${href} class=${`nav-link${active ? " active" : ""}`} aria-current=${active ? "page" : undefined}>
            <span class="nav-icon" aria-hidden="true">${icon}</span>${t(key)}<//></li>`;
        })}
      </ul>
    </nav>
    <main id="main" class="content">
      ${live === "reconnecting" && html`<p class="live-off" role="status">${t("app.live_off")}</p>`}
      ${children}
    </main>
    <${Toasts} />
  </div>`;
}

export { navigate };
