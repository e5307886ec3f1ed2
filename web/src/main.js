/** The panel's entry: checks the session, routes to the screens, and feeds the shared
 * state (balance, action log, pop-ups) from the API and the live stream. */
import { render } from "preact";
import { html } from "htm/preact";
import { useEffect } from "preact/hooks";
import { api, onUnauthenticated } from "./api.js";
import { Shell } from "./components/shell.js";
import { Loading } from "./components/ui.js";
import { connectLive } from "./live.js";
import { match, navigate, useRoute } from "./router.js";
import { receiveNotification, store, useStore } from "./store.js";
import { t } from "./strings.js";
import { Billing } from "./screens/billing.js";
import { Catalog } from "./screens/catalog.js";
import { Developer } from "./screens/developer.js";
import { Login, ResetPassword } from "./screens/login.js";
import { NotFound } from "./screens/notfound.js";
import { ServerDetail } from "./screens/server.js";
import { Servers } from "./screens/servers.js";
import { StorageDetail, StorageList } from "./screens/storage.js";
import { Support, TicketDetail } from "./screens/support.js";
import "./styles.css";

const PUBLIC = ["/login", "/reset-password"];

const SCREENS = [
  ["/servers", () => html`<${Servers} />`],
  ["/servers/:id", ({ id }) => html`<${ServerDetail} id=${id} key=${id} />`],
  ["/instant", () => html`<${Catalog} kind="instant" key="instant" />`],
  ["/stock", () => html`<${Catalog} kind="stock" key="stock" />`],
  ["/storage", () => html`<${StorageList} />`],
  ["/storage/:id", ({ id }) => html`<${StorageDetail} id=${id} key=${id} />`],
  ["/billing", () => html`<${Billing} />`],
  ["/support", () => html`<${Support} />`],
  ["/support/:id", ({ id }) => html`<${TicketDetail} id=${id} key=${id} />`],
  ["/developer", () => html`<${Developer} />`],
];

let liveStream = null;
let loggingOut = false; // a logout in flight: its own stream end and 401s are not "session ended"

export async function refreshAccount() {
  try {
    store.set({ account: await api("/billing/account") });
  } catch {
    // the header's balance is a convenience: the billing screen shows the error itself
  }
}

/** A session exists (login or page load): load the log and balance, open the stream. */
export async function startSession(user) {
  store.set({ user, sessionChecked: true, flash: null });
  refreshAccount();
  api("/notifications", { query: { scope: "session", per_page: 100 } }).then(
    (page) => store.set({ notifications: page.items, unread: page.unread }),
    () => {},
  );
  liveStream?.close();
  liveStream = connectLive({
    onNotification(entry) {
      store.set((state) => receiveNotification(state, entry));
      refreshAccount();
    },
    onStatus: (live) => store.set({ live }),
    onSessionEnded: () => endSession(t("login.session_ended")),
  });
}

/** The session is over (logout, expiry, elsewhere): forget everything, back to login. */
export function endSession(flash = null) {
  liveStream?.close();
  liveStream = null;
  store.set({ user: null, account: null, notifications: [], unread: 0, toasts: [], flash, live: "connecting" });
  const here = location.pathname + location.search;
  const next = PUBLIC.includes(location.pathname) || location.pathname === "/" ? "" : `?next=${encodeURIComponent(here)}`;
  navigate(`/login${flash ? next : ""}`, { replace: true });
}

/** Log out (here or everywhere). The live stream closes first and 401s are ignored until
 * the gateway answered, so the login screen shows only once the cookie is cleared, never
 * with a "session ended" message for a logout the customer asked for. */
async function logout(everywhere) {
  loggingOut = true;
  liveStream?.close();
  liveStream = null;
  try {
    await api(everywhere ? "/auth/logout/everywhere" : "/auth/logout", { method: "POST" });
  } catch {
    // already over (expired, ended elsewhere): the panel forgets it all the same
  } finally {
    loggingOut = false;
    endSession(null);
  }
}

function App() {
  const { path } = useRoute();
  const { user, sessionChecked } = useStore((s) => ({ user: s.user, sessionChecked: s.sessionChecked }));

  useEffect(() => {
    api("/auth/session").then(
      (session) => startSession(session.user),
      () => store.set({ sessionChecked: true }),
    );
    return onUnauthenticated(() => store.get().user && !loggingOut && endSession(t("login.session_ended")));
  }, []);

  useEffect(() => {
    if (!sessionChecked) return;
    if (!user && !PUBLIC.includes(path)) navigate(`/login${path === "/" ? "" : `?next=${encodeURIComponent(path + location.search)}`}`, { replace: true });
    else if (user && (path === "/" || path === "/login")) navigate("/servers", { replace: true });
  }, [user, sessionChecked, path]);

  useEffect(() => {
    document.getElementById("page-title")?.focus({ preventScroll: true });
    const title = document.getElementById("page-title")?.textContent;
    document.title = title ? `${title} · ${t("app.name")}` : t("app.name");
  }, [path, user]);

  if (path === "/reset-password") return html`<${ResetPassword} />`;
  if (!sessionChecked) return html`<div class="splash"><${Loading} /></div>`;
  if (!user) return path === "/login" ? html`<${Login} onLoggedIn=${startSession} />` : html`<div class="splash"><${Loading} /></div>`;

  let screen = null;
  for (const [pattern, draw] of SCREENS) {
    const params = match(pattern, path);
    if (params) {
      screen = draw(params);
      break;
    }
  }
  return html`<${Shell} onLogout=${logout}>${screen || html`<${NotFound} />`}<//>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" shown before the script ran
render(html`<${App} />`, root);
