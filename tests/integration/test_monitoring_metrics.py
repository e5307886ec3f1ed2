"""Monitoring holds together with the running code: every metric the alert rules and the
Grafana dashboard name is exported by a real running process (services, gateway, the
dead-letter exporter), with the labels the queries select on; and the probes of
``deploy/probe.py`` pass against a running service and fail once it stops."""

import json
import os
import re
import subprocess
import sys
import threading

import pytest
import requests
import yaml
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.standalone.rpc import ClusterRpcProxy
from prometheus_client.parser import text_string_to_metric_families

from deploy.components import migrate, service_class
from common.config import REPO_ROOT
from common.db import create_engine
from common.metrics import Metrics
from common.service import find_provider
from deploy import dlq
from gateway.service import GatewayService
from services.inventory.service import InventoryService
from services.notify.service import NotifyService
from tests.support import free_port, wait_for

MONITORING = REPO_ROOT / "deploy" / "monitoring"
# Made by Prometheus itself for every target, not by the target.
PROMETHEUS_SYNTHETIC = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "offset", "bool", "inf", "nan"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",), "summary": ("", "_count", "_sum", "_created")}


# -- reading the queries -----------------------------------------------------------------------

def alert_expressions():
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions():
    dashboard = json.loads((MONITORING / "grafana" / "hosting-panel.json").read_text())
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            # label_values(metric, label) names a metric too
            found[f"variable {variable['name']}"] = re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", query["query"])
    return found


