#!/bin/sh
# One database per component (DESIGN.md: no service reads another's tables), created on the
# PostgreSQL container's first start (/docker-entrypoint-initdb.d). Each component migrates
# its own database afterwards (its <component>-migrate one-shot service).
set -eu
for component in auth inventory orders storage billing support notify gateway; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE panel_${component}"
done
