"""The inventory domain: the customers' servers and what may be done to them.

Pure code (no I/O). A ``Server`` (stream ``server-<id>``) is provisioned for a customer with
its hardware, addresses, plan and the BMC that controls it. Actions (power on/off, reboot,
reinstall) are operations: ``request_action`` checks the server may take one now — one
destructive operation at a time, none while suspended or still provisioning — and
``finish_action`` records its outcome.

Billing's invoice facts may arrive late, twice or out of order (two queues, retries), so the
server remembers which invoices it saw paid and which overdue: an overdue invoice already
paid, or a payment seen before, changes nothing, and ``paid_until`` never moves back. The
result is the same in whatever order the facts come.
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import date

from common.errors import Conflict, ValidationFailed
from common.eventstore import Aggregate, NewEvent

ACTIVE, OVERDUE, PROVISIONING, SUSPENDED = "active", "overdue", "provisioning", "suspended"
STATUSES = (ACTIVE, OVERDUE, PROVISIONING, SUSPENDED)
ACTIONS = ("power_on", "power_off", "reboot", "reinstall")
LOCATIONS = {"NL": "Netherlands", "US": "United States", "DE": "Germany", "SG": "Singapore"}

# The published OS list for reinstalls: id -> (name, image file on the image server).
OS_IMAGES = {
    "ubuntu-24.04": ("Ubuntu 24.04 LTS", "ubuntu-24.04-server-amd64.iso"),
    "ubuntu-22.04": ("Ubuntu 22.04 LTS", "ubuntu-22.04-server-amd64.iso"),
    "debian-12": ("Debian 12", "debian-12-amd64-netinst.iso"),
    "rocky-9": ("Rocky Linux 9", "Rocky-9-x86_64-minimal.iso"),
    "alma-9": ("AlmaLinux 9", "AlmaLinux-9-x86_64-minimal.iso"),
    "windows-2022": ("Windows Server 2022", "windows-server-2022.iso"),
    "proxmox-8": ("Proxmox VE 8", "proxmox-ve-8.iso"),
}

ACTION_TITLES = {
    "power_on": "Power on {number}",
    "power_off": "Power off {number}",
    "reboot": "Reboot {number}",
    "reinstall": "Reinstall {number} with {os_name}",
}
TAG_MAX = 64


def os_images():
    return [{"id": key, "name": name} for key, (name, _) in OS_IMAGES.items()]


def later_date(current, other):
    """The later of two ISO dates; either may be missing."""
    if not current or not other:
        return current or other
    return max(current, other, key=date.fromisoformat)


def validate_tag(tag):
    if tag is not None and (not isinstance(tag, str) or len(tag) > TAG_MAX or any(ord(c) < 32 for c in tag)):
        raise ValidationFailed("The tag is invalid.", fields={"tag": [f"Text of at most {TAG_MAX} characters."]})
    return (tag or "").strip() or None


@dataclass
class Server(Aggregate):
    stream_prefix = "server"

    server_id: str
    version: int = 0
    user_id: str = None
    number: str = None
    status: str = PROVISIONING
    power: str = "off"
    os: str = None
    tag: str = None
    active_operation: str = None
    bmc: dict = field(default_factory=dict)
    paid_until: str = None
    # Invoices marked overdue and not paid yet (``None``: a verdict without an invoice).
    overdue_invoices: set = field(default_factory=set)
    paid_invoices: set = field(default_factory=set)

    # folding
    def _on_server_provisioned(self, data):
        self.user_id, self.number, self.status = data["user_id"], data["number"], ACTIVE
        self.power, self.os, self.tag, self.bmc = data["power"], data["os"], data.get("tag"), data["bmc"]
        self.paid_until = data["paid_until"]

    def _on_server_tagged(self, data):
        self.tag = data["tag"]

    def _on_server_action_requested(self, data):
        self.active_operation = data["operation_id"]

    def _on_server_action_finished(self, data):
        self.active_operation = None
        if data.get("power"):
            self.power = data["power"]
        if data.get("os"):
            self.os = data["os"]

    def _on_server_marked_overdue(self, data):
        self.status = OVERDUE
        self.overdue_invoices.add(data.get("invoice_id"))

    def _on_server_paid(self, data):
        invoice_id = data.get("invoice_id")
        self.overdue_invoices = self._still_overdue(invoice_id)
        if invoice_id is not None:
            self.paid_invoices.add(invoice_id)
        if data["paid_until"]:
            self.paid_until = data["paid_until"]
        # Events before invoice ids were recorded carry no status: they cleared overdue.
        self.status = data.get("status") or (ACTIVE if self.status == OVERDUE else self.status)

    def _on_server_suspended(self, data):
        self.status = SUSPENDED

    def _on_server_resumed(self, data):
        self.status = ACTIVE

    # commands
    @staticmethod
    def provision(server_id, *, user_id, number, location, plan, hardware, ips, os, bmc, paid_until,
                  price_month, tag=None):
        problems = {}
        if location not in LOCATIONS:
            problems["location"] = [f"One of {', '.join(LOCATIONS)}."]
        if os not in OS_IMAGES:
            problems["os"] = ["Not in the published OS list."]
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                problems["ips"] = [f"Not an IP address: {ip}"]
        if problems:
            raise ValidationFailed("The server is invalid.", fields=problems)
        return [NewEvent("server_provisioned", {
            "server_id": server_id, "user_id": user_id, "number": number, "location": location,
            "plan": plan, "hardware": hardware, "ips": list(ips), "os": os, "bmc": bmc,
            "paid_until": paid_until, "price_month": price_month, "power": "on", "tag": validate_tag(tag),
        })]

    def retag(self, tag):
        tag = validate_tag(tag)
        if tag == self.tag:
            return []
        return [NewEvent("server_tagged", {"server_id": self.server_id, "user_id": self.user_id,
                                           "number": self.number, "tag": tag})]

    def request_action(self, action, operation_id, os=None):
        if action not in ACTIONS:
            raise ValidationFailed("Unknown action.", fields={"action": [f"One of {', '.join(ACTIONS)}."]})
        if action == "reinstall" and os not in OS_IMAGES:
            raise ValidationFailed("Choose an operating system.", fields={"os": ["Not in the published OS list."]})
        if self.status in (SUSPENDED, PROVISIONING):
            raise Conflict(f"The server is {self.status}; it takes no actions now.")
        if self.active_operation:
            raise Conflict("Another operation is running on this server; wait for it to finish.",
                           extra={"operation_id": self.active_operation})
        return [NewEvent("server_action_requested", {"operation_id": operation_id, "action": action, "os": os})]

    def finish_action(self, operation_id, succeeded, power=None, os=None):
        if self.active_operation != operation_id:
            return []  # already finished (a redelivered outcome)
        data = {"operation_id": operation_id, "succeeded": succeeded}
        if succeeded:
            data.update(power=power, os=os)
        return [NewEvent("server_action_finished", data)]

    def mark_overdue(self, reason, invoice_id=None):
        """Billing's ``invoice_overdue`` (or a verdict without an invoice): nothing when that
        invoice was paid already (a stale fact) or is already recorded overdue."""
        if invoice_id in self.paid_invoices or invoice_id in self.overdue_invoices:
            return []
        return [NewEvent("server_marked_overdue", {"invoice_id": invoice_id, "reason": reason})]

    def mark_paid(self, paid_until, invoice_id=None):
        """Billing's ``invoice_paid``: the invoice is settled and the server paid until the
        later of its current ``paid_until`` and the invoice's; it stays overdue while another
        overdue invoice is unpaid. Nothing when that invoice was recorded paid already.
        Without an invoice (an operator's verdict) every overdue invoice counts as settled."""
        if invoice_id is not None and invoice_id in self.paid_invoices:
            return []
        new_paid_until = later_date(self.paid_until, paid_until)
        status = ACTIVE if self.status == OVERDUE and not self._still_overdue(invoice_id) else self.status
        if invoice_id is None and (new_paid_until, status) == (self.paid_until, self.status):
            return []
        return [NewEvent("server_paid", {"invoice_id": invoice_id, "paid_until": new_paid_until, "status": status})]

    def _still_overdue(self, paid_invoice_id):
        """The overdue invoices left once ``paid_invoice_id`` is paid (``None``: all settled).
        An overdue recorded without an invoice (an operator's verdict, or an event from
        before invoice ids were recorded) is settled by any payment, as it always was."""
        return set() if paid_invoice_id is None else self.overdue_invoices - {paid_invoice_id, None}

    def title_of(self, action, os=None):
        return ACTION_TITLES[action].format(number=self.number, os_name=OS_IMAGES.get(os, ("",))[0])