def selectors(expr):
    """(metric name or None, {label: (operator, value)}) for every ``name{...}`` in a query."""
    found = []
    for match in re.finditer(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}", expr):
        matchers = {key: (op, value) for key, op, value in
                    re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', match.group(2))}
        found.append((match.group(1), matchers))
    return found


def metric_names(expr):
    """Metric names a PromQL expression reads (functions, keywords, labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        if match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_the_promql_reader_finds_metrics_and_only_metrics():
    expr = ('histogram_quantile(0.99, sum by (service, le) (rate(panel_x_bucket{kind="rpc",a=~"b|c"}[5m]))) '
            '> 1 and on (service) up == 0 unless panel_y offset 1h')
    assert metric_names(expr) == {"panel_x_bucket", "up", "panel_y"}
    assert selectors(expr)[0] == ("panel_x_bucket", {"kind": ("=", "rpc"), "a": ("=~", "b|c")})


# -- the running processes ---------------------------------------------------------------------

def scrape(port):
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def families_of(text):
    """sample name -> label names seen, from one scrape (families without samples count by
    their declared type, labels unknown)."""
    exported = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            exported.setdefault(family.name + suffix if not (suffix == "_total" and family.name.endswith("_total"))
                                else family.name, set())
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    return exported


def declared_label_names():
    """Label names of every metric of ``common.metrics.PanelMetrics`` (for families that have
    no sample yet in a short test, e.g. adapter calls)."""
    from common.metrics import PanelMetrics

    names = {}
    for metric in vars(PanelMetrics("declared")).values():
        labelnames = getattr(metric, "_labelnames", None)
        if labelnames is None:
            continue
        for family in metric.collect():
            for suffix in SUFFIXES[family.type]:
                name = family.name + suffix if not (suffix == "_total" and family.name.endswith("_total")) else family.name
                names[name] = set(labelnames) | ({"le"} if suffix == "_bucket" else set())
    return names


@pytest.fixture
def running(start_service, amqp_uri, tmp_path):
    """inventory, notify and the gateway on this test's vhost with metrics on free ports, the
    dead-letter exporter beside them, each having served a little."""
    urls = {}
    for component in ("inventory", "notify", "gateway"):
        urls[component] = f"sqlite:///{tmp_path / (component + '.db')}"
        migrate(component, create_engine(urls[component]))
    inventory = start_service(InventoryService, DATABASE_URL=urls["inventory"], METRICS_PORT=0)
    notify = start_service(NotifyService, DATABASE_URL=urls["notify"], METRICS_PORT=0)
    http_port = free_port()
    gateway = start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{http_port}", DATABASE_URL=urls["gateway"],
                            METRICS_PORT=0, SESSION_COOKIE_SECURE=False, READY_SERVICES=["inventory", "notify"])
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster:
        assert cluster.inventory.health()["status"] == "ok"
        assert cluster.notify.health()["status"] == "ok"
    assert requests.get(f"http://127.0.0.1:{http_port}/readyz", timeout=10).status_code == 200
    ports = {name: find_provider(container, Metrics).port
             for name, container in (("inventory", inventory), ("notify", notify), ("gateway", gateway))}
    ports["dlq-exporter"] = free_port()
    stop = threading.Event()
    exporter = threading.Thread(target=dlq.serve_metrics, args=(amqp_uri, "127.0.0.1", ports["dlq-exporter"], stop),
                                daemon=True)
    exporter.start()
    wait_for(lambda: _answers(ports["dlq-exporter"]), message="the dead-letter exporter")
    yield {"ports": ports, "containers": {"inventory": inventory}, "amqp_uri": amqp_uri}
    stop.set()
    exporter.join(10)


def _answers(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).ok
    except requests.ConnectionError:
        return False


def entrypoints_of(component):
    cls = GatewayService if component == "gateway" else service_class(component)
    return {name for name in dir(cls) if getattr(getattr(cls, name, None), ENTRYPOINT_EXTENSIONS_ATTR, None)}


def test_every_metric_in_the_alerts_and_the_dashboard_is_exported_with_its_labels(running):
    exported = {}
    scrapes = {name: scrape(port) for name, port in running["ports"].items()}
    for text in scrapes.values():
        for name, labels in families_of(text).items():
            exported.setdefault(name, set()).update(labels)
    declared = declared_label_names()
    queries = {**{f"alert {k}": v for k, v in alert_expressions().items()}, **dashboard_expressions()}
    assert len(queries) > 20

    problems = []
    for where, expr in queries.items():
        for name in metric_names(expr):
            if name not in exported and name not in PROMETHEUS_SYNTHETIC:
                problems.append(f"{where}: metric {name} is exported by no process")
        for name, matchers in selectors(expr):
            if name is None or name in PROMETHEUS_SYNTHETIC:
                continue
            known = exported.get(name, set()) | declared.get(name, set())
            for label in set(matchers) - known:
                problems.append(f"{where}: {name} has no label {label!r} (has {sorted(known)})")
            service = matchers.get("service")
            entrypoint = matchers.get("entrypoint")
            if service and entrypoint and service[0] == "=" and entrypoint[0] in ("=", "=~", "!="):
                for method in entrypoint[1].split("|"):
                    if method not in entrypoints_of(service[1]):
                        problems.append(f"{where}: {service[1]} has no entrypoint {method!r}")
    assert not problems, "\n".join(problems)

    # The sample the service-down and operations alerts stand on, as each process serves it.
    assert 'panel_operations{service="inventory",status="running"} 0.0' in scrapes["inventory"]
    assert 'panel_outbox_backlog_events{service="notify"} 0.0' in scrapes["notify"]
    assert 'panel_entrypoint_calls_total{entrypoint="readyz",kind="http",outcome="ok",service="gateway"}' in scrapes["gateway"]
    assert "panel_dead_letter_broker_up 1.0" in scrapes["dlq-exporter"]


# -- probes ------------------------------------------------------------------------------------

def run_probe(kind, component, amqp_uri, metrics_port, timeout="3"):
    env = dict(os.environ, AMQP_URI=amqp_uri, METRICS_PORT=str(metrics_port), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "deploy.probe", kind, component, "--timeout", timeout],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_probes_pass_against_a_running_service_and_fail_once_it_stops(running):
    port = running["ports"]["inventory"]
    amqp_uri = running["amqp_uri"]

    live = run_probe("live", "inventory", amqp_uri, port)
    ready = run_probe("ready", "inventory", amqp_uri, port)
    gateway_ready = run_probe("ready", "gateway", amqp_uri, running["ports"]["gateway"])

    assert live.returncode == 0 and "inventory live" in live.stdout, live.stderr
    assert ready.returncode == 0 and "'status': 'ok'" in ready.stdout, ready.stderr
    assert gateway_ready.returncode == 0, gateway_ready.stderr

    running["containers"]["inventory"].stop()

    live = run_probe("live", "inventory", amqp_uri, port)
    ready = run_probe("ready", "inventory", amqp_uri, port)
    assert live.returncode == 1 and "does not answer" in live.stderr
    assert ready.returncode == 1 and "not ready" in ready.stderr


def test_ready_fails_when_only_the_rpc_is_missing(running):
    """A metrics port that answers is not enough: nobody consumes rpc-orders here."""
    ready = run_probe("ready", "orders", running["amqp_uri"], running["ports"]["notify"], timeout="2")
    assert ready.returncode == 1
    assert "orders.health" in ready.stderr


def test_the_probe_refuses_a_port_that_is_not_a_panel_process(running):
    live = run_probe("live", "inventory", running["amqp_uri"], running["ports"]["dlq-exporter"])
    assert live.returncode == 1 and "not a panel process" in live.stderr


def test_ready_with_wait_passes_once_a_late_service_has_started(start_service, amqp_uri, tmp_path):
    """What systemd's ExecStartPost relies on: the probe keeps trying until the service is up."""
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate("notify", create_engine(url))
    port = free_port()
    env = dict(os.environ, AMQP_URI=amqp_uri, METRICS_PORT=str(port), PYTHONWARNINGS="ignore")
    probe = subprocess.Popen([sys.executable, "-m", "deploy.probe", "ready", "notify", "--wait", "90", "--timeout", "3"],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        start_service(NotifyService, DATABASE_URL=url, METRICS_PORT=port)
        out, err = probe.communicate(timeout=120)
    finally:
        if probe.poll() is None:
            probe.kill()
    assert probe.returncode == 0, err
    assert "notify ready" in out


def test_a_refused_call_is_counted_by_its_error_code(running):
    """What the login-failure and webhook alerts count: refusals by entrypoint and code."""
    with ClusterRpcProxy({"AMQP_URI": running["amqp_uri"]}, context_data={"user_id": "ann"}, timeout=10) as cluster:
        for _ in range(2):
            with pytest.raises(Exception) as refused:
                cluster.inventory.get_server("no-such-server")
            assert type(refused.value).__name__ == "NotFound"
    text = scrape(running["ports"]["inventory"])
    assert 'panel_refusals_total{code="not_found",entrypoint="get_server",service="inventory"} 2.0' in text
    # No operation is waiting: the "stuck" alert's gauges read 0.
    assert 'panel_operation_oldest_active_seconds{service="inventory",status="pending"} 0.0' in text
    assert 'panel_operation_oldest_active_seconds{service="inventory",status="running"} 0.0' in text
