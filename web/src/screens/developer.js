/** API tokens and webhooks, for customers who automate: create a token with scopes, an
 * expiry and allowed addresses (its secret shown once, copyable), see when and from where
 * each was last used, revoke one or all; register webhook endpoints (their signing secret
 * shown once), see each one's deliveries with the receiver's answers, send a test event,
 * delete one. Everything through the public API (`/tokens`, `/webhooks`). */
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api } from "../api.js";
import {
  Badge, ConfirmDialog, CopyButton, Empty, ErrorBanner, Field, Loading, Modal, Notice, PageHeader, Tabs,
  describedBy, formLevelError, toast, useAction, useResource,
} from "../components/ui.js";
import { dateTime } from "../format.js";
import { setQuery, useRoute } from "../router.js";
import { t } from "../strings.js";

const EXPIRIES = [["30", "developer.expiry_30"], ["90", "developer.expiry_90"], ["365", "developer.expiry_365"],
  ["never", "developer.expiry_never"]];
export const WEBHOOK_KINDS = ["operation_succeeded", "operation_failed", "order_completed", "payment_credited",
  "ticket_status_changed"];

/** The secret of something just created: shown once, with a copy button. */
function SecretOnce({ label, secret, onDone }) {
  return html`<${Modal} title=${label} onClose=${onDone}>
    <div class="stack">
      <${Notice} kind="warning">${t("developer.secret_once")}<//>
      <div class="secret-row"><code class="mono secret" data-testid="new-secret">${secret}</code>
        <${CopyButton} text=${secret} /></div>
      <div class="actions"><button type="button" class="button button-primary" onClick=${onDone}>${t("developer.stored_it")}</button></div>
    </div>
  <//>`;
}

/** Scopes as the API lists them, split into areas (read / write each) and the special ones. */
export function scopeLayout(scopes) {
  const names = new Set(scopes.map((scope) => scope.name));
  const areas = [];
  for (const { name } of scopes) {
    const [area, access] = name.split(":");
    if (access === "read" && names.has(`${area}:write`) && !areas.includes(area)) areas.push(area);
  }
  const special = scopes.filter(({ name }) => !areas.includes(name.split(":")[0]));
  return { areas, special };
}

/** The scope names of the chosen levels (`{servers: "write"}`) and special scopes. */
export function chosenScopes(levels, special) {
  return [...Object.entries(levels).filter(([, level]) => level !== "none").map(([area, level]) => `${area}:${level}`),
    ...special];
}

const LEVELS = [["none", "developer.level_none"], ["read", "developer.level_read"], ["write", "developer.level_write"]];

