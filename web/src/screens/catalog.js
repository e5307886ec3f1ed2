/** Ordering servers: instant servers (R-INST, four categories) and stock servers
 * (R-STOCK, seven groups, delivered within one business day). An order answers at once;
 * its progress is listed under the offers until the server is in the list. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, newIdempotencyKey } from "../api.js";
import { Badge, Empty, ErrorBanner, Field, Link, Loading, Modal, Notice, PageHeader, Tabs, describedBy, formLevelError, useAction, useResource } from "../components/ui.js";
import { dateTime, money } from "../format.js";
import { setQuery, useRoute } from "../router.js";
import { t } from "../strings.js";

export const CATEGORIES = {
  instant: ["all", "gpu", "vps", "dedicated"],
  stock: ["all", "1cpu", "2cpu", "amd-ryzen", "amd-legacy", "intel", "gpu"],
};
const ACTIVE = ["placed", "paid", "failing", "cancelling"];
const ORDER_KIND = { placed: "info", paid: "info", failing: "warning", cancelling: "warning", completed: "success", failed: "danger", cancelled: "neutral" };

function OfferCard({ offer, onOrder }) {
  const soldOut = offer.available <= 0;
  return html`<article class="card offer" aria-labelledby=${`offer-${offer.id}`}>
    <header class="offer-header">
      <h2 id=${`offer-${offer.id}`}>${offer.name}</h2>
      <${Badge} kind="neutral">${offer.location}<//>
    </header>
    <ul class="offer-specs">
      <li>${offer.cpu}</li>
      <li>${t("offer.ram", { gb: offer.ram_gb })}</li>
      <li>${offer.disk}</li>
      ${offer.gpu && html`<li>${offer.gpu}</li>`}
    </ul>
    ${offer.deploy_eta && html`<p class="muted">${t("offer.eta", { eta: dateTime(offer.deploy_eta) })}</p>`}
    <footer class="offer-footer">
      <p class="price"><strong>${money(offer.price_month, offer.currency)}</strong> <span class="muted">${t("offer.per_month")}</span></p>
      <p class=${soldOut ? "stock-out" : "stock-in"}>${soldOut ? t("offer.sold_out") : t("offer.available", { count: offer.available })}</p>
      <button type="button" class="button button-primary" disabled=${soldOut} onClick=${() => onOrder(offer)}
        aria-label=${`${t("offer.order")} ${offer.name} (${offer.location})`}>${t("offer.order")}</button>
    </footer>
  </article>`;
}

function OrderDialog({ offer, onClose, onPlaced }) {
  const images = useResource(() => api("/os-images", { query: { per_page: 100 } }), [], { live: false });
  const [os, setOs] = useState("");
  const [tag, setTag] = useState("");
  const [key] = useState(newIdempotencyKey);
  useEffect(() => {
    if (!os && images.data?.items?.length) setOs(images.data.items[0].id);
  }, [images.data]);
  const { busy, error, run: submit } = useAction(async () => {
    const body = { offer_id: offer.id, location: offer.location, os, ...(tag.trim() ? { tag: tag.trim() } : {}) };
    const answer = await api("/orders", { method: "POST", body, idempotencyKey: key });
    onPlaced(answer.order);
  });
  const noFunds = error?.code === "insufficient_funds";
  return html`<${Modal} title=${t("order.title", { name: offer.name })} onClose=${onClose}>
    <form class="stack" onSubmit=${submit}>
      <${Field} label=${t("order.location")} name="location" error=${error}>
        <select ...${describedBy("location", error)} value=${offer.location} disabled><option value=${offer.location}>${offer.location}</option></select>
      <//>
      <${Field} label=${t("order.os")} name="os" error=${error}>
        ${images.data ? html`<select ...${describedBy("os", error)} value=${os} onChange=${(e) => setOs(e.currentTarget.value)}>
          ${images.data.items.map((image) => html`<option value=${image.id}>${image.name}</option>`)}
        </select>` : html`<${Loading} />`}
      <//>
      <${Field} label=${t("order.tag")} name="tag" error=${error}>
        <input ...${describedBy("tag", error)} maxlength="64" value=${tag} onInput=${(e) => setTag(e.currentTarget.value)} />
      <//>
      <${ErrorBanner} error=${formLevelError(error, ["location", "os", "tag"])} />
      ${noFunds && html`<p><${Link} href="/billing">${t("order.top_up")}<//></p>`}
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !os}>${t("order.submit", { price: money(offer.price_month, offer.currency) })}</button>
      </div>
    </form>
  <//>`;
}

function OrderProgress({ kind, placed }) {
  const orders = useResource(() => api("/orders", { query: { per_page: 20 } }), [placed]);
  const mine = (orders.data?.items || []).filter((order) => order.kind === kind && (ACTIVE.includes(order.status) || placed.includes(order.id)));
  if (!mine.length) return null;
  return html`<section class="card" aria-labelledby="orders-title">
    <h2 id="orders-title">${t("order.progress")}</h2>
    <ul class="orders">
      ${mine.map((order) => html`<li key=${order.id} class="order">
        <span class="order-name">${order.name} · ${order.location} · ${order.os}${order.tag ? ` · ${order.tag}` : ""}</span>
        <${Badge} kind=${ORDER_KIND[order.status] || "neutral"}>${t(`orderstatus.${order.status}`)}<//>
        ${ACTIVE.includes(order.status) && html`<span class="spinner" aria-hidden="true"></span>`}
        ${order.deploy_eta && ACTIVE.includes(order.status) && html`<span class="muted">${t("offer.eta", { eta: dateTime(order.deploy_eta) })}</span>`}
        ${order.status === "completed" && order.server_id && html`<${Link} href=${`/servers/${order.server_id}`}>${t("order.open_server")}<//>`}
        ${order.reason && html`<span class="muted">${order.reason}</span>`}
      </li>`)}
    </ul>
  </section>`;
}

export function Catalog({ kind }) {
  const { query } = useRoute();
  const category = CATEGORIES[kind].includes(query.get("category")) ? query.get("category") : "all";
  const offers = useResource(() => api(`/catalog/${kind}`, { query: { category, per_page: 200 } }), [kind, category]);
  const [ordering, setOrdering] = useState(null);
  const [placed, setPlaced] = useState([]);
  return html`<section>
    <${PageHeader} title=${t(`${kind}.title`)} />
    <p class="muted">${t(`${kind}.intro`)}</p>
    <${Tabs} label=${t(`${kind}.title`)} value=${category} onChange=${(value) => setQuery({ category: value === "all" ? null : value })}
      tabs=${CATEGORIES[kind].map((value) => [value, t(`cat.${value}`)])} />
    ${placed.length > 0 && html`<${Notice} kind="success">${t("order.placed")}<//>`}
    <${OrderProgress} kind=${kind} placed=${placed} />
    <${ErrorBanner} error=${offers.error} onRetry=${offers.reload} />
    ${offers.data === null ? (offers.loading ? html`<${Loading} />` : null) : offers.data.items.length === 0
      ? html`<${Empty}>${t("offer.empty")}<//>`
      : html`<div class="offer-grid" role="tabpanel">${offers.data.items.map((offer) => html`<${OfferCard} key=${offer.id + offer.location} offer=${offer} onOrder=${setOrdering} />`)}</div>`}
    ${ordering && html`<${OrderDialog} offer=${ordering} onClose=${() => setOrdering(null)}
      onPlaced=${(order) => { setPlaced((ids) => [...ids, order.id]); setOrdering(null); }} />`}
  </section>`;
}
