#!/usr/bin/env bash
# Everything `make run` and `make test` need on a fresh machine: the virtualenv with the
# pinned dependencies, a running RabbitMQ with its management plugin, and (for the
# PostgreSQL lane) a running PostgreSQL when one is installed. Safe to run again.
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
say "ready"
