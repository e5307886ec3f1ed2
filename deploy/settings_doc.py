"""Every setting of every service, documented: generates ``deploy/config/README.md``.

    python -m deploy.settings_doc            (re)write deploy/config/README.md
    python -m deploy.settings_doc --check    exit 1 when it is stale or a setting is undescribed

A *setting* is a value in ``deploy/config/<component>.yaml`` written ``${VAR:default}``
(identified by its environment variable ``VAR``), or a top-level key with a literal value
(identified by the key; only the file sets it). Each needs a line in ``DESCRIPTIONS`` below;
``tests/unit/test_deployment_files.py`` fails when one is missing or the README is stale.
"""

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "config"
README = CONFIG_DIR / "README.md"
GENERATE_COMMAND = ".venv/bin/python -m deploy.settings_doc"
# nameko's ${VAR} / ${VAR:default} placeholders (nameko.cli.main.ENV_VAR_MATCHER).
PLACEHOLDER = re.compile(r"\$\{([^}^{]+)\}")
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "_KEY")
# Secret although the name does not say so (they carry a password).
SECRET_SETTINGS = {"AMQP_URI", "DATABASE_URL"}
NOT_SECRET_SETTINGS = {"PAYPAL_WEBHOOK_ID", "STORAGE_SECRETS_KEY_FILE", "WEBHOOK_SECRETS_KEY_FILE"}

