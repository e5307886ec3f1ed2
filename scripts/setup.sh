#!/usr/bin/env bash
# Everything `make run` and `make test` need on a fresh machine: the virtualenv with the
# pinned dependencies, a running RabbitMQ with its management plugin, (for the PostgreSQL
# lane) a running PostgreSQL when one is installed, the customer panel built into web/dist,
# and Chromium for the browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Virtualenv with the pinned dependencies (reinstalled when pyproject.toml changes).
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  say "installing dependencies (pinned in pyproject.toml)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]' 2>&1 \
    | grep -v -E "^WARNING: Location .* is ignored" || true
  "$VENV/bin/python" -c "import nameko, sqlalchemy, marshmallow" \
    || { say "dependency installation failed"; exit 1; }
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# 2. RabbitMQ: installed, running, management plugin enabled (nameko's test fixtures and
#    the test vhosts use the management API).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  say "RabbitMQ is not installed; installing Debian's rabbitmq-server"
  if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; }; then
    say "could not install RabbitMQ: run 'apt-get install rabbitmq-server' as root, or set AMQP_URI to a broker"
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached || { say "could not start RabbitMQ (try: rabbitmq-server -detached as root)"; exit 1; }
  for _ in $(seq 1 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
fi
if ! rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1; then
  say "enabling the RabbitMQ management plugin"
  as_root rabbitmq-plugins -q enable rabbitmq_management >/dev/null
fi
for _ in $(seq 1 30); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
  sleep 1
done

# 3. PostgreSQL (optional: its test lane is skipped with a notice when none answers).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    say "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

# 4. The panel (web/): its npm packages (reinstalled when package-lock.json changes), and
#    its build in web/dist (rebuilt when a source is newer than the build).
if ! command -v npm >/dev/null 2>&1; then
  say "npm is missing: install Node.js 20.19 or newer with npm (the panel's build, Vite 8, needs it), then run make setup again"
  exit 1
fi
web_stamp="web/node_modules/.installed-$(sha1sum web/package-lock.json | cut -c1-12)"
if [ ! -d web/node_modules ] || [ ! -f "$web_stamp" ]; then
  say "installing the panel's packages (pinned in web/package-lock.json)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { say "npm ci failed in web/"; exit 1; }
  rm -f web/node_modules/.installed-*
  touch "$web_stamp"
fi
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html web/public web/vite.config.js \
    web/package-lock.json -newer web/dist/index.html -print -quit 2>/dev/null)" ]; then
  say "building the panel into web/dist"
  (cd web && npm run build --silent) || { say "the panel's build failed (npm run build in web/)"; exit 1; }
fi

# 5. Chromium for the browser tests (Debian's, driven by Playwright: no browser download).
if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then
  say "Chromium is not installed; installing Debian's chromium"
  if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    say "could not install Chromium: run 'apt-get install chromium' as root"
    exit 1
  fi
fi
say "ready"