function CreateToken({ scopes, onClose, onCreated }) {
  const { areas, special } = scopeLayout(scopes);
  const [name, setName] = useState("");
  const [levels, setLevels] = useState(Object.fromEntries(areas.map((area) => [area, area === "servers" ? "read" : "none"])));
  const [extras, setExtras] = useState(new Set());
  const [expiry, setExpiry] = useState("90");
  const [addresses, setAddresses] = useState("");
  const chosen = chosenScopes(levels, [...extras]);
  const toggle = (scope) => {
    const next = new Set(extras);
    if (next.has(scope)) next.delete(scope); else next.add(scope);
    setExtras(next);
  };
  const { busy, error, run: submit } = useAction(async () => {
    const body = { name: name.trim(), scopes: chosen, allowed_ips: addresses.split(/[\s,]+/).filter(Boolean) };
    if (expiry === "never") body.no_expiry = true; else body.expires_in_days = Number(expiry);
    onCreated(await api("/tokens", { method: "POST", body }));
  });
  return html`<${Modal} title=${t("developer.new_token")} onClose=${onClose} wide>
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("developer.token_name")} name="name" error=${error} hint=${t("developer.token_name_hint")}>
        <input ...${describedBy("name", error, true)} required maxlength="100" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <fieldset class="scopes" aria-describedby=${error?.fields?.scopes ? "scopes-error" : undefined}>
        <legend>${t("developer.scopes")}</legend>
        <table class="scope-grid">
          <thead><tr><th scope="col">${t("developer.area")}</th>
            ${LEVELS.map(([, key]) => html`<th scope="col">${t(key)}</th>`)}</tr></thead>
          <tbody>${areas.map((area) => html`<tr key=${area}>
            <th scope="row">${t(`developer.area_${area}`)}</th>
            ${LEVELS.map(([level, key]) => html`<td><input type="radio" name=${`scope-${area}`} checked=${levels[area] === level}
              aria-label=${`${t(`developer.area_${area}`)}: ${t(key)}`}
              onChange=${() => setLevels({ ...levels, [area]: level })} /></td>`)}
          </tr>`)}</tbody>
        </table>
        ${special.map((scope) => html`<label class="check" key=${scope.name}>
          <input type="checkbox" checked=${extras.has(scope.name)} onChange=${() => toggle(scope.name)} />
          <span><span class="mono">${scope.name}</span> <span class="muted">${scope.description}</span></span></label>`)}
        ${error?.fields?.scopes && html`<p class="field-error" id="scopes-error">${error.fields.scopes.join(" ")}</p>`}
      </fieldset>
      <${Field} label=${t("developer.expiry")} name="expires_in_days" error=${error}>
        <select ...${describedBy("expires_in_days", error)} value=${expiry} onChange=${(e) => setExpiry(e.currentTarget.value)}>
          ${EXPIRIES.map(([value, key]) => html`<option value=${value}>${t(key)}</option>`)}
        </select>
      <//>
      <${Field} label=${t("developer.allowed_ips")} name="allowed_ips" error=${error} hint=${t("developer.allowed_ips_hint")}>
        <input ...${describedBy("allowed_ips", error, true)} value=${addresses} placeholder="203.0.113.0/24"
          onInput=${(e) => setAddresses(e.currentTarget.value)} />
      <//>
      <${ErrorBanner} error=${formLevelError(error, ["name", "scopes", "expires_in_days", "allowed_ips"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !name.trim() || chosen.length === 0}>${t("developer.create_token")}</button>
      </div>
    </form>
  <//>`;
}