# One line per setting: what it does and when to change it. Keep it short; the services'
# READMEs say more. Settings of every component come first, then by component.
DESCRIPTIONS = {
    # -- every component --------------------------------------------------------------------
    "AMQP_URI": "RabbitMQ connection (user, password, host, vhost).",
    "DATABASE_URL": "The component's own database (SQLAlchemy URL). `postgresql://…` in production; the SQLite default is for one machine.",
    "METRICS_PORT": "Port of the Prometheus `/metrics` endpoint; `off` disables it.",
    "METRICS_HOST": "Address the metrics endpoint listens on; `0.0.0.0` in containers so Prometheus can scrape it.",
    "MAX_WORKERS": "Concurrent workers (nameko `max_workers`), also the AMQP prefetch per consumer; in the gateway also the HTTP requests served at once (event handlers have their own).",
    "OUTBOX_POLL_SECONDS": "How often the outbox relay looks for events committed by other replicas or left by a failed publish.",
    "SERVICE_CONTAINER_CLS": "nameko's container class: `common.container.PanelServiceContainer`, nameko's own with a leaner worker lifecycle (the same steps, without per-call timing logs). Leave it.",
    "RPC_TIMEOUT_SECONDS": "Time limit of one RPC call to another service; past it the caller gets `unavailable` (HTTP 503).",
    "RPC_SLOW_TIMEOUT_SECONDS": "Time limit of the gateway's calls that wait on the outside world while the customer waits (creating a top-up, a payment webhook, creating a storage, rotating its keys): keep it above two calls of `PAYMENT_TIMEOUT_SECONDS`.",
    "LOG_LEVEL": "Root log level (JSON lines on stdout).",
    "CLOCK_ADJUSTABLE": "Lets `advance_clock` move this replica's business clock (tests and demos only); keep `false` in production.",
    "PANEL_DIST_DIR": "Folder of the built panel (index.html, assets/); empty: web/dist of the checkout.",
    "HSTS_SECONDS": "Strict-Transport-Security max-age on every answer; 0 turns the header off (plain-HTTP development only).",
    "CORS_ORIGINS": "Comma-separated origins allowed cross-origin API access (CORS, API tokens only, never the cookie); empty allows none.",
    "PANEL_ORIGINS": "Comma-separated origins (https://panel.example.com) the panel is served from when a proxy changes the host; cookie requests from other origins are refused.",
    "PANEL_URL": "Public base URL of the panel, used in links (password reset, payment return pages).",
    # -- gateway ----------------------------------------------------------------------------
    "GATEWAY_ADDRESS": "host:port the HTTP API listens on (`0.0.0.0:8000` in containers).",
    "SESSION_IDLE_SECONDS": "A session unused this long expires.",
    "SESSION_ABSOLUTE_SECONDS": "A session expires this long after login, used or not.",
    "SESSION_COOKIE_SECURE": "Mark the session cookie Secure (HTTPS only); turn off only for plain-HTTP development.",
    "TRUST_X_FORWARDED_FOR": "How many proxies in front of the gateway append to `X-Forwarded-For` (false: none, true: one, or a number): the client address is the entry the outermost one appended, counted from the right (entries further left are the client's own claims). Used by login throttling.",
    "ACCESS_LOG": "One JSON log line per HTTP request (logger `gateway.access`: method, path without the query string, status, duration, request id, client address). Off by default.",
    "LIVE_HEARTBEAT_SECONDS": "How often a live notification stream sends a heartbeat comment and checks that its session still lives; a stream whose session ended on another gateway, or expired, ends within this time (logging out on the same gateway ends it at once).",
    "READY_SERVICES": "Services `/readyz` asks for `health` (a YAML list; default every service).",
    # -- auth -------------------------------------------------------------------------------
    "AUTH_SECRET_KEY": "Required, at least 32 characters: key for code/token hashes and TOTP secrets. Rotating it invalidates pending codes and TOTP enrolments.",
    "ARGON2_TIME_COST": "argon2id iterations for password hashes (older hashes are upgraded at the next login).",
    "ARGON2_MEMORY_KIB": "argon2id memory per hash, KiB; mind the container memory limit × concurrent logins.",
    "ARGON2_PARALLELISM": "argon2id lanes.",
    "THROTTLE_BASE_DELAY_SECONDS": "First login back-off after repeated failures; doubles up to 15 minutes.",
    "SMS_PRIMARY_URL": "Base URL of the primary SMS provider (Twilio-like API).",
    "SMS_PRIMARY_ACCOUNT": "Account id at the primary SMS provider.",
    "SMS_PRIMARY_TOKEN": "Auth token of the primary SMS provider.",
    "SMS_SECONDARY_URL": "Base URL of the fail-over SMS provider (MessageBird-like API).",
    "SMS_SECONDARY_API_KEY": "Access key of the fail-over SMS provider.",
    "SMS_SENDER": "Sender name shown on the SMS.",
    "VOICE_URL": "Base URL of the voice-call provider (codes dictated by phone).",
    "VOICE_API_KEY": "API key of the voice-call provider.",
    "VOICE_CALLER_ID": "The number voice calls come from (E.164, e.g. +3100000000).",
    "DEV_CREDENTIALS": "Only for the dev stack and the tests: an outside-world credential left unset stands for the stand-in's published development value. Off (the default), a service missing one of its credentials refuses to start and names them — a public development webhook secret would let anyone sign a payment notice.",
    "SMTP_HOST": "Mail relay for password-recovery e-mails.",
    "SMTP_PORT": "Port of the mail relay.",
    "MAIL_FROM": "Sender address of e-mails.",
    "ADAPTER_TIMEOUT_SECONDS": "Time limit of one call to an SMS, voice or mail provider. A login that finds the primary SMS provider hanging tries the secondary after it, all inside the gateway's `RPC_TIMEOUT_SECONDS`: keep twice this value well under that.",
    # -- inventory --------------------------------------------------------------------------
    "BMC_USERNAME": "Redfish user on the servers' BMCs. Required (see `DEV_CREDENTIALS`): unset, every BMC call fails and the service says so at start.",
    "BMC_LIVE_READ_SECONDS": "A server page's live power read from the BMC gives up after this long and shows the last known state (keep it well under the gateway's `RPC_TIMEOUT_SECONDS`).",
    "BMC_PASSWORD": "Redfish password on the servers' BMCs.",
    "BMC_TIMEOUT_SECONDS": "Time limit of one Redfish request.",
    "BMC_POWER_WAIT_SECONDS": "How long a power action waits for the server to reach the new state before the operation fails.",
    "BMC_VERIFY_TLS": "Verify the BMCs' TLS certificates.",
    "OS_IMAGE_BASE_URL": "Where reinstall images are served from; must be reachable from the BMCs.",
    # -- orders -----------------------------------------------------------------------------
    "CATALOG_FILE": "The offers file (instant and stock servers; categories are derived from it).",
    "BMC_ENDPOINT": "Redfish endpoint where the catalog units' BMCs answer.",
    "HOLIDAYS": "Comma-separated ISO dates that are not business days for stock deliveries.",
    "STOCK_DELIVERY_SPEEDUP": "Demo only: stock orders are delivered this many times sooner than their date; 1 in production.",
    "ORDER_SCHEDULER_SECONDS": "How often the scheduler looks for due orders (deploy dates, retries, interrupted sagas).",
    "ORDER_MAX_ATTEMPTS": "Attempts of a saga step whose service is unreachable before the order is compensated and fails.",
    "ORDER_RETRY_BASE_SECONDS": "First retry delay of such a step (doubling, at most 300 s).",
    "PROVISION_TIMEOUT_SECONDS": "Time limit of inventory's provisioning call.",
    # -- storage ----------------------------------------------------------------------------
    "S3_ENDPOINTS": "S3-compatible clusters as `LOC=url` pairs (S3 and IAM APIs at each url).",
    "S3_PUBLIC_ENDPOINTS": "The endpoints given to customers, `LOC=url` pairs, when they differ from S3_ENDPOINTS.",
    "S3_REGION": "Signing region of the S3 clusters.",
    "S3_ADMIN_ACCESS_KEY": "Administrator access key of the S3 clusters; `S3_ADMIN_ACCESS_KEY_<LOC>` in the environment wins for that location. Required (see `DEV_CREDENTIALS`).",
    "S3_ADMIN_SECRET_KEY": "Administrator secret key of the S3 clusters; `S3_ADMIN_SECRET_KEY_<LOC>` in the environment wins for that location. Required (see `DEV_CREDENTIALS`).",
    "S3_TRAFFIC_SOURCE": "Where bandwidth usage is measured: `meter` (the stand-in's meter) or `none`.",
    "S3_TIMEOUT_SECONDS": "Time limit of one call to an S3 cluster.",
    "USAGE_SAMPLE_SECONDS": "How often storage and bandwidth usage are sampled for the charts.",
    "STORAGE_SECRETS_KEY": "Fernet key(s), comma-separated, sealing customers' S3 secret keys at rest (the first seals, all unseal).",
    "STORAGE_SECRETS_KEY_FILE": "Where a generated sealing key is kept when STORAGE_SECRETS_KEY is empty (one machine only).",
    "WEBHOOK_SECRETS_KEY": "Fernet key(s), comma-separated, sealing the webhook endpoints' signing secrets (the first seals, all unseal).",
    "WEBHOOK_SECRETS_KEY_FILE": "Where a generated sealing key is kept when WEBHOOK_SECRETS_KEY is empty (one machine only).",
    "WEBHOOK_POLL_SECONDS": "How often due webhook deliveries are looked for besides when one is queued (retries, other replicas).",
    "WEBHOOK_TIMEOUT_SECONDS": "How long one delivery attempt waits for the receiver's answer.",
    "WEBHOOK_RETRY_FIRST_SECONDS": "The wait before a failed delivery's first retry; it doubles after each failure.",
    "WEBHOOK_RETRY_MAX_SECONDS": "The longest wait between two attempts of a delivery.",
    "WEBHOOK_GIVE_UP_SECONDS": "After this long without success a delivery fails and its endpoint is marked failing.",
    "WEBHOOK_LEASE_SECONDS": "How long a claimed delivery is held by one notify replica before another may take it.",
    "WEBHOOK_ALLOW_PRIVATE": "Let webhooks go to loopback, private and link-local addresses (the dev stack and tests only).",
    "WEBHOOK_ALLOW_HTTP": "Let webhook endpoints use plain http:// (the dev stack and tests only).",
    # -- support ----------------------------------------------------------------------------
    "SUPPORT_BLOB_BACKEND": "Where attachments are kept: `filesystem` (one machine) or `s3` (several replicas).",
    "SUPPORT_BLOB_DIR": "Attachment directory of the filesystem backend (a persistent volume).",
    "SUPPORT_BLOB_TIMEOUT_SECONDS": "Time limit of one attachment store/read.",
    "SUPPORT_UPLOAD_TTL_SECONDS": "How long an uploaded attachment not yet attached to a ticket is kept.",
    "SUPPORT_S3_BUCKET": "Bucket of the s3 backend.",
    "SUPPORT_S3_ENDPOINT": "S3 endpoint URL of the s3 backend (empty: AWS).",
    "SUPPORT_S3_REGION": "Region of the s3 backend.",
    "SUPPORT_S3_PREFIX": "Key prefix for attachments in the bucket.",
    "SUPPORT_S3_ACCESS_KEY": "S3 access key of the s3 backend.",
    "SUPPORT_S3_SECRET_KEY": "S3 secret key of the s3 backend.",
    "SUPPORT_S3_CREATE_BUCKET": "Create the bucket at start when missing (development).",
    # -- billing ----------------------------------------------------------------------------
    "TOPUP_EXPIRY_HOURS": "A top-up still waiting for its payment this long after it was asked for fails, with its operation (\"No payment arrived…\"); a payment that arrives later is still credited.",
    "TOPUP_RECONCILE_AFTER_SECONDS": "A top-up still pending this long after it was asked for is looked up at its provider (its webhook may have been lost), then after 2×, 4×, … as long and once more before it expires; what the provider confirms is credited exactly once.",
    "TOPUP_MAX": "Largest single top-up (the minimum, 20, is fixed by the product).",
    "PAYMENTS_BASE_URL": "Base URL of every payment provider API (the sandbox in development); per-provider `<PROVIDER>_API_URL` override it.",
    "STRIPE_API_URL": "Stripe API base URL (e.g. https://api.stripe.com); unset: PAYMENTS_BASE_URL + /stripe.",
    "PAYPAL_API_URL": "PayPal API base URL (e.g. https://api-m.paypal.com); unset: PAYMENTS_BASE_URL + /paypal.",
    "BANK_WIRE_API_URL": "Bank API base URL; unset: PAYMENTS_BASE_URL + /bank.",
    "BITPAY_API_URL": "BitPay API base URL; unset: PAYMENTS_BASE_URL + /bitpay.",
    "COINBASE_API_URL": "Coinbase Commerce API base URL; unset: PAYMENTS_BASE_URL + /coinbase.",
    "REVOLUT_API_URL": "Revolut Merchant API base URL; unset: PAYMENTS_BASE_URL + /revolut.",
    "PAYMENT_TIMEOUT_SECONDS": "Time limit of one call to a payment provider.",
    "STRIPE_SECRET_KEY": "Stripe API key.",
    "STRIPE_WEBHOOK_SECRET": "Stripe webhook signing secret.",
    "PAYPAL_CLIENT_ID": "PayPal REST client id.",
    "PAYPAL_CLIENT_SECRET": "PayPal REST client secret.",
    "PAYPAL_WEBHOOK_ID": "PayPal webhook id the notifications are verified for.",
    "BITPAY_TOKEN": "BitPay merchant token.",
    "BITPAY_NOTIFICATION_URL": "Where BitPay sends its IPNs (the gateway's `/api/v1/billing/webhooks/bitpay`).",
    "COINBASE_API_KEY": "Coinbase Commerce API key.",
    "COINBASE_WEBHOOK_SECRET": "Coinbase Commerce webhook shared secret.",
    "REVOLUT_API_KEY": "Revolut Merchant API key.",
    "REVOLUT_WEBHOOK_SECRET": "Revolut webhook signing secret.",
    "BANK_API_KEY": "Bank API key (expected transfers).",
    "BANK_WEBHOOK_SECRET": "Bank transfer-notice signing secret.",
}


