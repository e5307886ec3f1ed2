"""The deployment files are valid and agree with the code, checked offline: every config
setting documented, Kubernetes manifests (kubernetes-validate --strict), the compose file
(compose-spec schema), YAML style (yamllint), the Dockerfile (hadolint), the systemd units
(systemd-analyze verify, else a structural parse), and what an operator relies on in each:
migrations before start, probes, graceful-stop budgets, secrets only by reference."""

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.components import service_class
from common.config import REPO_ROOT, SERVICES
from deploy import settings_doc

DEPLOY = REPO_ROOT / "deploy"
BIN = Path(sys.executable).parent
COMPONENTS = SERVICES + ("gateway",)
K8S_FILES = sorted((DEPLOY / "k8s").glob("*.yaml"))
UNITS = DEPLOY / "systemd"


def run(*argv, cwd=REPO_ROOT):
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120)


def target_of(component):
    if component == "gateway":
        return "gateway.service:GatewayService"
    cls = service_class(component)
    return f"{cls.__module__}:{cls.__name__}"


def default_metrics_port(component):
    return int(settings_doc.read_settings()["METRICS_PORT"].defaults[component])


# -- configuration settings -------------------------------------------------------------------

def test_every_setting_in_every_config_file_is_documented():
    settings = settings_doc.read_settings()
    missing = settings_doc.undocumented(settings)
    where = {name: sorted(settings[name].defaults) for name in missing}
    assert not missing, (
        f"undocumented settings: {where}. Add a line for each to DESCRIPTIONS in deploy/settings_doc.py, "
        f"then run: {settings_doc.GENERATE_COMMAND}"
    )


def test_config_readme_is_generated_from_the_current_files():
    expected = settings_doc.render()
    actual = settings_doc.README.read_text() if settings_doc.README.exists() else ""
    assert actual == expected, f"deploy/config/README.md is stale: run {settings_doc.GENERATE_COMMAND}"


def test_the_settings_reader_finds_placeholders_literals_and_nested_values(tmp_path):
    (tmp_path / "alpha.yaml").write_text(
        "# ${NOT_A_SETTING:in a comment}\n"
        "AMQP_URI: ${AMQP_URI:amqp://guest:guest@host:5672/}\n"
        "max_workers: ${MAX_WORKERS:10}\n"
        "READY_SERVICES: [auth, notify]\n"
        "LOGGING:\n  root:\n    level: ${LOG_LEVEL:INFO}\n"
        "TOKEN: ${SOME_TOKEN:}\n"
    )
    settings = settings_doc.read_settings(tmp_path)
    assert set(settings) == {"AMQP_URI", "MAX_WORKERS", "READY_SERVICES", "LOG_LEVEL", "SOME_TOKEN"}
    assert settings["AMQP_URI"].defaults == {"alpha": "amqp://guest:guest@host:5672/"}
    assert settings["LOG_LEVEL"].keys == {"LOGGING.root.level"}
    assert settings["READY_SERVICES"].from_environment is False
    assert settings["SOME_TOKEN"].secret and settings["AMQP_URI"].secret and not settings["MAX_WORKERS"].secret


# -- Kubernetes -------------------------------------------------------------------------------

def k8s_documents():
    docs = []
    for path in K8S_FILES:
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_kubernetes_manifests_validate_strictly_without_warnings():
    result = run(BIN / "kubernetes-validate", "--strict", *K8S_FILES)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count("passed") == len(k8s_documents())


def test_kubernetes_validate_really_rejects_a_wrong_manifest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
                   "spec: {replicas: two, selector: {}, template: {spec: {containers: []}}, colour: red}\n")
    assert run(BIN / "kubernetes-validate", "--strict", bad).returncode != 0