function Tokens() {
  const list = useResource(() => api("/tokens"), [], { live: false });
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [revokingAll, setRevokingAll] = useState(false);
  const live = list.data?.items.filter((token) => token.status === "active") || [];
  return html`<div class="stack">
    <div class="toolbar">
      <button type="button" class="button button-primary" onClick=${() => setCreating(true)} disabled=${!list.data}>${t("developer.new_token")}</button>
      ${live.length > 1 && html`<button type="button" class="button button-danger" onClick=${() => setRevokingAll(true)}>${t("developer.revoke_all")}</button>`}
    </div>
    <p class="muted">${t("developer.tokens_intro")}</p>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${list.data === null ? (list.loading ? html`<${Loading} />` : null) : list.data.items.length === 0
      ? html`<${Empty}>${t("developer.no_tokens")}<//>`
      : html`<table class="table table-cards">
          <thead><tr><th scope="col">${t("developer.token_name")}</th><th scope="col">${t("developer.scopes")}</th>
            <th scope="col">${t("developer.expires")}</th><th scope="col">${t("developer.last_used")}</th><th scope="col"><span class="visually-hidden">${t("developer.actions")}</span></th></tr></thead>
          <tbody>${list.data.items.map((token) => html`<tr key=${token.id}>
            <td data-label=${t("developer.token_name")}><span class="strong">${token.name}</span>
              <div class="muted mono">…${token.hint} · ${token.id}</div>
              ${token.status !== "active" && html`<${Badge} kind="warning">${t(`developer.status_${token.status}`)}<//>`}</td>
            <td data-label=${t("developer.scopes")}><ul class="scope-list">${token.scopes.map((scope) => html`<li class="mono">${scope}</li>`)}</ul>
              ${token.allowed_ips.length > 0 && html`<div class="muted">${t("developer.only_from", { addresses: token.allowed_ips.join(", ") })}</div>`}</td>
            <td data-label=${t("developer.expires")}>${token.expires_at ? dateTime(token.expires_at) : t("developer.never")}</td>
            <td data-label=${t("developer.last_used")}>${token.last_used_at
              ? html`${dateTime(token.last_used_at)}<div class="muted mono">${token.last_used_ip}</div>` : t("developer.never_used")}</td>
            <td>${token.status === "active" && html`<button type="button" class="button button-small"
              onClick=${() => setRevoking(token)} aria-label=${t("developer.revoke_named", { name: token.name })}>${t("developer.revoke")}</button>`}</td>
          </tr>`)}</tbody>
        </table>`}
    ${creating && html`<${CreateToken} scopes=${list.data.available_scopes} onClose=${() => setCreating(false)}
      onCreated=${(token) => { setCreating(false); setSecret(token.token); list.reload(); }} />`}
    ${secret && html`<${SecretOnce} label=${t("developer.token_created")} secret=${secret} onDone=${() => setSecret(null)} />`}
    ${revoking && html`<${ConfirmDialog} title=${t("developer.revoke_title", { name: revoking.name })}
      warning=${t("developer.revoke_warning")} action=${t("developer.revoke")}
      onConfirm=${async () => { await api(`/tokens/${revoking.id}`, { method: "DELETE" }); setRevoking(null);
        toast("success", t("developer.revoked", { name: revoking.name })); list.reload(); }}
      onClose=${() => setRevoking(null)} />`}
    ${revokingAll && html`<${ConfirmDialog} title=${t("developer.revoke_all")} warning=${t("developer.revoke_all_warning")}
      action=${t("developer.revoke_all")} onConfirm=${async () => { const done = await api("/tokens", { method: "DELETE" });
        setRevokingAll(false); toast("success", t("developer.revoked_all", { count: done.revoked })); list.reload(); }}
      onClose=${() => setRevokingAll(false)} />`}
  </div>`;
}

function CreateWebhook({ onClose, onCreated }) {
  const [url, setUrl] = useState("https://");
  const [kinds, setKinds] = useState(new Set(["operation_succeeded", "operation_failed"]));
  const toggle = (kind) => {
    const next = new Set(kinds);
    if (next.has(kind)) next.delete(kind); else next.add(kind);
    setKinds(next);
  };
  const { busy, error, run: submit } = useAction(async () => {
    onCreated(await api("/webhooks", { method: "POST", body: { url: url.trim(), kinds: WEBHOOK_KINDS.filter((k) => kinds.has(k)) } }));
  });
  return html`<${Modal} title=${t("developer.new_webhook")} onClose=${onClose}>
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("developer.webhook_url")} name="url" error=${error} hint=${t("developer.webhook_url_hint")}>
        <input ...${describedBy("url", error, true)} type="url" required value=${url} onInput=${(e) => setUrl(e.currentTarget.value)} />
      <//>
      <fieldset class="scopes">
        <legend>${t("developer.webhook_kinds")}</legend>
        ${WEBHOOK_KINDS.map((kind) => html`<label class="check" key=${kind}>
          <input type="checkbox" checked=${kinds.has(kind)} onChange=${() => toggle(kind)} />
          <span>${t(`developer.kind_${kind}`)}</span> <span class="muted mono">${kind}</span></label>`)}
        ${error?.fields?.kinds && html`<p class="field-error">${error.fields.kinds.join(" ")}</p>`}
      </fieldset>
      <${ErrorBanner} error=${formLevelError(error, ["url", "kinds"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || kinds.size === 0}>${t("developer.add_webhook")}</button>
      </div>
    </form>
  <//>`;
}

function Deliveries({ endpoint }) {
  const list = useResource(() => api(`/webhooks/${endpoint.id}/deliveries`, { query: { per_page: 20 } }), [endpoint.id]);
  const { busy, run: sendTest } = useAction(async () => {
    await api(`/webhooks/${endpoint.id}/test`, { method: "POST" });
    toast("info", t("developer.test_sent"));
    setTimeout(list.reload, 1000);
  });
  return html`<div class="stack">
    <div class="toolbar">
      <button type="button" class="button button-small" onClick=${sendTest} disabled=${busy}>${t("developer.send_test")}</button>
      <button type="button" class="button button-small" onClick=${list.reload}>${t("app.refresh")}</button>
    </div>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${list.data === null ? html`<${Loading} />` : list.data.items.length === 0 ? html`<${Empty}>${t("developer.no_deliveries")}<//>` : html`
      <table class="table table-cards deliveries">
        <thead><tr><th scope="col">${t("developer.event")}</th><th scope="col">${t("developer.delivery_status")}</th>
          <th scope="col">${t("developer.attempts")}</th><th scope="col">${t("developer.answer")}</th><th scope="col">${t("developer.when")}</th></tr></thead>
        <tbody>${list.data.items.map((delivery) => html`<tr key=${delivery.id}>
          <td data-label=${t("developer.event")}><span class="mono">${delivery.kind}</span><div class="muted mono">${delivery.event_id}</div></td>
          <td data-label=${t("developer.delivery_status")}><${Badge} kind=${{ delivered: "success", failed: "danger" }[delivery.status] || "info"}>${t(`developer.delivery_${delivery.status}`)}<//></td>
          <td data-label=${t("developer.attempts")}>${delivery.attempts}</td>
          <td data-label=${t("developer.answer")} class="mono">${delivery.last_status_code || delivery.last_error || "–"}</td>
          <td data-label=${t("developer.when")}>${dateTime(delivery.delivered_at || delivery.created_at)}</td>
        </tr>`)}</tbody>
      </table>`}
  </div>`;
}

function Webhooks() {
  const list = useResource(() => api("/webhooks"), [], { live: false });
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState(null);
  const [open, setOpen] = useState(null);
  const [deleting, setDeleting] = useState(null);
  return html`<div class="stack">
    <div class="toolbar">
      <button type="button" class="button button-primary" onClick=${() => setCreating(true)}>${t("developer.new_webhook")}</button>
    </div>
    <p class="muted">${t("developer.webhooks_intro")}</p>
    <${ErrorBanner} error=${list.error} onRetry=${list.reload} />
    ${list.data === null ? (list.loading ? html`<${Loading} />` : null) : list.data.items.length === 0
      ? html`<${Empty}>${t("developer.no_webhooks")}<//>`
      : html`<ul class="endpoint-list">${list.data.items.map((endpoint) => html`<li class="card stack" key=${endpoint.id}>
          <div class="endpoint-head">
            <div><div class="mono strong endpoint-url">${endpoint.url}</div>
              <div class="muted">${endpoint.kinds.map((kind) => t(`developer.kind_${kind}`)).join(" · ")}</div></div>
            <div class="endpoint-actions">
              <${Badge} kind=${endpoint.status === "active" ? "success" : "danger"}>${t(`developer.endpoint_${endpoint.status}`)}<//>
              <button type="button" class="button button-small" aria-expanded=${open === endpoint.id ? "true" : "false"}
                onClick=${() => setOpen(open === endpoint.id ? null : endpoint.id)}>${t("developer.deliveries")}</button>
              <button type="button" class="button button-small" onClick=${() => setDeleting(endpoint)}
                aria-label=${t("developer.delete_named", { url: endpoint.url })}>${t("developer.delete")}</button>
            </div>
          </div>
          ${open === endpoint.id && html`<${Deliveries} endpoint=${endpoint} />`}
        </li>`)}</ul>`}
    ${creating && html`<${CreateWebhook} onClose=${() => setCreating(false)}
      onCreated=${(endpoint) => { setCreating(false); setSecret(endpoint.secret); list.reload(); }} />`}
    ${secret && html`<${SecretOnce} label=${t("developer.webhook_created")} secret=${secret} onDone=${() => setSecret(null)} />`}
    ${deleting && html`<${ConfirmDialog} title=${t("developer.delete_title")} warning=${t("developer.delete_warning", { url: deleting.url })}
      action=${t("developer.delete")} onConfirm=${async () => { await api(`/webhooks/${deleting.id}`, { method: "DELETE" });
        setDeleting(null); list.reload(); }} onClose=${() => setDeleting(null)} />`}
  </div>`;
}

export function Developer() {
  const { query } = useRoute();
  const tab = query.get("tab") === "webhooks" ? "webhooks" : "tokens";
  return html`<section>
    <${PageHeader} title=${t("developer.title")} />
    <${Tabs} label=${t("developer.title")} value=${tab} onChange=${(value) => setQuery({ tab: value === "tokens" ? null : value })}
      tabs=${[["tokens", t("developer.tokens")], ["webhooks", t("developer.webhooks")]]} />
    ${tab === "tokens" ? html`<${Tokens} />` : html`<${Webhooks} />`}
  </section>`;
}
