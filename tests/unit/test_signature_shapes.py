"""Entrypoints remember argument shapes that fit their method, and still refuse bad ones."""

from types import SimpleNamespace

import pytest
from nameko.exceptions import IncorrectSignature
from nameko.extensions import Entrypoint

from common.rpc import SignatureShapes


class Service:
    def method(self, server_id, action, os=None):
        return server_id


class CountingEntrypoint(Entrypoint):
    checks = 0

    def check_signature(self, args, kwargs):
        CountingEntrypoint.checks += 1
        return super().check_signature(args, kwargs)


class Remembering(SignatureShapes, CountingEntrypoint):
    pass


def entrypoint():
    found = Remembering()
    found.container = SimpleNamespace(service_cls=Service)
    found.method_name = "method"
    return found


def test_a_fitting_shape_is_checked_once_and_bad_shapes_every_time():
    checked = entrypoint()
    CountingEntrypoint.checks = 0
    for server_id in ("a", "b", "c"):
        checked.check_signature((server_id, "reboot"), {})
    assert CountingEntrypoint.checks == 1
    checked.check_signature(("a",), {"action": "reboot", "os": "debian-12"})
    assert CountingEntrypoint.checks == 2
    for _ in range(2):
        with pytest.raises(IncorrectSignature):
            checked.check_signature(("a", "reboot", "debian-12", "extra"), {})
        with pytest.raises(IncorrectSignature):
            checked.check_signature(("a",), {"colour": "red"})
    assert CountingEntrypoint.checks == 6
