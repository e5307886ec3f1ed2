#!/bin/sh
# Entrypoint of the hosting panel images (deploy/docker/Dockerfile). PANEL_SERVICE names the
# component (set at build time from SERVICE; may be overridden at run time).
#   run               the service: nameko run --config deploy/config/$PANEL_SERVICE.yaml <module:Class>
#   migrate           bring its database to the newest schema (a one-shot step before run)
#   probe live|ready  the liveness / readiness probe (deploy/probe.py)
#   declare-topology  declare every consumer queue on the broker (before producers publish)
#   dlq ...           the dead-letter queue tool (deploy/dlq.py)
#   anything else     executed as given
set -eu

service="${PANEL_SERVICE:?PANEL_SERVICE is not set}"

target_of() {
    case "$1" in
        gateway) echo "gateway.service:GatewayService" ;;
        auth) echo "services.auth.service:AuthService" ;;
        inventory) echo "services.inventory.service:InventoryService" ;;
        orders) echo "services.orders.service:OrdersService" ;;
        storage) echo "services.storage.service:StorageService" ;;
        billing) echo "services.billing.service:BillingService" ;;
        support) echo "services.support.service:SupportService" ;;
        notify) echo "services.notify.service:NotifyService" ;;
        *) echo "unknown PANEL_SERVICE: $1" >&2; return 1 ;;
    esac
}

command="${1:-run}"
[ "$#" -gt 0 ] && shift
case "$command" in
    run)
        target="$(target_of "$service")"
        # exec: nameko is PID 1's child-less replacement and receives SIGTERM itself.
        exec nameko run --config "deploy/config/${service}.yaml" "$target"
        ;;
    migrate)
        exec python -m deploy.cli migrate "$service"
        ;;
    probe)
        exec python -m deploy.probe "${1:?probe live|ready}" "$service"
        ;;
    declare-topology)
        exec python -m deploy.cli declare-topology "$@"
        ;;
    dlq)
        exec python -m deploy.dlq "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
