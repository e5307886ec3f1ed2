/** Support (R-SUP): tickets filtered by status, New request with attachments (the size
 * and type rules shown before upload and checked before sending), the thread with
 * replies and downloads, close and reopen. Status changes made by staff appear without a
 * reload: every live notification reloads what the screen shows. */
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, apiUrl, newIdempotencyKey } from "../api.js";
import { Badge, Empty, ErrorBanner, Field, Link, Loading, Modal, PageHeader, Pager, describedBy, formLevelError, toast, useAction, useResource } from "../components/ui.js";
import { binaryBytes, dateTime } from "../format.js";
import { navigate, setQuery, useRoute } from "../router.js";
import { t } from "../strings.js";

const TICKET_KIND = { open: "info", answered: "success", closed: "neutral", reopened: "warning" };
const PER_PAGE = 20;

export function TicketStatus({ status }) {
  return html`<${Badge} kind=${TICKET_KIND[status] || "neutral"}>${t(`ticket.${status}`)}<//>`;
}

/** What is wrong with `files` under `rules` (GET /support/attachment-rules), or null. */
export function attachmentProblem(files, rules) {
  if (!rules) return null;
  if (files.length > rules.max_files) return t("support.too_many", { files: rules.max_files });
  for (const file of files) {
    if (file.size > rules.max_file_bytes) return t("support.file_too_big", { name: file.name, size: binaryBytes(rules.max_file_bytes) });
    if (file.type && !(file.type in rules.types)) return t("support.file_type", { name: file.name });
  }
  const total = files.reduce((sum, file) => sum + file.size, 0);
  if (total > rules.max_message_bytes) return t("support.file_too_big", { name: t("support.attachments"), size: binaryBytes(rules.max_message_bytes) });
  return null;
}

/** The multipart body of a request or a reply: its text fields and its files. */
function messageForm(fields, files) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.set(name, value.trim());
  for (const file of files) form.append("attachments", file);
  return form;
}

/** Submit only when the attachments follow the rules (their problem is shown at the field). */
function submitChecked(files, rules, action) {
  return (event) => (attachmentProblem(files, rules.data) ? event.preventDefault() : action.run(event));
}

function useRules() {
  return useResource(() => api("/support/attachment-rules"), [], { live: false });
}

function Attachments({ rules, files, onFiles, error, id = "attachments" }) {
  const r = rules.data;
  const problem = attachmentProblem(files, r);
  const hint = r && t("support.rules", {
    files: r.max_files, size: binaryBytes(r.max_file_bytes), total: binaryBytes(r.max_message_bytes), types: Object.values(r.types).join(", "),
  });
  const message = problem || error;
  return html`<${Field} label=${t("support.attachments")} name="attachments" id=${id} error=${message} hint=${hint}>
    <input ...${describedBy("attachments", message, Boolean(hint), id)} type="file" multiple accept=${r ? Object.keys(r.types).join(",") : undefined}
      onChange=${(e) => onFiles([...e.currentTarget.files])} />
  <//>`;
}

function NewRequest({ onClose, onCreated }) {
  const rules = useRules();
  const [subject, setSubject] = useState("");
  const [description, setDescription] = useState("");
  const [files, setFiles] = useState([]);
  const [key] = useState(newIdempotencyKey);
  const send = useAction(async () => {
    const form = messageForm({ subject, description }, files);
    onCreated(await api("/support/tickets", { method: "POST", form, idempotencyKey: key }));
  });
  const { busy, error } = send;
  const submit = submitChecked(files, rules, send);
  return html`<${Modal} title=${t("support.new")} onClose=${onClose} wide>
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("support.subject")} name="subject" error=${error}>
        <input ...${describedBy("subject", error)} required maxlength="200" value=${subject} onInput=${(e) => setSubject(e.currentTarget.value)} />
      <//>
      <${Field} label=${t("support.description")} name="description" error=${error}>
        <textarea ...${describedBy("description", error)} required rows="6" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)}></textarea>
      <//>
      <${Attachments} rules=${rules} files=${files} onFiles=${setFiles} error=${error} />
      <${ErrorBanner} error=${formLevelError(error, ["subject", "description", "attachments"])} />
      <div class="actions">
        <button type="button" class="button" onClick=${onClose}>${t("app.cancel")}</button>
        <button type="submit" class="button button-primary" disabled=${busy || !subject.trim() || !description.trim()}>${t("support.submit")}</button>
      </div>
    </form>
  <//>`;
}

