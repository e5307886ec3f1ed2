/** Any address the panel does not know. */
import { html } from "htm/preact";
import { Link, PageHeader } from "../components/ui.js";
import { t } from "../strings.js";

export function NotFound() {
  return html`<section><${PageHeader} title=${t("app.not_found")} /><p><${Link} href="/servers">${t("nav.servers")}<//></p></section>`;
}
