"""Demo data for the local stack, created through the services' own RPCs (so it goes through
the same validation and events as real data). Safe to run again: what exists is kept.

    python -m deploy.demo            (AMQP_URI from the environment)

The customers are listed in ``var/stack.json`` (API.md "The development stack"): the first
has two-factor authentication on (codes arrive in the SMS stand-in's inbox); the second is
another customer, for isolation checks. Their passwords are for the local stack only.
"""

import eventlet

eventlet.monkey_patch()  # noqa: E402 — nameko's standalone proxy needs it

import os  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from common.errors import ValidationFailed  # noqa: E402

USERS = [
    {"username": "demo", "password": "demo-password-1", "two_factor": True,
     "email": "demo@panel.local", "phone": "+31612345678"},
    {"username": "other", "password": "other-password-1", "two_factor": False,
     "email": "other@panel.local", "phone": "+14155550123"},
]


def seed_users(cluster):
    created = []
    for user in USERS:
        try:
            cluster.auth.register_user(user["username"], user["password"], user["email"],
                                       user["phone"], user["two_factor"])
            created.append(user["username"])
        except ValidationFailed as error:
            if "username" not in error.fields:
                raise
    return created


def main():
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster:
        created = seed_users(cluster)
    names = ", ".join(u["username"] for u in USERS)
    print(f"[stack] demo customers: {names} ({len(created)} created now)")


if __name__ == "__main__":
    main()