def test_every_component_has_a_deployment_with_migrations_probes_and_resources():
    docs = k8s_documents()
    deployments = {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] == "Deployment"}
    assert set(deployments) == {f"panel-{c}" for c in COMPONENTS} | {"panel-dlq-exporter"}
    for component in COMPONENTS:
        pod = deployments[f"panel-{component}"]["spec"]["template"]["spec"]
        assert [c["args"] for c in pod["initContainers"]] == [["migrate"], ["declare-topology"]], component
        [main] = pod["containers"]
        assert main["args"] == ["run"]
        assert main["livenessProbe"] and main["readinessProbe"] and main["startupProbe"], component
        assert {"name": "METRICS_PORT", "value": str(default_metrics_port(component))} in main["env"]
        assert any(p["name"] == "metrics" and p["containerPort"] == default_metrics_port(component)
                   for p in main["ports"])
        for container in pod["initContainers"] + pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), (component, container["name"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), (component, container["name"])
        if component != "gateway":
            assert main["readinessProbe"]["exec"]["command"][-2:] == ["probe", "ready"]
        # Long enough for in-flight work: a power action waits up to BMC_POWER_WAIT_SECONDS (60).
        assert pod["terminationGracePeriodSeconds"] >= (90 if component == "inventory" else 30)
        strategy = deployments[f"panel-{component}"]["spec"]["strategy"]
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_the_gateway_has_a_disruption_budget_an_autoscaler_and_a_service():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_documents()}
    assert {("PodDisruptionBudget", "panel-gateway"), ("HorizontalPodAutoscaler", "panel-gateway"),
            ("Service", "panel-gateway")} <= kinds


def test_kubernetes_secrets_are_only_referenced_and_configmaps_hold_only_documented_plain_settings():
    settings = settings_doc.read_settings()
    docs = k8s_documents()
    assert not [doc for _, doc in docs if doc["kind"] == "Secret"], "Secret objects (values) must not be committed"
    for name, doc in docs:
        if doc["kind"] == "ConfigMap":
            for key in doc["data"]:
                assert key in settings, f"{name}: ConfigMap key {key} is no setting of deploy/config"
                assert not settings[key].secret, f"{name}: secret setting {key} in a ConfigMap"
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                for variable in container.get("env", []):
                    assert "value" not in variable or not settings.get(variable["name"]) or \
                        not settings[variable["name"]].secret, f"{name}: {variable['name']} written in clear"
                secret_refs = [ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref]
                assert "panel-amqp" in secret_refs, f"{name}: AMQP_URI (with its password) comes from panel-amqp"


# -- compose ----------------------------------------------------------------------------------

def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_matches_the_compose_specification():
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_migrates_each_component_before_starting_it_and_keeps_stand_ins_in_dev():
    services = compose()["services"]
    for component in COMPONENTS:
        migrate = services[f"{component}-migrate"]
        assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
        assert component in migrate["environment"]["DATABASE_URL"].rsplit("/", 1)[-1]
        depends = services[component]["depends_on"]
        assert depends[f"{component}-migrate"] == {"condition": "service_completed_successfully"}
        assert depends["topology"] == {"condition": "service_completed_successfully"}
        assert services[component]["environment"]["METRICS_PORT"] == str(default_metrics_port(component))
    for standin in ("sms", "voice", "mail", "bmc", "images", "payments", "s3-nl", "s3-us", "demo"):
        assert services[standin]["profiles"] == ["dev"], standin
    assert "management" in services["rabbitmq"]["image"]
    panel_services = [name for name, service in services.items() if "profiles" not in service]
    assert not [name for name in panel_services if name in ("sms", "voice", "mail", "bmc", "payments")]


def test_postgres_init_script_creates_one_database_per_component():
    script = (DEPLOY / "compose" / "postgres-init.sh").read_text()
    listed = re.search(r"for component in ([\w ]+); do", script).group(1).split()
    assert sorted(listed) == sorted(COMPONENTS)
    assert "CREATE DATABASE panel_${component}" in script
    assert run("sh", "-n", DEPLOY / "compose" / "postgres-init.sh").returncode == 0


# -- YAML style, Dockerfile -------------------------------------------------------------------