export function Support() {
  const { query } = useRoute();
  const status = ["open", "closed", "all"].includes(query.get("status")) ? query.get("status") : "open";
  const page = Number(query.get("page") || 1);
  const tickets = useResource(() => api("/support/tickets", { query: { status, page, per_page: PER_PAGE } }), [status, page]);
  const [creating, setCreating] = useState(false);
  return html`<section>
    <${PageHeader} title=${t("support.title")}>
      <button type="button" class="button" onClick=${tickets.reload}>${t("app.refresh")}</button>
      <button type="button" class="button button-primary" onClick=${() => setCreating(true)}>${t("support.new")}</button>
    <//>
    <fieldset class="segmented-field">
      <legend>${t("support.show")}</legend>
      <div class="segmented">
        ${["open", "closed", "all"].map((value) => html`<label class=${status === value ? "chosen" : ""}>
          <input type="radio" name="ticket-status" value=${value} checked=${status === value}
            onChange=${() => setQuery({ status: value === "open" ? null : value, page: null })} />${t(`support.${value}`)}</label>`)}
      </div>
    </fieldset>
    <${ErrorBanner} error=${tickets.error} onRetry=${tickets.reload} />
    ${tickets.data === null ? (tickets.loading ? html`<${Loading} />` : null) : tickets.data.items.length === 0 ? html`<${Empty}>${t("support.empty")}<//>` : html`
      <ul class="ticket-list">${tickets.data.items.map((ticket) => html`<li key=${ticket.id} class="ticket-row">
        <${Link} href=${`/support/${ticket.id}`} class="ticket-link">
          <span class="ticket-subject">${ticket.subject}</span>
          <span class="muted">${t("support.updated")} ${dateTime(ticket.updated_at)}${ticket.messages ? ` · ${t("support.messages", { count: ticket.messages })}` : ""}</span>
        <//>
        <${TicketStatus} status=${ticket.status} />
      </li>`)}</ul>
      <${Pager} page=${page} perPage=${PER_PAGE} total=${tickets.data.total} onPage=${(next) => setQuery({ page: next })} />`}
    ${creating && html`<${NewRequest} onClose=${() => setCreating(false)}
      onCreated=${(ticket) => { setCreating(false); toast("success", t("support.sent")); navigate(`/support/${ticket.id}`); }} />`}
  </section>`;
}

function Reply({ ticketId, onSent }) {
  const rules = useRules();
  const [body, setBody] = useState("");
  const [files, setFiles] = useState([]);
  const [formKey, setFormKey] = useState(0);
  const send = useAction(async () => {
    await api(`/support/tickets/${ticketId}/messages`, { method: "POST", form: messageForm({ body }, files), idempotencyKey: true });
    setBody("");
    setFiles([]);
    setFormKey((n) => n + 1); // a fresh file input
    onSent();
  });
  const { busy, error } = send;
  const submit = submitChecked(files, rules, send);
  return html`<form class="card stack" onSubmit=${submit} novalidate key=${formKey}>
    <${Field} label=${t("support.reply")} name="body" id="reply-body" error=${error}>
      <textarea ...${describedBy("body", error, false, "reply-body")} rows="4" required value=${body} onInput=${(e) => setBody(e.currentTarget.value)}></textarea>
    <//>
    <${Attachments} rules=${rules} files=${files} onFiles=${setFiles} error=${error} id="reply-attachments" />
    <${ErrorBanner} error=${formLevelError(error, ["body", "attachments"])} />
    <div class="actions"><button type="submit" class="button button-primary" disabled=${busy || !body.trim()}>${t("support.send_reply")}</button></div>
  </form>`;
}

export function TicketDetail({ id }) {
  const ticket = useResource(() => api(`/support/tickets/${id}`), [id]);
  const { error, run } = useAction(async (change) => {
    await api(`/support/tickets/${id}/${change}`, { method: "POST" });
    ticket.reload();
  });
  const change = (action) => run(null, action); // "close" | "reopen"
  if (!ticket.data) {
    return html`<section><${PageHeader} title=${t("support.title")} back="/support" />
      ${ticket.error ? html`<${ErrorBanner} error=${ticket.error} onRetry=${ticket.reload} />` : html`<${Loading} />`}</section>`;
  }
  const d = ticket.data;
  return html`<section>
    <${PageHeader} title=${d.subject} back="/support">
      <span aria-live="polite" id="ticket-status"><${TicketStatus} status=${d.status} /></span>
      <button type="button" class="button" onClick=${ticket.reload}>${t("app.refresh")}</button>
      ${d.status === "closed"
        ? html`<button type="button" class="button" onClick=${() => change("reopen")}>${t("support.reopen")}</button>`
        : html`<button type="button" class="button" onClick=${() => change("close")}>${t("support.close")}</button>`}
    <//>
    <${ErrorBanner} error=${error || ticket.error} />
    <ol class="thread">
      ${d.messages.map((message) => html`<li key=${message.id} class=${`message message-${message.author}`}>
        <header class="message-header">
          <strong>${message.author === "staff" ? message.staff_name || t("support.staff") : t("support.you")}</strong>
          <time datetime=${message.created_at}>${dateTime(message.created_at)}</time>
        </header>
        <p class="message-body">${message.body}</p>
        ${message.attachments.length > 0 && html`<ul class="attachments">${message.attachments.map((file) => html`<li>
          <a href=${apiUrl(`/support/tickets/${id}/attachments/${file.id}`)} download=${file.filename}>${file.filename}</a>
          <span class="muted"> ${binaryBytes(file.size)}</span></li>`)}</ul>`}
      </li>`)}
    </ol>
    <${Reply} ticketId=${id} onSent=${ticket.reload} />
  </section>`;
}