@dataclass
class Setting:
    """One setting as it appears in the config files."""

    name: str  # the environment variable, or the key for literal top-level values
    keys: set = field(default_factory=set)  # YAML key paths, e.g. LOGGING.root.level
    defaults: dict = field(default_factory=dict)  # component -> default ("" = none)
    from_environment: bool = True

    @property
    def secret(self):
        if not self.from_environment or self.name in NOT_SECRET_SETTINGS:
            return False
        return self.name in SECRET_SETTINGS or any(word in self.name for word in SECRET_WORDS)


def components(config_dir=CONFIG_DIR):
    return sorted(path.stem for path in Path(config_dir).glob("*.yaml"))


def _walk(node, path):
    """(key path, raw scalar) for every scalar of a YAML node tree."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(value, path + (key.value,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, path + (str(index),))
    elif isinstance(node, yaml.ScalarNode):
        yield path, node.value


def read_settings(config_dir=CONFIG_DIR):
    """Every setting of every config file, by name."""
    settings = {}
    for component in components(config_dir):
        text = (Path(config_dir) / f"{component}.yaml").read_text()
        # BaseLoader: every scalar stays the raw text written in the file.
        root = yaml.compose(text, Loader=yaml.BaseLoader)
        for path, raw in _walk(root, ()):
            placeholders = PLACEHOLDER.findall(raw)
            for placeholder in placeholders:
                name, _, default = placeholder.partition(":")
                setting = settings.setdefault(name.strip(), Setting(name.strip()))
                setting.keys.add(".".join(path))
                setting.defaults[component] = default
            top_level_literal = not placeholders and path and path[0] != "LOGGING"
            if top_level_literal:
                setting = settings.setdefault(path[0], Setting(path[0], from_environment=False))
                setting.keys.add(path[0])
                setting.defaults[component] = raw if len(path) == 1 else "(a list or mapping; see the file)"
    return settings


def undocumented(settings=None):
    settings = read_settings() if settings is None else settings
    return sorted(name for name in settings if not DESCRIPTIONS.get(name))


def _default_text(setting, all_components):
    values = {component: setting.defaults[component] for component in sorted(setting.defaults)}
    distinct = set(values.values())
    if len(distinct) == 1:
        value = distinct.pop()
        return f"`{value}`" if value else "(none)"
    return "; ".join(f"{component}: `{value}`" if value else f"{component}: (none)"
                     for component, value in values.items())


def render(settings=None, config_dir=CONFIG_DIR):
    settings = read_settings(config_dir) if settings is None else settings
    all_components = components(config_dir)
    shared = [s for s in settings.values() if set(s.defaults) == set(all_components)]
    lines = [
        "# Configuration settings",
        "",
        f"Generated by `{GENERATE_COMMAND}` from `deploy/config/*.yaml` and the descriptions",
        "in `deploy/settings_doc.py`; do not edit by hand. Each component reads its own file",
        "(`nameko run --config deploy/config/<component>.yaml …`, `panel …`); a value written",
        "`${VAR:default}` comes from the environment variable `VAR`, else the default.",
        "**Secret** settings come from the environment only (a Kubernetes Secret, a root-only",
        "`EnvironmentFile`, a compose `.env`), never from a file in the image.",
        "",
        "| column | meaning |",
        "|---|---|",
        "| variable | the environment variable (for a literal, the YAML key: edit the file) |",
        "| key | where it sits in the YAML file |",
        "| default | the value when the variable is unset (per component when they differ) |",
        "",
    ]

    def table(rows, with_components):
        head = "| variable | key | default | components | what |" if with_components else \
            "| variable | key | default | what |"
        out = [head, "|" + "---|" * (head.count("|") - 1)]
        for setting in sorted(rows, key=lambda s: s.name):
            name = f"`{setting.name}`" if setting.from_environment else f"(file only) `{setting.name}`"
            if setting.secret:
                name += " **secret**"
            keys = ", ".join(f"`{key}`" for key in sorted(setting.keys))
            what = DESCRIPTIONS.get(setting.name, "**UNDOCUMENTED**").replace("|", "\\|")
            cells = [name, keys, _default_text(setting, all_components)]
            if with_components:
                cells.append(", ".join(sorted(setting.defaults)))
            cells.append(what)
            out.append("| " + " | ".join(cells) + " |")
        return out

    several = [s for s in settings.values() if s not in shared and len(s.defaults) > 1]
    lines += ["## Every component", ""] + table(shared, False) + [""]
    if several:
        lines += ["## Several components", ""] + table(several, True) + [""]
    for component in all_components:
        own = [s for s in settings.values() if set(s.defaults) == {component} and len(all_components) > 1]
        if own:
            lines += [f"## {component}", ""] + table(own, False) + [""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deploy.settings_doc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; change nothing")
    args = parser.parse_args(argv)
    settings = read_settings()
    missing = undocumented(settings)
    if missing:
        print(f"undocumented settings: {', '.join(missing)} — add them to DESCRIPTIONS in "
              f"deploy/settings_doc.py, then run {GENERATE_COMMAND}", file=sys.stderr)
        return 1
    text = render(settings)
    if args.check:
        if not README.exists() or README.read_text() != text:
            print(f"{README} is stale: run {GENERATE_COMMAND}", file=sys.stderr)
            return 1
        return 0
    README.write_text(text)
    print(f"wrote {README} ({len(settings)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
