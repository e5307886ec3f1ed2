/** Billing (R-BILL): Account Information (balance, overdue state, what is due), invoices,
 * transactions, and Top up: amount (at least 20) and the six payment methods with what
 * each accepts; then the provider's payment page or the bank wire instructions, and the
 * new balance as soon as the payment lands (pushed over the live stream). */
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, newIdempotencyKey } from "../api.js";
import { Badge, CopyButton, Empty, ErrorBanner, Field, Loading, Modal, Notice, PageHeader, Pager, describedBy, formLevelError, useAction, useResource } from "../components/ui.js";
import { dateTime, money } from "../format.js";
import { store, useStore } from "../store.js";
import { t } from "../strings.js";

export const MIN_TOPUP = 20;
const INVOICE_KIND = { open: "info", overdue: "danger", paid: "success" };

/** The amount field's own check, before asking the API (which checks the same). */
export function amountProblem(text) {
  const value = Number(String(text).replace(",", "."));
  if (String(text).trim() === "" || !Number.isFinite(value) || value < MIN_TOPUP) return t("topup.amount_min");
  return null;
}

function TopupResult({ topup, methods }) {
  const state = useResource(() => api(`/billing/topups/${topup.id}`), [topup.id]);
  const current = state.data || topup;
  const method = methods.find((item) => item.id === topup.method);
  if (current.status === "succeeded") return html`<${Notice} kind="success">${t("topup.succeeded")}<//>`;
  if (current.status === "failed") return html`<${Notice} kind="error">${t("topup.failed")}<//>`;
  const wire = topup.instructions;
  return html`<div class="stack">
    ${topup.redirect_url && html`<p>${t("topup.redirect", { method: method?.name || topup.method })}</p>
      <p><a class="button button-primary" href=${topup.redirect_url} target="_blank" rel="noopener">${t("topup.pay_now")}</a></p>`}
    ${wire && html`<p>${t("topup.wire")}</p>
      <dl class="facts facts-wide">
        ${[["iban", "topup.wire_iban"], ["bic", "topup.wire_bic"], ["beneficiary", "topup.wire_beneficiary"]].map(([key, label]) => wire[key] && html`<div><dt>${t(label)}</dt><dd><code>${wire[key]}</code></dd></div>`)}
        <div><dt>${t("topup.wire_amount")}</dt><dd>${money(wire.amount || topup.amount, wire.currency || topup.currency)}</dd></div>
        <div><dt>${t("topup.wire_reference")}</dt><dd><code class="strong" id="wire-reference">${wire.reference}</code> <${CopyButton} text=${wire.reference} /></dd></div>
      </dl>`}
    <p class="muted" role="status"><span class="spinner" aria-hidden="true"></span> ${t("topup.waiting")}</p>
  </div>`;
}

