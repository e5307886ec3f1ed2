/** Logging in (R-AUTH-1..4): password, then the second factor with its 5-minute
 * countdown, another SMS provider, a voice call in a chosen language, or a recovery
 * code; password recovery (R-AUTH-5) and the reset page the e-mailed link opens. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { ErrorBanner, Field, Link, Notice, describedBy, formLevelError, useAction } from "../components/ui.js";
import { countdown, wait } from "../format.js";
import { navigate, useRoute } from "../router.js";
import { useStore } from "../store.js";
import { t } from "../strings.js";

/** Seconds left until `deadline` (ms), ticking every second. */
function useSecondsLeft(deadline) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!deadline) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [deadline]);
  return deadline ? Math.max(0, Math.ceil((deadline - now) / 1000)) : 0;
}

/** While the Retry-After of a 429 in `error` runs: the seconds left, to disable the form and say so. */
function useThrottle(error) {
  const [until, setUntil] = useState(null);
  const left = useSecondsLeft(until);
  useEffect(() => {
    if (error instanceof ApiError && error.status === 429 && error.retryAfter) setUntil(Date.now() + error.retryAfter * 1000);
  }, [error]);
  return until ? left : 0;
}

function AuthCard({ title, children }) {
  return html`<main class="auth-page" id="main">
    <section class="auth-card">
      <p class="auth-brand"><span class="brand-mark" aria-hidden="true">◆</span> ${t("app.name")}</p>
      <h1 tabindex="-1" id="page-title">${title}</h1>
      ${children}
    </section>
  </main>`;
}

function ThrottleNotice({ left }) {
  if (!left) return null;
  return html`<${Notice} kind="warning">${t("app.retry_after", { wait: wait(left) })}<//>`;
}

export function Login({ onLoggedIn }) {
  const { query } = useRoute();
  const flash = useStore((s) => s.flash);
  const [mode, setMode] = useState("password"); // password | code | forgot
  const [challenge, setChallenge] = useState(null);

  async function done(answer) {
    await onLoggedIn(answer.user);
    const next = query.get("next");
    navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/servers", { replace: true });
  }

  if (mode === "forgot") return html`<${Forgot} onBack=${() => setMode("password")} />`;
  if (mode === "code" && challenge) {
    return html`<${SecondFactor} challenge=${challenge} onDone=${done} onRestart=${() => { setChallenge(null); setMode("password"); }} />`;
  }
  return html`<${PasswordStep} flash=${flash} onForgot=${() => setMode("forgot")} onDone=${done}
      onChallenge=${(answer) => { setChallenge({ ...answer, deadline: Date.now() + answer.expires_in * 1000 }); setMode("code"); }} />`;
}

function PasswordStep({ flash, onDone, onChallenge, onForgot }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, run: submit } = useAction(async () => {
    const answer = await api("/auth/login", { method: "POST", body: { username, password } });
    if (answer.status === "2fa_required") onChallenge(answer);
    else await onDone(answer);
  });
  const wait = useThrottle(error);

  const shown = formLevelError(error, ["username", "password"]);
  return html`<${AuthCard} title=${t("login.title")}>
    ${flash && html`<${Notice} kind="info">${flash}<//>`}
    <form class="stack" onSubmit=${submit} novalidate>
      <${Field} label=${t("login.username")} name="username" error=${error}>
        <input ...${describedBy("username", error)} autocomplete="username" required value=${username}
          onInput=${(e) => setUsername(e.currentTarget.value)} />
      <//>
      <${Field} label=${t("login.password")} name="password" error=${error}>
        <input ...${describedBy("password", error)} type="password" autocomplete="current-password" required value=${password}
          onInput=${(e) => setPassword(e.currentTarget.value)} />
      <//>
      ${wait ? html`<${ThrottleNotice} left=${wait} />` : html`<${ErrorBanner} error=${shown} />`}
      <button type="submit" class="button button-primary button-block" disabled=${busy || wait > 0}>
        ${busy ? t("login.submitting") : t("login.submit")}
      </button>
    </form>
    <p class="auth-footer"><button type="button" class="link-button" onClick=${onForgot}>${t("login.forgot")}</button></p>
  <//>`;
}

