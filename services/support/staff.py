"""The support staff's command-line tool: answer customers' requests.

    python -m services.support.staff list [--status open|closed|all] [--page N] [--per-page K]
    python -m services.support.staff show TICKET_ID
    python -m services.support.staff reply TICKET_ID --as NAME (--body TEXT | --body-file PATH|-) [--attach PATH]...
    python -m services.support.staff close TICKET_ID --as NAME
    python -m services.support.staff reopen TICKET_ID --as NAME

It talks to the running support service over AMQP (the ``staff_*`` RPC methods, which no
gateway route reaches). ``AMQP_URI`` comes from the environment, else from
``deploy/config/support.yaml``; ``SUPPORT_STAFF_NAME`` is the default for ``--as``.
``--json`` prints the service's answer as JSON. Exit status: 0 done, 1 refused (not found,
invalid, conflict), 2 the service could not be reached.
"""

import argparse
import base64
import json
import mimetypes
import os
import sys
import textwrap

from common import rpc_errors  # noqa: F401 - errors of the standalone RPC proxies arrive typed
from common.errors import (
    PanelError,  # first: registers the error types, so refusals arrive typed
)


def amqp_uri():
    uri = os.environ.get("AMQP_URI")
    if uri:
        return uri
    from common import config

    return config.load("support")["AMQP_URI"]


def print_list(page):
    print(f"{page['total']} request(s); page {page['page']} ({page['per_page']} per page)")
    for item in page["items"]:
        print(f"{item['id']}  {item['status']:<9} {item['updated_at'][:19]}  user {item['user_id']}  "
              f"[{item['messages']} msg, last {item['last_author']}]  {item['subject']}")


def print_ticket(ticket):
    server = f"  server {ticket['server_number'] or ticket['server_id']}" if ticket["server_id"] else ""
    print(f"#{ticket['id']}  {ticket['subject']}")
    print(f"status {ticket['status']}  user {ticket['user_id']}{server}  opened {ticket['created_at'][:19]}  "
          f"updated {ticket['updated_at'][:19]}")
    for message in ticket["messages"]:
        who = f"staff ({message['staff_name']})" if message["author"] == "staff" else "customer"
        print(f"\n--- {who}, {message['created_at'][:19]}")
        print(textwrap.indent(message["body"], "  "))
        for attachment in message["attachments"]:
            print(f"  [attachment {attachment['id']}: {attachment['filename']}, {attachment['content_type']}, "
                  f"{attachment['size']} bytes]")


def print_status(item):
    print(f"#{item['id']} is {item['status']}")


def parser():
    main = argparse.ArgumentParser(prog="python -m services.support.staff",
                                   description="Answer customers' support requests.")
    main.add_argument("--json", action="store_true", help="print the answer as JSON")
    main.add_argument("--timeout", type=float, default=15, help="seconds to wait for the service (15)")
    commands = main.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="requests of every customer, newest activity first")
    listing.add_argument("--status", default="open", choices=["open", "closed", "all"])
    listing.add_argument("--page", type=int, default=1)
    listing.add_argument("--per-page", type=int, default=50)
    show = commands.add_parser("show", help="a request with its conversation")
    show.add_argument("ticket_id")
    default_name = os.environ.get("SUPPORT_STAFF_NAME")
    for name, what in (("reply", "answer a request (it becomes answered)"), ("close", "close a request"),
                       ("reopen", "reopen a closed request")):
        command = commands.add_parser(name, help=what)
        command.add_argument("ticket_id")
        command.add_argument("--as", dest="staff_name", default=default_name, required=default_name is None,
                             help="your name as the customer sees it (default: $SUPPORT_STAFF_NAME)")
        if name == "reply":
            body = command.add_mutually_exclusive_group(required=True)
            body.add_argument("--body", help="the answer")
            body.add_argument("--body-file", help="read the answer from a file ('-': standard input)")
            command.add_argument("--attach", action="append", default=[], metavar="PATH",
                                 help="attach a file (repeatable; the customers' limits and types apply)")
    return main


def stage(support, path):
    """Send one file to the service for the reply to come."""
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return support.staff_stage_attachment(os.path.basename(path), content_type, data)


def run(args, support):
    if args.command == "list":
        return support.staff_list_tickets(args.status, args.page, args.per_page), print_list
    if args.command == "show":
        return support.staff_get_ticket(args.ticket_id), print_ticket
    if args.command == "reply":
        if args.body is not None:
            body = args.body
        elif args.body_file == "-":
            body = sys.stdin.read()
        else:
            with open(args.body_file, encoding="utf-8") as handle:
                body = handle.read()
        uploads = [stage(support, path)["upload_id"] for path in args.attach]
        return (support.staff_reply(args.ticket_id, args.staff_name, body, uploads),
                lambda m: print_status(m["ticket"]))
    if args.command == "close":
        return support.staff_close_ticket(args.ticket_id, args.staff_name), print_status
    return support.staff_reopen_ticket(args.ticket_id, args.staff_name), print_status


def main(argv=None):
    args = parser().parse_args(argv)
    from kombu.exceptions import OperationalError
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=args.timeout) as cluster:
            answer, show = run(args, cluster.support)
    except PanelError as refused:
        print(f"refused ({refused.code}): {refused.message}", file=sys.stderr)
        for field, reasons in refused.fields.items():
            print(f"  {field}: {' '.join(reasons)}", file=sys.stderr)
        return 1
    except (RpcTimeout, UnknownService, OperationalError, OSError) as error:
        print(f"the support service could not be reached: {type(error).__name__}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        show(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
