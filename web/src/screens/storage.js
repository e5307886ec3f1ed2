/** S3 storage (R-S3): "Your separate S3 Storages", creating one, and one storage's tabs:
 * Buckets (add, delete; naming errors at the field), Overview (storage and bandwidth
 * usage charts over a chosen period) and Credentials (secret on demand, copy, rotate). */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import {
  Badge, CopyButton, Empty, ErrorBanner, Field, Link, Loading, Modal, Notice, PageHeader, Tabs, ConfirmDialog,
  describedBy, formLevelError, toast, useAction, useResource,
} from "../components/ui.js";
import { bytes, dateTime } from "../format.js";
import { navigate, setQuery, useRoute } from "../router.js";
import { t } from "../strings.js";
import { OperationList } from "./server.js";

export const PERIODS = { "1d": [86400, 300], "7d": [7 * 86400, 3600], "30d": [30 * 86400, 6 * 3600] };

function CreateStorage({ onClose, onCreated }) {
  const locations = useResource(() => api("/storage/s3/locations"), [], { live: false });
  const [form, setForm] = useState({ name: "", limit_gb: "100", location: "" });
  const set = (key) => (event) => setForm({ ...form, [key]: event.currentTarget.value });
  const location = form.location || locations.data?.items?.[0]?.code || "";
  const { busy, error, run: submit } = useAction(async () => {
    const limit = Number(form.limit_gb);
    // not a number: sent as typed, so the API names the field
    const body = { name: form.name.trim(), limit_gb: Number.isFinite(limit) && form.limit_gb !== "" ? limit : form.limit_gb, location };
    onCreated(await api("/storage/s3", { method: "POST", body, idempotencyKey: true }));
  });
  return html`<${Modal} title=${t("storage.create")} onClose=${onClose}>
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("storage.name")} name="name" error=${error}>
        <input ...${describedBy("name", error)} required maxlength="64" value=${form.name} onInput=${set("name")} />
      <//>
      <${Field} label=${t("storage.limit")} name="limit_gb" error=${error}>
        <input ...${describedBy("limit_gb", error)} type="number" min="1" step="1" required value=${form.limit_gb} onInput=${set("limit_gb")} />
      <//>
      <${Field} label=${t("storage.location")} name="location" error=${error}>
        ${locations.data ? html`<select ...${describedBy("location", error)} value=${location} onChange=${set("location")}>
          ${locations.data.items.map((item) => html`<option value=${item.code}>${item.name} (${item.code})</option>`)}
        </select>` : html`<${Loading} />`}
      <//>
      <${ErrorBanner} error=${formLevelError(error, ["name", "limit_gb", "location"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !location}>${t("storage.create")}</button>
      </div>
    </form>
  <//>`;
}

function UsageBar({ used, limit }) {
  const share = limit ? Math.min(100, Math.round((used / limit) * 100)) : 0;
  return html`<span class="usage"><span class="usage-text">${bytes(used)}</span>
    <progress max="100" value=${share} aria-label=${`${share}%`}></progress></span>`;
}

