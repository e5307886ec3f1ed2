"""Service configs: YAML with ${VAR:default}, the environment wins."""

from common import config
from deploy.components import service_class


def test_every_service_has_a_config_with_its_essentials():
    for service in config.SERVICES + ("gateway",):
        values = config.load(service)
        assert values["AMQP_URI"].startswith("amqp://")
        assert values["LOGGING"]["formatters"]["json"]["service"] == service
        if service != "gateway":
            assert values["DATABASE_URL"] == f"sqlite:///var/{service}.db"
            assert isinstance(values["METRICS_PORT"], int)


def test_environment_overrides_the_default(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db/panel_auth")
    monkeypatch.setenv("METRICS_PORT", "9999")
    values = config.load("auth")
    assert values["DATABASE_URL"] == "postgresql://postgres@db/panel_auth"
    assert values["METRICS_PORT"] == 9999


def test_metrics_ports_differ_between_services():
    ports = [config.load(s)["METRICS_PORT"] for s in config.SERVICES + ("gateway",)]
    assert len(set(ports)) == len(ports)


def test_every_service_class_is_found_and_named_after_its_package():
    for service in config.SERVICES:
        assert service_class(service).name == service