function SecondFactor({ challenge, onDone, onRestart }) {
  const left = useSecondsLeft(challenge.deadline);
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(null);
  const [languages, setLanguages] = useState([{ code: "en", name: "English" }]);
  const [language, setLanguage] = useState("en");
  const expired = left === 0;
  const { busy, error, setError, run: submitCode } = useAction(async () => {
    const body = { challenge_id: challenge.challenge_id, [useRecovery ? "recovery_code" : "code"]: code.trim() };
    await onDone(await api("/auth/2fa/verify", { method: "POST", body }));
  });
  const wait = useThrottle(error);

  useEffect(() => {
    api("/auth/2fa/languages").then((page) => page.items?.length && setLanguages(page.items), () => {});
  }, []);

  function verify(event) {
    if (expired) event.preventDefault();
    else submitCode(event);
  }

  async function resend(channel) {
    setError(null);
    setSent(null);
    try {
      const body = { challenge_id: challenge.challenge_id, channel, ...(channel === "voice" ? { language } : {}) };
      const answer = await api("/auth/2fa/resend", { method: "POST", body });
      const name = languages.find((item) => item.code === answer.language)?.name || answer.language;
      setSent(channel === "voice" ? t("login.resent_voice", { language: name }) : t("login.resent_sms", { provider: answer.provider }));
    } catch (failure) {
      setError(failure);
    }
  }

  const field = useRecovery ? "recovery_code" : "code";
  const wrong = error instanceof ApiError && error.code === "invalid_code";
  const errorShown = wrong ? null : formLevelError(error, ["code", "recovery_code"]);
  const codeError = wrong ? error.message || t("login.wrong_code") : error;
  return html`<${AuthCard} title=${t("login.2fa_title")}>
    <p>${t("login.2fa_sent")}</p>
    ${expired
      ? html`<${Notice} kind="warning">${t("login.expired")}<//>
          <button type="button" class="button button-primary button-block" onClick=${onRestart}>${t("login.start_over")}</button>`
      : html`<p class="countdown" aria-live="off">${t("login.expires_in", { time: "" })}<strong class="countdown-time" role="timer">${countdown(left)}</strong></p>
        <form class="stack" onSubmit=${verify} novalidate>
          <${Field} label=${useRecovery ? t("login.recovery_code") : t("login.code")} name=${field} error=${codeError}
              hint=${useRecovery ? null : t("login.code_hint")}>
            <input ...${describedBy(field, codeError, !useRecovery)} key=${field} required value=${code}
              autocomplete=${useRecovery ? "off" : "one-time-code"} inputmode=${useRecovery ? "text" : "numeric"}
              onInput=${(e) => setCode(e.currentTarget.value)} />
          <//>
          ${wait ? html`<${ThrottleNotice} left=${wait} />` : html`<${ErrorBanner} error=${errorShown} />`}
          <button type="submit" class="button button-primary button-block" disabled=${busy || !code.trim() || wait > 0}>
            ${busy ? t("login.verifying") : t("login.verify")}
          </button>
        </form>
        <button type="button" class="link-button" onClick=${() => { setUseRecovery(!useRecovery); setCode(""); setError(null); }}>
          ${useRecovery ? t("login.use_code") : t("login.use_recovery")}
        </button>
        ${sent && html`<${Notice} kind="success">${sent}<//>`}
        ${!useRecovery && html`<div class="fallbacks">
          ${challenge.channels.includes("sms_alt") && html`<button type="button" class="button button-block" onClick=${() => resend("sms_alt")}>${t("login.sms_alt")}</button>`}
          ${challenge.channels.includes("voice") && html`<div class="voice-row">
            <div class="field">
              <label for="voice-language">${t("login.language")}</label>
              <select id="voice-language" value=${language} onChange=${(e) => setLanguage(e.currentTarget.value)}>
                ${languages.map((item) => html`<option value=${item.code}>${item.name}</option>`)}
              </select>
            </div>
            <button type="button" class="button" onClick=${() => resend("voice")}>${t("login.voice")}</button>
          </div>`}
        </div>`}`}
  <//>`;
}

function Forgot({ onBack }) {
  const [username, setUsername] = useState("");
  const [sent, setSent] = useState(false);
  const { busy, error, run: submit } = useAction(async () => {
    await api("/auth/password/forgot", { method: "POST", body: { username } });
    setSent(true);
  });
  return html`<${AuthCard} title=${t("forgot.title")}>
    ${sent ? html`<${Notice} kind="success">${t("forgot.sent")}<//>` : html`
      <p>${t("forgot.intro")}</p>
      <form class="stack" onSubmit=${submit} novalidate>
        <${Field} label=${t("login.username")} name="username" error=${error}>
          <input ...${describedBy("username", error)} autocomplete="username" required value=${username}
            onInput=${(e) => setUsername(e.currentTarget.value)} />
        <//>
        <${ErrorBanner} error=${formLevelError(error, ["username"])} />
        <button type="submit" class="button button-primary button-block" disabled=${busy || !username.trim()}>${t("forgot.submit")}</button>
      </form>`}
    <p class="auth-footer"><button type="button" class="link-button" onClick=${onBack}>${t("forgot.back")}</button></p>
  <//>`;
}

export function ResetPassword() {
  const { query } = useRoute();
  const token = query.get("token") || "";
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const { busy, error, run: submit } = useAction(async () => {
    await api("/auth/password/reset", { method: "POST", body: { token, new_password: password } });
    setDone(true);
  });
  return html`<${AuthCard} title=${t("reset.title")}>
    ${!token ? html`<${Notice} kind="warning">${t("reset.no_token")}<//>`
      : done ? html`<${Notice} kind="success">${t("reset.done")}<//>`
      : html`<form class="stack" onSubmit=${submit} novalidate>
          <${Field} label=${t("reset.new_password")} name="new_password" error=${error}>
            <input ...${describedBy("new_password", error)} type="password" autocomplete="new-password" required value=${password}
              onInput=${(e) => setPassword(e.currentTarget.value)} />
          <//>
          <${ErrorBanner} error=${formLevelError(error, ["new_password"])} />
          <button type="submit" class="button button-primary button-block" disabled=${busy || !password}>${t("reset.submit")}</button>
        </form>`}
    <p class="auth-footer"><${Link} href="/login">${t("forgot.back")}<//></p>
  <//>`;
}
