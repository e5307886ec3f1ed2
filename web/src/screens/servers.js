/** The server list (R-SRV-1..3): filters by location and status, search by number, tag
 * or IP, paging, and Export of exactly what the filters select. The filters live in the
 * address, so a filtered list can be bookmarked and survives a reload. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, apiUrl } from "../api.js";
import { Badge, Empty, ErrorBanner, Link, Loading, PageHeader, Pager, useResource } from "../components/ui.js";
import { dateTime } from "../format.js";
import { navigate, setQuery, useRoute } from "../router.js";
import { t } from "../strings.js";

export const PER_PAGE = 20;
export const STATUSES = ["active", "overdue", "provisioning", "suspended"];
const STATUS_KIND = { active: "success", overdue: "danger", provisioning: "info", suspended: "warning" };

export function StatusBadge({ status }) {
  return html`<${Badge} kind=${STATUS_KIND[status] || "neutral"}>${t(`status.${status}`)}<//>`;
}

export function PowerDot({ power }) {
  return html`<span class=${`power power-${power}`}><span class="power-dot" aria-hidden="true"></span>${power}</span>`;
}

export function Servers() {
  const { query } = useRoute();
  const location = query.get("location") || "";
  const status = query.get("status") || "";
  const q = query.get("q") || "";
  const page = Number(query.get("page") || 1);
  const [search, setSearch] = useState(q);

  useEffect(() => {
    if (search === q) return undefined;
    const timer = setTimeout(() => setQuery({ q: search.trim(), page: null }), 300);
    return () => clearTimeout(timer);
  }, [search]);

  const filters = { location, status, q };
  const list = useResource(() => api("/servers", { query: { ...filters, page, per_page: PER_PAGE } }), [location, status, q, page]);
  const everything = useResource(() => api("/servers", { query: { per_page: 500 } }), [], { live: false });
  const locations = [...new Set((everything.data?.items || []).map((server) => server.location))].sort();
  if (location && !locations.includes(location)) locations.push(location);
  const filtered = Boolean(location || status || q);

  return html`<section>
    <${PageHeader} title=${t("servers.title")}>
      <a class="button" href=${apiUrl("/servers/export", { format: "csv", ...filters })} download>${t("servers.export")}</a>
    <//>
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); setQuery({ q: search.trim(), page: null }); }}>
      <div class="field">
        <label for="filter-location">${t("servers.location")}</label>
        <select id="filter-location" value=${location} onChange=${(e) => setQuery({ location: e.currentTarget.value, page: null })}>
          <option value="">${t("servers.any")}</option>
          ${locations.map((code) => html`<option value=${code}>${code}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="filter-status">${t("servers.status")}</label>
        <select id="filter-status" value=${status} onChange=${(e) => setQuery({ status: e.currentTarget.value, page: null })}>
          <option value="">${t("servers.any")}</option>
          ${STATUSES.map((value) => html`<option value=${value}>${t(`status.${value}`)}</option>`)}
        </select>
      </div>
      <div class="field field-grow">
        <label for="filter-q">${t("servers.search")}</label>
        <input id="filter-q" type="search" placeholder=${t("servers.search_placeholder")} value=${search}
          onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
    </form>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${list.data === null ? (list.loading ? html`<${Loading} />` : null) : list.data.items.length === 0
      ? html`<${Empty}>${filtered ? t("servers.empty") : html`${t("servers.none")} <${Link} href="/instant">${t("nav.instant")}<//>`}<//>`
      : html`<p class="muted" aria-live="polite">${t("servers.count", { total: list.data.total })}</p>
        <table class="table table-cards servers-table">
          <thead><tr>
            <th scope="col">${t("servers.number")}</th><th scope="col">${t("servers.tag")}</th><th scope="col">${t("servers.ip")}</th>
            <th scope="col">${t("servers.location")}</th><th scope="col">${t("servers.status")}</th><th scope="col">${t("servers.power")}</th>
            <th scope="col">${t("servers.plan")}</th><th scope="col">${t("servers.paid_until")}</th>
          </tr></thead>
          <tbody>
            ${list.data.items.map((server) => html`<tr key=${server.id} class="clickable" onClick=${(e) => e.target.tagName !== "A" && navigate(`/servers/${server.id}`)}>
              <td data-label=${t("servers.number")}><${Link} href=${`/servers/${server.id}`} class="strong">${server.number}<//></td>
              <td data-label=${t("servers.tag")}>${server.tag || html`<span class="muted">—</span>`}</td>
              <td data-label=${t("servers.ip")} class="mono">${server.ip || "—"}</td>
              <td data-label=${t("servers.location")}>${server.location}</td>
              <td data-label=${t("servers.status")}><${StatusBadge} status=${server.status} /></td>
              <td data-label=${t("servers.power")}><${PowerDot} power=${server.power} /></td>
              <td data-label=${t("servers.plan")}>${server.plan}</td>
              <td data-label=${t("servers.paid_until")}>${dateTime(server.paid_until)}</td>
            </tr>`)}
          </tbody>
        </table>
        <${Pager} page=${page} perPage=${PER_PAGE} total=${list.data.total} onPage=${(next) => setQuery({ page: next })} />`}
  </section>`;
}