function TopupDialog({ currency, onClose }) {
  const methods = useResource(() => api("/billing/payment-methods"), [], { live: false });
  const [amount, setAmount] = useState("50");
  const [method, setMethod] = useState("");
  const [touched, setTouched] = useState(false);
  const [topup, setTopup] = useState(null);
  const [key] = useState(newIdempotencyKey);
  const items = methods.data?.items || [];
  const chosen = method || items[0]?.id || "";
  const pay = useAction(async () => {
    const value = Number(String(amount).replace(",", ".")).toFixed(2);
    setTopup(await api("/billing/topups", { method: "POST", body: { amount: value, method: chosen }, idempotencyKey: `${key}-${value}-${chosen}` }));
  });
  const { busy, error, setError } = pay;
  const amountError = (touched && amountProblem(amount)) || error;

  function submit(event) {
    setTouched(true);
    if (amountProblem(amount)) event.preventDefault();
    else pay.run(event);
  }

  return html`<${Modal} title=${t("topup.title")} onClose=${onClose} wide>
    ${topup ? html`<${TopupResult} topup=${topup} methods=${items} />` : html`
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("topup.amount", { currency })} name="amount" error=${amountError} hint=${t("topup.amount_hint")}>
        <input ...${describedBy("amount", amountError, true)} inputmode="decimal" required value=${amount}
          onInput=${(e) => { setAmount(e.currentTarget.value); setError(null); }} onBlur=${() => setTouched(true)} />
      <//>
      <fieldset class="methods">
        <legend>${t("topup.method")}</legend>
        ${methods.error && html`<${ErrorBanner} error=${methods.error} onRetry=${methods.reload} />`}
        ${!methods.data && !methods.error && html`<${Loading} />`}
        ${items.map((item) => html`<label class=${`method${chosen === item.id ? " method-chosen" : ""}`}>
          <input type="radio" name="method" value=${item.id} checked=${chosen === item.id} onChange=${() => setMethod(item.id)} />
          <span class="method-name">${item.name}</span>
          <span class="method-accepts">${t("topup.accepts", { list: item.accepts.join(", ") })}</span>
        </label>`)}
      </fieldset>
      <${ErrorBanner} error=${formLevelError(error, ["amount"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !chosen}>${t("topup.submit")}</button>
      </div>
    </form>`}
  <//>`;
}

export function Billing() {
  // The header's balance (store.account) is refreshed on every live notification (main.js);
  // this screen loads it once for its own error and loading states, then follows the store.
  const account = useResource(() => api("/billing/account").then((data) => { store.set({ account: data }); return data; }), [], { live: false });
  const liveAccount = useStore((s) => s.account);
  const [invoicePage, setInvoicePage] = useState(1);
  const [transactionPage, setTransactionPage] = useState(1);
  const invoices = useResource(() => api("/billing/invoices", { query: { page: invoicePage, per_page: 10 } }), [invoicePage]);
  const transactions = useResource(() => api("/billing/transactions", { query: { page: transactionPage, per_page: 10 } }), [transactionPage]);
  const [toppingUp, setToppingUp] = useState(false);
  const a = liveAccount || account.data;
  return html`<section>
    <${PageHeader} title=${t("billing.title")}>
      <button type="button" class="button button-primary" onClick=${() => setToppingUp(true)} disabled=${!a}>${t("billing.top_up")}</button>
    <//>
    <${ErrorBanner} error=${account.error} onRetry=${account.reload} />
    <article class="card" aria-labelledby="account-title">
      <h2 id="account-title">${t("billing.account")}</h2>
      ${!a ? html`<${Loading} />` : html`<dl class="facts facts-row">
        <div><dt>${t("billing.balance")}</dt><dd class="big" id="balance">${money(a.balance, a.currency)}</dd></div>
        <div><dt>${t("billing.state")}</dt><dd>${a.overdue ? html`<${Badge} kind="danger">${t("billing.overdue")}<//>` : html`<${Badge} kind="success">${t("billing.in_good_standing")}<//>`}</dd></div>
        ${a.unpaid_invoices !== undefined && html`<div><dt>${t("billing.unpaid")}</dt><dd>${a.unpaid_invoices}</dd></div>`}
        ${a.amount_due !== undefined && html`<div><dt>${t("billing.amount_due")}</dt><dd>${money(a.amount_due, a.currency)}</dd></div>`}
      </dl>`}
    </article>
    <article class="card" aria-labelledby="invoices-title">
      <h2 id="invoices-title">${t("billing.invoices")}</h2>
      <${ErrorBanner} error=${invoices.error} onRetry=${invoices.reload} />
      ${!invoices.data ? html`<${Loading} />` : invoices.data.items.length === 0 ? html`<${Empty}>${t("billing.no_invoices")}<//>` : html`
        <table class="table table-cards">
          <thead><tr><th scope="col">${t("billing.invoice")}</th><th scope="col">${t("billing.server")}</th><th scope="col">${t("billing.period")}</th>
            <th scope="col">${t("billing.amount")}</th><th scope="col">${t("billing.status")}</th></tr></thead>
          <tbody>${invoices.data.items.map((invoice) => html`<tr key=${invoice.id}>
            <td data-label=${t("billing.invoice")} class="mono">${invoice.number}</td>
            <td data-label=${t("billing.server")}>${invoice.server_number || "—"}</td>
            <td data-label=${t("billing.period")}>${dateTime(invoice.period_start)} – ${dateTime(invoice.period_end)}</td>
            <td data-label=${t("billing.amount")}>${money(invoice.amount, invoice.currency)}</td>
            <td data-label=${t("billing.status")}><${Badge} kind=${INVOICE_KIND[invoice.status]}>${t(`invoice.${invoice.status}`)}<//></td>
          </tr>`)}</tbody>
        </table>
        <${Pager} page=${invoicePage} perPage=${10} total=${invoices.data.total} onPage=${setInvoicePage} />`}
    </article>
    <article class="card" aria-labelledby="transactions-title">
      <h2 id="transactions-title">${t("billing.transactions")}</h2>
      <${ErrorBanner} error=${transactions.error} onRetry=${transactions.reload} />
      ${!transactions.data ? html`<${Loading} />` : transactions.data.items.length === 0 ? html`<${Empty}>${t("billing.no_transactions")}<//>` : html`
        <table class="table table-cards">
          <thead><tr><th scope="col">${t("billing.date")}</th><th scope="col">${t("billing.reason")}</th><th scope="col">${t("billing.amount")}</th>
            <th scope="col">${t("billing.balance_after")}</th></tr></thead>
          <tbody>${transactions.data.items.map((item) => html`<tr key=${item.id}>
            <td data-label=${t("billing.date")}>${dateTime(item.at)}</td>
            <td data-label=${t("billing.reason")}>${item.reason}${item.reference && html` <span class="muted mono">${item.reference}</span>`}</td>
            <td data-label=${t("billing.amount")} class=${item.direction === "credit" ? "credit" : "debit"}>${item.direction === "credit" ? "+" : "−"}${money(item.amount, item.currency)}</td>
            <td data-label=${t("billing.balance_after")}>${money(item.balance_after, item.currency)}</td>
          </tr>`)}</tbody>
        </table>
        <${Pager} page=${transactionPage} perPage=${10} total=${transactions.data.total} onPage=${setTransactionPage} />`}
    </article>
    ${toppingUp && html`<${TopupDialog} currency=${a?.currency || "EUR"} onClose=${() => setToppingUp(false)} />`}
  </section>`;
}
