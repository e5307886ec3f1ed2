"""``panel``: operations commands for the services.

    panel migrate SERVICE|gateway|all    bring databases to the newest schema
    panel rebuild-projections SERVICE    replay the log into fresh read models
          [--check]                      ...and only report whether they equal the live ones
    panel declare-topology               declare every event consumer's queues on the broker
    panel events-doc                     print the integration event list (docs/events.md)

Each reads the service's config file (``deploy/config/<service>.yaml``, with the
environment's overrides), so it acts on the same database the service uses.
"""

import argparse
import sys

from common import config as panel_config
from deploy.components import MIGRATABLE, SERVICES, migrate, service_class

SERVICE_CHOICES = SERVICES


def database_url(component):
    return panel_config.load(component)["DATABASE_URL"]


def cmd_migrate(args):
    services = MIGRATABLE if args.service == "all" else [args.service]
    for service in services:
        revision = migrate(service, database_url(service))
        print(f"{service}: at revision {revision}")
    return 0


def cmd_rebuild(args):
    from common.db import create_engine

    service = args.service
    store = service_class(service).schema.create_store(create_engine(database_url(service)))
    live = store.snapshot_projections()
    replayed, rebuilt = store.rebuild_projections(dry_run=args.check)
    action = "compared (nothing changed)" if args.check else "rebuilt"
    print(f"{service}: replayed {replayed} events; read models {action}")
    differing = sorted(name for name in set(live) | set(rebuilt) if live.get(name) != rebuilt.get(name))
    if differing:
        print(f"{service}: rebuilt read models differ from the live ones in: {', '.join(differing)}")
        return 1
    print(f"{service}: rebuilt read models equal the live ones ({sum(map(len, rebuilt.values()))} rows)")
    return 0


def cmd_declare_topology(args):
    from common import topology

    amqp_uri = args.amqp_uri or panel_config.load(SERVICE_CHOICES[0])["AMQP_URI"]
    declared = topology.declare(amqp_uri, [service_class(s) for s in SERVICE_CHOICES])
    for name in declared:
        print(name)
    return 0


def cmd_events_doc(args):
    from common.contracts import events_doc

    print(events_doc())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="panel", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="bring databases to the newest schema")
    migrate.add_argument("service", choices=MIGRATABLE + ("all",))
    migrate.set_defaults(run=cmd_migrate)
    rebuild = commands.add_parser("rebuild-projections", help="rebuild a service's read models")
    rebuild.add_argument("service", choices=SERVICE_CHOICES)
    rebuild.add_argument("--check", action="store_true", help="compare only; change nothing")
    rebuild.set_defaults(run=cmd_rebuild)
    topo = commands.add_parser("declare-topology", help="declare consumer queues on the broker")
    topo.add_argument("--amqp-uri")
    topo.set_defaults(run=cmd_declare_topology)
    doc = commands.add_parser("events-doc", help="print the integration event list")
    doc.set_defaults(run=cmd_events_doc)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