export function StorageList() {
  const list = useResource(() => api("/storage/s3", { query: { per_page: 100 } }), []);
  const [creating, setCreating] = useState(false);
  return html`<section>
    <${PageHeader} title=${t("storage.title")}>
      <button type="button" class="button button-primary" onClick=${() => setCreating(true)}>${t("storage.create")}</button>
    <//>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${list.data === null ? (list.loading ? html`<${Loading} />` : null) : list.data.items.length === 0
      ? html`<${Empty}>${t("storage.empty")}<//>`
      : html`<table class="table table-cards">
          <thead><tr><th scope="col">${t("storage.name")}</th><th scope="col">${t("storage.limit")}</th><th scope="col">${t("storage.location")}</th>
            <th scope="col">${t("storage.s3uid")}</th><th scope="col">${t("storage.used")}</th></tr></thead>
          <tbody>${list.data.items.map((item) => html`<tr key=${item.id} class="clickable" onClick=${(e) => e.target.tagName !== "A" && navigate(`/storage/${item.id}`)}>
            <td data-label=${t("storage.name")}><${Link} class="strong" href=${`/storage/${item.id}`}>${item.name}<//>
              ${item.status === "deleting" && html` <${Badge} kind="warning">${t("storage.deleting")}<//>`}</td>
            <td data-label=${t("storage.limit")}>${item.limit_gb}</td>
            <td data-label=${t("storage.location")}>${item.location}</td>
            <td data-label=${t("storage.s3uid")} class="mono">${item.s3uid}</td>
            <td data-label=${t("storage.used")}><${UsageBar} used=${item.used_bytes} limit=${item.limit_bytes} /></td>
          </tr>`)}</tbody>
        </table>`}
    ${creating && html`<${CreateStorage} onClose=${() => setCreating(false)}
      onCreated=${(storage) => { setCreating(false); toast("success", t("storage.created", { name: storage.name })); navigate(`/storage/${storage.id}`); }} />`}
  </section>`;
}

function Buckets({ storage }) {
  const buckets = useResource(() => api(`/storage/s3/${storage.id}/buckets`, { query: { per_page: 500 } }), [storage.id]);
  const [adding, setAdding] = useState(false);
  const [name, setName] = useState("");
  const [deleting, setDeleting] = useState(null);
  const { busy, error, setError, run: create } = useAction(async () => {
    await api(`/storage/s3/${storage.id}/buckets`, { method: "POST", body: { name: name.trim() }, idempotencyKey: true });
    setName("");
    setAdding(false);
    buckets.reload();
  });

  async function remove(bucket) {
    await api(`/storage/s3/${storage.id}/buckets/${encodeURIComponent(bucket)}`, { method: "DELETE", query: { force: true } });
    buckets.reload();
  }

  return html`<div class="stack">
    <div class="toolbar">
      ${!adding && html`<button type="button" class="button button-primary" onClick=${() => setAdding(true)}>${t("storage.add_bucket")}</button>`}
    </div>
    ${adding && html`<form class="card stack" onSubmit=${create} novalidate aria-label=${t("storage.add_bucket")}>
      <${Field} label=${t("storage.bucket_name")} name="name" id="bucket-name" error=${error} hint=${t("storage.bucket_rules")}>
        <input ...${describedBy("name", error, true, "bucket-name")} required maxlength="63" autocomplete="off" value=${name}
          onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${ErrorBanner} error=${formLevelError(error, ["name"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${() => { setAdding(false); setError(null); }}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !name.trim()}>${t("storage.create_bucket")}</button>
      </div>
    </form>`}
    <${ErrorBanner} error=${buckets.error} onRetry=${buckets.error && buckets.reload} />
    ${buckets.data === null ? html`<${Loading} />` : buckets.data.items.length === 0 ? html`<${Empty}>${t("storage.no_buckets")}<//>` : html`
      <ul class="bucket-list">${buckets.data.items.map((bucket) => html`<li key=${bucket.name} class="bucket">
        <span class="mono strong">${bucket.name}</span>
        ${bucket.status !== "active" && html`<${Badge} kind="info">${bucket.status}<//>`}
        <span class="muted">${dateTime(bucket.created_at)}</span>
        <button type="button" class="button button-small button-danger-outline" disabled=${bucket.status === "deleting"}
          aria-label=${t("storage.delete_bucket", { name: bucket.name })} onClick=${() => setDeleting(bucket.name)}>×</button>
      </li>`)}</ul>`}
    ${deleting && html`<${ConfirmDialog} title=${t("storage.delete_bucket", { name: deleting })} warning=${t("storage.confirm_delete_bucket", { name: deleting })}
      expected=${deleting} prompt=${t("storage.type_name", { name: deleting })} action=${t("storage.delete_bucket", { name: deleting })}
      onConfirm=${() => remove(deleting)} onClose=${() => setDeleting(null)} />`}
  </div>`;
}

/** Chart.js is most of the panel's code: it is loaded when a chart is first shown. */
function useChartComponent() {
  const [component, setComponent] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    import("../components/chart.js").then((module) => setComponent(() => module.TimeChart), setError);
  }, []);
  return { TimeChart: component, error };
}

function Overview({ storage }) {
  const { TimeChart, error: chartError } = useChartComponent();
  const { query } = useRoute();
  const period = PERIODS[query.get("period")] ? query.get("period") : "1d";
  const [span, step] = PERIODS[period];
  const load = (metric) => () => {
    const to = Math.floor(Date.now() / 1000);
    return api(`/storage/s3/${storage.id}/usage`, { query: { metric, from: to - span, to, step } })
      .then((usage) => ({ ...usage, range: [to - span, to] }));
  };
  const stored = useResource(load("storage"), [storage.id, period], { live: false });
  const bandwidth = useResource(load("bandwidth"), [storage.id, period], { live: false });
  return html`<div class="stack">
    <div class="field field-inline">
      <label for="usage-period">${t("storage.period")}</label>
      <select id="usage-period" value=${period} onChange=${(e) => setQuery({ period: e.currentTarget.value })}>
        ${Object.keys(PERIODS).map((key) => html`<option value=${key}>${t(`storage.period_${key}`)}</option>`)}
      </select>
    </div>
    <${ErrorBanner} error=${chartError} />
    <div class="grid grid-2">
      <article class="card">
        <${ErrorBanner} error=${stored.error} onRetry=${stored.reload} />
        ${stored.data && TimeChart ? html`<${TimeChart} title=${t("storage.usage_storage")} range=${stored.data.range} emptyText=${t("storage.no_usage")} series=${[{ label: t("storage.stored"), points: stored.data.points }]} />` : html`<${Loading} />`}
      </article>
      <article class="card">
        <${ErrorBanner} error=${bandwidth.error} onRetry=${bandwidth.reload} />
        ${bandwidth.data && TimeChart ? html`<${TimeChart} title=${t("storage.usage_bandwidth")} range=${bandwidth.data.range} emptyText=${t("storage.no_usage")}
          series=${bandwidth.data.in ? [{ label: t("storage.in"), points: bandwidth.data.in }, { label: t("storage.out"), points: bandwidth.data.out || [] }]
            : [{ label: t("storage.usage_bandwidth"), points: bandwidth.data.points }]} />` : html`<${Loading} />`}
      </article>
    </div>
  </div>`;
}

function Credentials({ storage }) {
  const credentials = useResource(() => api(`/storage/s3/${storage.id}/credentials`), [storage.id], { live: false });
  const [shown, setShown] = useState(false);
  const [rotating, setRotating] = useState(false);
  if (credentials.error) return html`<${ErrorBanner} error=${credentials.error} onRetry=${credentials.reload} />`;
  if (!credentials.data) return html`<${Loading} />`;
  const c = credentials.data;
  return html`<article class="card stack">
    ${c.writes_suspended && html`<${Notice} kind="warning">${t("storage.writes_suspended")}<//>`}
    <dl class="facts facts-wide">
      <div><dt>${t("storage.access_key")}</dt><dd><code class="secret" id="access-key">${c.access_key}</code> <${CopyButton} text=${c.access_key} /></dd></div>
      <div><dt>${t("storage.secret_key")}</dt><dd>
        <code class="secret" id="secret-key">${shown ? c.secret_key : "••••••••••••••••••••"}</code>
        <button type="button" class="button button-small" aria-pressed=${shown ? "true" : "false"} onClick=${() => setShown(!shown)}>
          ${shown ? t("storage.hide_secret") : t("storage.show_secret")}</button>
        <${CopyButton} text=${c.secret_key} />
      </dd></div>
      <div><dt>${t("storage.endpoints")}</dt><dd><ul class="plain">${c.endpoints.map((url) => html`<li><code>${url}</code> <${CopyButton} text=${url} /></li>`)}</ul></dd></div>
      <div><dt>${t("storage.region")}</dt><dd><code>${c.region}</code></dd></div>
    </dl>
    <div class="toolbar"><button type="button" class="button button-danger-outline" onClick=${() => setRotating(true)}>${t("storage.rotate")}</button></div>
    ${rotating && html`<${ConfirmDialog} title=${t("storage.rotate")} warning=${t("storage.confirm_rotate")} expected=${storage.name}
      prompt=${t("storage.type_name", { name: storage.name })} action=${t("storage.rotate")}
      onConfirm=${async () => { await api(`/storage/s3/${storage.id}/credentials/rotate`, { method: "POST" }); setShown(false); credentials.reload(); toast("success", t("storage.rotated")); }}
      onClose=${() => setRotating(false)} />`}
  </article>`;
}

export function StorageDetail({ id }) {
  const { query } = useRoute();
  const tab = ["buckets", "overview", "credentials"].includes(query.get("tab")) ? query.get("tab") : "buckets";
  const storage = useResource(() => api(`/storage/s3/${id}`), [id]);
  const [deleting, setDeleting] = useState(false);
  if (!storage.data) {
    return html`<section><${PageHeader} title=${t("storage.title")} back="/storage" />
      ${storage.error ? html`<${ErrorBanner} error=${storage.error} onRetry=${storage.reload} />` : html`<${Loading} />`}</section>`;
  }
  const s = storage.data;
  return html`<section>
    <${PageHeader} title=${s.name} back="/storage">
      <button type="button" class="button button-danger-outline" disabled=${s.status === "deleting"} onClick=${() => setDeleting(true)}>${t("storage.delete")}</button>
    <//>
    ${s.status === "deleting" && html`<${Notice} kind="warning">${t("storage.deleting")}<//>`}
    <dl class="facts facts-row">
      <div><dt>${t("storage.limit")}</dt><dd>${s.limit_gb}</dd></div>
      <div><dt>${t("storage.used")}</dt><dd><${UsageBar} used=${s.used_bytes} limit=${s.limit_bytes} /></dd></div>
      <div><dt>${t("storage.location")}</dt><dd>${s.location}</dd></div>
      <div><dt>${t("storage.s3uid")}</dt><dd class="mono">${s.s3uid}</dd></div>
    </dl>
    <${Tabs} label=${s.name} value=${tab} onChange=${(value) => setQuery({ tab: value === "buckets" ? null : value, period: null })}
      tabs=${[["buckets", t("storage.tab_buckets")], ["overview", t("storage.tab_overview")], ["credentials", t("storage.tab_credentials")]]} />
    <div role="tabpanel" class="tabpanel">
      ${tab === "buckets" && html`<${Buckets} storage=${s} />`}
      ${tab === "overview" && html`<${Overview} storage=${s} />`}
      ${tab === "credentials" && html`<${Credentials} storage=${s} />`}
    </div>
    ${s.recent_operations?.length > 0 && html`<article class="card"><h2>${t("server.operations")}</h2><${OperationList} operations=${s.recent_operations} /></article>`}
    ${deleting && html`<${ConfirmDialog} title=${t("storage.delete")} warning=${t("storage.confirm_delete", { name: s.name })} expected=${s.name}
      prompt=${t("storage.type_name", { name: s.name })} action=${t("storage.delete")}
      onConfirm=${async () => { await api(`/storage/s3/${s.id}`, { method: "DELETE" }); navigate("/storage"); }}
      onClose=${() => setDeleting(false)} />`}
  </section>`;
}