def test_every_yaml_file_under_deploy_passes_yamllint():
    result = run(BIN / "yamllint", "--strict", "-c", DEPLOY / ".yamllint", "-f", "parsable", DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint():
    result = run(BIN / "hadolint", DEPLOY / "docker" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_rejects_a_sloppy_dockerfile(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\nRUN cd /app\n")
    assert run(BIN / "hadolint", sloppy).returncode != 0


def test_the_image_entrypoint_runs_the_right_class_for_every_component():
    script = DEPLOY / "docker" / "entrypoint.sh"
    assert run("sh", "-n", script).returncode == 0
    mapping = dict(re.findall(r'^\s+(\w+)\) echo "([\w.:]+)" ;;', script.read_text(), re.M))
    assert mapping == {component: target_of(component) for component in COMPONENTS}
    dockerignore = (REPO_ROOT / ".dockerignore").read_text().split()
    for needed in ("!common/", "!services/", "!gateway/", "!deploy/", "!pyproject.toml"):
        assert needed in dockerignore


def test_the_image_entrypoint_dispatches_commands(tmp_path):
    """`run` execs nameko with the component's config and class (a stub nameko records it)."""
    stub = tmp_path / "nameko"
    stub.write_text('#!/bin/sh\necho "nameko $*"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PANEL_SERVICE": "inventory"}
    result = subprocess.run(["sh", str(DEPLOY / "docker" / "entrypoint.sh"), "run"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == f"nameko run --config deploy/config/inventory.yaml {target_of('inventory')}"
    unknown = subprocess.run(["sh", str(DEPLOY / "docker" / "entrypoint.sh"), "run"], cwd=REPO_ROOT,
                             env=dict(env, PANEL_SERVICE="nope"), capture_output=True, text=True, timeout=30)
    assert unknown.returncode != 0 and "unknown PANEL_SERVICE" in unknown.stderr


# -- systemd ----------------------------------------------------------------------------------

def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def test_each_component_has_a_unit_that_migrates_first_and_stops_gracefully():
    for component in COMPONENTS:
        service = unit(f"panel-{component}.service")["Service"]
        assert service["ExecStartPre"].endswith(f"-m deploy.cli migrate {component}")
        assert service["ExecStart"].endswith(f"nameko run --config deploy/config/{component}.yaml {target_of(component)}")
        assert f"deploy.probe ready {component}" in service["ExecStartPost"]
        assert service["KillSignal"] == "SIGTERM"
        assert int(service["TimeoutStopSec"]) >= (90 if component == "inventory" else 30)
        assert service["Restart"] == "on-failure"
        assert "panel-topology.service" in unit(f"panel-{component}.service")["Unit"]["After"]
    assert unit("panel-topology.service")["Service"]["Type"] == "oneshot"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed; the structural test above still parses every unit")
def test_systemd_analyze_verifies_every_unit(tmp_path):
    """The units as shipped, with their install prefix moved to a folder holding stand-in
    executables (verify checks that every ExecStart binary exists)."""
    prefix = tmp_path / "prefix"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    for binary in ("python", "nameko"):
        path = prefix / ".venv" / "bin" / binary
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    copies = []
    for source in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.target")):
        copy = tmp_path / source.name
        copy.write_text(source.read_text().replace("/opt/hosting-panel", str(prefix)))
        copies.append(copy)
    result = run("systemd-analyze", "verify", "--man=no", "--generators=no", *copies, cwd=tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    broken = tmp_path / "panel-broken.service"
    broken.write_text(copies[0].read_text().replace("KillSignal=SIGTERM", "KillSignal=SIGBOGUS"))
    assert run("systemd-analyze", "verify", "--man=no", "--generators=no", broken, cwd=tmp_path).stderr.strip()


# -- monitoring -------------------------------------------------------------------------------

def github_anchor(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_severity_summary_and_a_runbook_section_that_exists():
    rules = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yml").read_text())
    anchors = {github_anchor(line.lstrip("#")) for line in (DEPLOY / "README.md").read_text().splitlines()
               if line.startswith("#")}
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.append(rule["alert"])
            assert rule["expr"].strip() and rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            path, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert path == "deploy/README.md" and anchor in anchors, f"{rule['alert']}: no section #{anchor}"
    assert len(names) == len(set(names))
    for required in ("PanelServiceDown", "PanelRpcErrorRate", "PanelRpcLatencyP99High", "PanelOutboxBacklogGrowing",
                     "PanelDeadLetterQueueNotEmpty", "PanelOperationsStuck", "PanelLoginFailureSpike",
                     "PanelPaymentWebhookFailures"):
        assert required in names


def test_prometheus_scrapes_every_component_on_its_metrics_port():
    static = yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in static["scrape_configs"]}
    expected = {f"panel-{c}": [f"{c}:{default_metrics_port(c)}"] for c in COMPONENTS}
    expected["panel-dlq-exporter"] = ["dlq-exporter:9108"]
    assert targets == expected
    assert static["rule_files"] == ["alerts.yml"]
    kubernetes = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-kubernetes.yml").read_text())
    relabel = kubernetes["scrape_configs"][0]["relabel_configs"]
    assert {"target_label": "job", "replacement": "panel-$1",
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]} in relabel


def test_the_dashboard_is_well_formed():
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana" / "hosting-panel.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
