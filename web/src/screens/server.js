/** One server's control panel (R-SRV-4..6): details, IPs, OS, the tag, power on/off,
 * reboot and reinstall (each answers at once; the result arrives as a pop-up), and its
 * recent operations, refreshed whenever a notification arrives. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Badge, ConfirmDialog, ErrorBanner, Field, Loading, Notice, PageHeader, describedBy, toast, useAction, useResource } from "../components/ui.js";
import { dateTime, money } from "../format.js";
import { t } from "../strings.js";
import { PowerDot, StatusBadge } from "./servers.js";

const OP_KIND = { pending: "neutral", running: "info", succeeded: "success", failed: "danger" };

export function OperationList({ operations }) {
  if (!operations?.length) return html`<p class="muted">${t("server.no_operations")}</p>`;
  return html`<ul class="operations">
    ${operations.map((op) => html`<li key=${op.id} class="operation">
      <${Badge} kind=${OP_KIND[op.status] || "neutral"}>${t(`op.${op.status}`)}<//>
      <span class="operation-title">${op.title}${op.detail && html`<span class="muted"> — ${op.detail}</span>`}</span>
      <time datetime=${op.created_at}>${dateTime(op.created_at)}</time>
    </li>`)}
  </ul>`;
}

function label(key) {
  return key.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

function Facts({ data }) {
  const entries = Object.entries(data || {}).filter(([, value]) => value !== null && value !== "" && typeof value !== "object");
  return html`<dl class="facts">${entries.map(([key, value]) => html`<div><dt>${label(key)}</dt><dd>${String(value)}</dd></div>`)}</dl>`;
}

function TagEditor({ server, onSaved }) {
  const [tag, setTag] = useState(server.tag || "");
  useEffect(() => setTag(server.tag || ""), [server.tag]);
  const { busy, error, run: save } = useAction(async () => {
    await api(`/servers/${server.id}`, { method: "PATCH", body: { tag: tag.trim() || null } });
    toast("success", t("server.tag_saved"));
    onSaved();
  });
  return html`<form class="inline-form" onSubmit=${save}>
    <${Field} label=${t("server.tag")} name="tag" error=${error}>
      <div class="input-row">
        <input ...${describedBy("tag", error)} maxlength="64" placeholder=${t("server.tag_placeholder")} value=${tag}
          onInput=${(e) => setTag(e.currentTarget.value)} />
        <button type="submit" class="button" disabled=${busy || tag.trim() === (server.tag || "")}>${busy ? t("app.saving") : t("app.save")}</button>
      </div>
    <//>
  </form>`;
}

function ReinstallPicker({ value, onChange }) {
  const images = useResource(() => api("/os-images", { query: { per_page: 100 } }), [], { live: false });
  useEffect(() => {
    if (!value && images.data?.items?.length) onChange(images.data.items[0].id);
  }, [images.data]);
  if (images.error) return html`<${ErrorBanner} error=${images.error} onRetry=${images.reload} />`;
  if (!images.data) return html`<${Loading} />`;
  return html`<div class="field">
    <label for="reinstall-os">${t("server.reinstall_os")}</label>
    <select id="reinstall-os" value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${images.data.items.map((image) => html`<option value=${image.id}>${image.name}</option>`)}
    </select>
  </div>`;
}

export function ServerDetail({ id }) {
  const server = useResource(() => api(`/servers/${id}`), [id]);
  const [asking, setAsking] = useState(null); // the action being confirmed
  const [os, setOs] = useState("");
  const [accepted, setAccepted] = useState(null);

  async function run(action) {
    const body = action === "reinstall" ? { action, os } : { action };
    const answer = await api(`/servers/${id}/actions`, { method: "POST", body, idempotencyKey: true });
    setAccepted(answer.operation);
    server.reload();
  }
  const { error, run: powerOn } = useAction(() => run("power_on"));

  if (!server.data) {
    return html`<section><${PageHeader} title=${t("servers.title")} back="/servers" />
      ${server.error ? html`<${ErrorBanner} error=${server.error} onRetry=${server.reload} />` : html`<${Loading} />`}</section>`;
  }
  const s = server.data;
  const actionName = asking && t(`server.${asking}`);
  const confirmTitle = asking && t("server.confirm_title", { action: actionName, number: s.number });
  return html`<section>
    <${PageHeader} title=${t("server.title", { number: s.number })} back="/servers">
      <${StatusBadge} status=${s.status} />
    <//>
    <${ErrorBanner} error=${server.error || error} />
    ${accepted && html`<${Notice} kind="info">${t("server.accepted")}<//>`}
    <div class="toolbar" role="group" aria-label=${t("server.power")}>
      <button type="button" class="button" onClick=${powerOn}>${t("server.power_on")}</button>
      <button type="button" class="button" onClick=${() => setAsking("reboot")}>${t("server.reboot")}</button>
      <button type="button" class="button" onClick=${() => setAsking("power_off")}>${t("server.power_off")}</button>
      <button type="button" class="button button-danger-outline" onClick=${() => setAsking("reinstall")}>${t("server.reinstall")}</button>
    </div>
    <div class="grid grid-2">
      <article class="card">
        <h2>${t("server.power")}</h2>
        <p class="big"><${PowerDot} power=${s.power} /></p>
        ${s.power_source === "last_known" && html`<p class="muted">${t("server.power_source_last_known")}</p>`}
        <dl class="facts">
          <div><dt>${t("servers.location")}</dt><dd>${s.location}</dd></div>
          <div><dt>${t("servers.plan")}</dt><dd>${s.plan}</dd></div>
          ${s.price_month && html`<div><dt>${t("server.price")}</dt><dd>${money(s.price_month)} ${t("offer.per_month")}</dd></div>`}
          <div><dt>${t("servers.paid_until")}</dt><dd>${dateTime(s.paid_until)}</dd></div>
        </dl>
        <${TagEditor} server=${s} onSaved=${server.reload} />
      </article>
      <article class="card">
        <h2>${t("server.hardware")}</h2>
        <${Facts} data=${s.hardware} />
        <h2>${t("server.os")}</h2>
        <${Facts} data=${s.os} />
        <h2>${t("server.network")}</h2>
        <ul class="ip-list">${(s.ips?.length ? s.ips : [s.ip]).filter(Boolean).map((ip) => html`<li class="mono">${ip}</li>`)}</ul>
      </article>
    </div>
    <article class="card">
      <h2>${t("server.operations")}</h2>
      <${OperationList} operations=${s.recent_operations} />
    </article>
    ${asking === "reboot" && html`<${ConfirmDialog} title=${confirmTitle} warning=${t("server.confirm_reboot")} action=${actionName}
        danger=${false} onConfirm=${() => run("reboot")} onClose=${() => setAsking(null)} />`}
    ${(asking === "power_off" || asking === "reinstall") && html`<${ConfirmDialog} title=${confirmTitle} action=${actionName}
        warning=${t(asking === "reinstall" ? "server.confirm_reinstall" : "server.confirm_power_off")}
        expected=${s.number} prompt=${t("server.confirm_type", { number: s.number })}
        onConfirm=${() => run(asking)} onClose=${() => setAsking(null)}>
        ${asking === "reinstall" && html`<${ReinstallPicker} value=${os} onChange=${setOs} />`}
      <//>`}
  </section>`;
}
