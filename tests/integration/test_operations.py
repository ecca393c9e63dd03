"""Operations: Prometheus end to end, TLS to the broker, structured logs. Real broker, real Ray,
real Prometheus."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter as CounterOf
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from aiokafka.errors import KafkaError
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import LocalCluster
from consumer.hooks import Hooks
from consumer.ops.metrics import PrometheusHooks
from consumer.pool.replica import ReplicaState
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from producer.publisher import Publisher
from producer.results import read_predictions
from schemas import MOLECULE_CODEC, DecodeError, Molecule
from schemas.kafka import ProducerSettings
from tests.deploy_exprs import (
    ALERTS,
    REPO_ROOT,
    alert_expressions,
    dashboard_expressions,
    dashboard_panels,
    load_dashboard,
    substitute,
)
from tests.harness import (
    OutputWatcher,
    consume_command,
    consumer_settings,
    publish,
    publish_raw,
    read_raw,
    synthetic_molecules,
    wait_until,
)
from tests.integration.prometheus_server import JOB, PROMTOOL, PrometheusServer, tool
from tests.integration.tls_proxy import TlsTerminator
from tests.plugins import RAISE_MARKER

pytestmark = pytest.mark.integration


def settings_for(bootstrap: str, cluster: LocalCluster, **overrides: object) -> ConsumerSettings:
    return consumer_settings(
        bootstrap, cluster.address, **{"min_workers": 1, "max_workers": 1, **overrides}
    )


# -- Prometheus ----------------------------------------------------------------------------

# The alerts the tests see firing, or never firing in a healthy run.
ABOUT_THE_CONSUMER = ("MolstreamConsumerDown", "MolstreamConsumerAbsent", "MolstreamCommitsStalled")
FAST_FOR = "10s"


def fast_rules(workdir: Path) -> Path:
    """A copy of the shipped alert rules with every ``for`` at :data:`FAST_FOR`, so that a
    test sees an alert fire in seconds; the expressions are the shipped ones."""
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["for"] = FAST_FOR
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "alerts-fast.yml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    return path


def firing(prom: PrometheusServer, alertname: str, window: str = "1h") -> list[dict[str, Any]]:
    """The series of ``alertname`` that fired at any time within ``window``."""
    return prom.query(
        f'max_over_time(ALERTS{{alertname="{alertname}",alertstate="firing"}}[{window}])'
    )


def assert_firing(prom: PrometheusServer, alertname: str) -> None:
    assert prom.query(f'ALERTS{{alertname="{alertname}",alertstate="firing"}}'), alertname


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def assert_promtool_accepts_the_scrape(exposition: str) -> None:
    done = subprocess.run(
        [tool(PROMTOOL), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"promtool check metrics:\n{done.stdout}{done.stderr}"


# Panels that a healthy run must fill: each of their queries returns at least one series.
PANELS_WITH_DATA = (
    "Throughput",
    "Lag per partition",
    "Lag seconds per partition",
    "Commits",
    "Broker errors",
    "Pool by state vs desired",
)


def panel_expressions(title: str) -> list[str]:
    panels = [p for p in dashboard_panels(load_dashboard()) if p.get("title") == title]
    assert len(panels) == 1, f"one dashboard panel titled {title!r}"
    return [substitute(str(t.get("expr", "")).strip()) for t in panels[0].get("targets", [])]


async def eventually(
    check: Callable[[], object], timeout_s: float, message: str, poll_s: float = 1.0
) -> None:
    """Retry a blocking ``check`` (raising AssertionError) in a thread until it passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(check)
            return
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s: {message}: {exc}") from exc
        await asyncio.sleep(poll_s)


def evaluate_everything(prom: PrometheusServer) -> dict[str, list[dict[str, Any]]]:
    """Every dashboard and alert expression, evaluated (raises on any Prometheus error)."""
    exprs = dashboard_expressions() + alert_expressions()
    assert all(exprs), "every target and rule has an expression"
    return {expr: prom.query(expr) for expr in exprs}


def assert_panels_have_data(results: dict[str, list[dict[str, Any]]]) -> None:
    for title in PANELS_WITH_DATA:
        for expr in panel_expressions(title):
            assert results[expr], f"panel {title!r}: {expr} returned no series"
    throughput = panel_expressions("Throughput")[0]
    assert float(results[throughput][0]["value"][1]) > 0, f"{throughput} is 0"
    desired = results[panel_expressions("Pool by state vs desired")[1]]
    assert float(desired[0]["value"][1]) >= 1, desired


def assert_rules_healthy(prom: PrometheusServer) -> None:
    rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
    assert len(rules) == len(alert_expressions())
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule["health"], rule.get("lastError"))


def test_promtool_accepts_the_deployed_config_and_rules() -> None:
    for args in (
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["check", "rules", "deploy/prometheus/alerts.yml"],
        # Each alert fires on its inputs and stays quiet on the others.
        ["test", "rules", "deploy/prometheus/tests/alerts_test.yml"],
    ):
        done = subprocess.run(
            [tool(PROMTOOL), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


async def test_every_dashboard_and_alert_query_evaluates_on_a_live_run(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(3000)
    hooks = PrometheusHooks()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=hooks.registry)
    settings = settings_for(
        broker.bootstrap_servers,
        ray_cluster,
        group_id="prom-test",
        model_option={"per_molecule_ms": "2"},
    )
    # Paced at 150/s: 20 s of input, so the run lasts that long at any worker speed.
    paced = Publisher(
        ProducerSettings(bootstrap_servers=broker.bootstrap_servers),
        topic="molecules",
        rate_per_s=150,
    )
    try:
        rules = [fast_rules(tmp_path / "rules")]
        with PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{port}"], rules) as prom:
            async with (
                OutputWatcher(broker.bootstrap_servers) as out,
                paced,
                StreamProcessor(settings, hooks=hooks),
            ):
                started = time.monotonic()
                producing = asyncio.create_task(paced.publish_all(inputs))
                await eventually(
                    lambda: assert_panels_have_data(evaluate_everything(prom)),
                    90,
                    "throughput, lag and pool panels while the run goes on",
                )
                assert not producing.done(), "queried while molecules were still arriving"
                await asyncio.to_thread(assert_promtool_accepts_the_scrape, scrape(port))
                await producing
                await wait_until(lambda: len(out.ids) >= len(inputs), 180, "every prediction")
                took = time.monotonic() - started
            # After the run: Prometheus saw all of it, and every query still evaluates.
            await eventually(
                lambda: assert_final_counts(prom, len(inputs)), 30, "final counters scraped"
            )
            results = await asyncio.to_thread(evaluate_everything, prom)
            assert_panels_have_data(results)
            print("expressions without data:", [e for e, r in results.items() if not r])
            await eventually(lambda: assert_rules_healthy(prom), 30, "alert rules evaluated")
            # A healthy run: with every `for` at 10 s, the consumer's alerts never fired.
            for name in ABOUT_THE_CONSUMER:
                assert not firing(prom, name), f"{name} fired in a healthy run"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert set(out.ids) == {m.id for m in inputs}
    assert took >= 15, took
    print(f"prometheus run: {took:.1f} s")


def assert_final_counts(prom: PrometheusServer, count: int) -> None:
    consumed = prom.query("sum(molstream_messages_consumed_total)")
    ok = prom.query('sum(molstream_predictions_total{status="OK"})')
    assert consumed and float(consumed[0]["value"][1]) >= count, consumed
    assert ok and float(ok[0]["value"][1]) >= count, ok
    assert prom.query(f'up{{job="{JOB}"}} == 1'), "the consumer target is up"
    info = prom.query('molstream_build_info{model!="", model_version!="", version!=""}')
    assert info, "build info names molstream's version and the model a worker loaded"


def lag_seconds(port: int) -> dict[str, float]:
    """``molstream_consumer_lag_seconds`` by partition, from a scrape of the endpoint."""
    return {
        sample.labels["partition"]: sample.value
        for family in text_string_to_metric_families(scrape(port))
        for sample in family.samples
        if sample.name == "molstream_consumer_lag_seconds"
    }


async def test_lag_seconds_grows_while_a_backlog_waits_and_returns_to_zero(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    hooks = PrometheusHooks()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=hooks.registry)
    settings = settings_for(broker.bootstrap_servers, ray_cluster, group_id="lag-seconds-test")
    inputs = synthetic_molecules(300)
    try:
        async with (
            OutputWatcher(broker.bootstrap_servers) as out,
            StreamProcessor(settings, hooks=hooks),
        ):
            await publish(broker.bootstrap_servers, "molecules", inputs)
            # No Spot node yet: the pool's worker cannot be placed and the backlog waits.
            await wait_until(
                lambda: max(lag_seconds(port).values(), default=0) > 1, 60, "lag seconds above 0"
            )
            first = max(lag_seconds(port).values())
            await asyncio.sleep(3)
            later = max(lag_seconds(port).values())
            assert later >= first + 2, (first, later)
            await asyncio.to_thread(assert_promtool_accepts_the_scrape, scrape(port))
            ray_cluster.add_spot_node()  # from the main thread: Ray installs signal handlers
            await wait_until(lambda: len(out.ids) >= len(inputs), 120, "every prediction")
            await wait_until(
                lambda: set(lag_seconds(port).values()) == {0.0}, 30, "lag seconds back at 0"
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    print(f"lag seconds while waiting: {first:.1f} s, then {later:.1f} s; then 0")


def lag_partitions(hooks: PrometheusHooks) -> set[tuple[str, str]]:
    """(partition, group) of every lag series the hooks export now, records and seconds alike."""
    found: dict[str, set[tuple[str, str]]] = {}
    for family in hooks.registry.collect():
        for sample in family.samples:
            if sample.name in ("molstream_consumer_lag", "molstream_consumer_lag_seconds"):
                found.setdefault(sample.name, set()).add(
                    (sample.labels["partition"], sample.labels["group"])
                )
    records, seconds = (
        found.get("molstream_consumer_lag", set()),
        found.get("molstream_consumer_lag_seconds", set()),
    )
    assert records == seconds, (records, seconds)
    return records


def split_between(one: set[Any], other: set[Any], everything: set[Any]) -> bool:
    """Both hold some, together all, none twice."""
    return bool(one and other and one | other == everything and not one & other)


async def test_lag_series_follow_the_partitions_a_consumer_holds(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    """A second member joins the group: the partitions it takes leave the first member's
    series (no two series for one partition); when it leaves, the first holds them all again."""
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(200)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(broker.bootstrap_servers, ray_cluster, group_id="lag-series-test")
    first, second = PrometheusHooks(), PrometheusHooks()
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings, hooks=first),
    ):
        await wait_until(lambda: len(out.ids) >= len(inputs), 120, "every prediction")
        # The series come with the scaling loop's next lag reading, which may trail the work.
        await wait_until(lambda: len(lag_partitions(first)) >= 4, 30, "a series per partition")
        everything = lag_partitions(first)
        assert len(everything) >= 2 and {g for _, g in everything} == {"lag-series-test"}
        async with StreamProcessor(settings, hooks=second):
            await wait_until(
                lambda: split_between(lag_partitions(first), lag_partitions(second), everything),
                60,
                "the partitions split between the two members, each series once",
            )
            split = (len(lag_partitions(first)), len(lag_partitions(second)))
        await wait_until(lambda: lag_partitions(first) == everything, 60, "all back to the first")
    print(f"lag series of {len(everything)} partitions split {split[0]} + {split[1]}, then back")


async def test_commits_stalled_then_consumer_down_alerts_fire(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    """A real ``molstream consume`` whose workers never come (no node offers the "spot" resource
    they need): records wait, nothing is committed, and MolstreamCommitsStalled fires; once the
    process is killed, MolstreamConsumerDown fires."""
    await publish(broker.bootstrap_servers, "molecules", synthetic_molecules(50))
    port = free_port()
    argv = consume_command(
        broker.bootstrap_servers,
        ray_cluster.address,
        *("--group-id", "stall-test", "--metrics-port", str(port), "--max-workers", "1"),
    )
    rules = [fast_rules(tmp_path / "rules")]
    with (
        PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{port}"], rules) as prom,
        logged_process(argv, tmp_path / "stdout.log", tmp_path / "stderr.log") as proc,
    ):
        started = time.monotonic()
        await eventually(
            lambda: assert_firing(prom, "MolstreamCommitsStalled"), 120, "commits stalled"
        )
        stalled_after = time.monotonic() - started
        assert not firing(prom, "MolstreamConsumerDown"), "the consumer is up"
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
        killed = time.monotonic()
        await eventually(lambda: assert_firing(prom, "MolstreamConsumerDown"), 60, "down")
        down_after = time.monotonic() - killed
    print(
        f"commits stalled fired {stalled_after:.1f} s after start, "
        f"consumer down {down_after:.1f} s after the kill"
    )


# -- Ray worker nodes on SIGTERM ----------------------------------------------------------


class BatchesByWorker(Hooks):
    def __init__(self) -> None:
        self.by_worker: CounterOf[str] = CounterOf()
        self.failures: CounterOf[str] = CounterOf()

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.by_worker[worker] += 1

    def worker_failure(self, reason: str) -> None:
        self.failures[reason] += 1


async def test_sigterm_to_a_ray_worker_node_drains_it_through_ray(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    """deploy/kuberay/raycluster.yaml's worker pods on a Spot interruption: SIGTERM reaches the
    node's main process (``ray start --block`` there), which marks the node DRAINING; the pool
    gives it no new batch and stops its worker after the running one; the node, now idle,
    exits long before the drain timeout; nothing is lost and no worker counts as failed."""
    ray_cluster.add_spot_node()  # a node that stays
    drain_timeout_s = 60.0
    inputs = synthetic_molecules(4000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    hooks = BatchesByWorker()
    settings = settings_for(
        broker.bootstrap_servers,
        ray_cluster,
        group_id="sigterm-drain-test",
        min_workers=2,
        max_workers=2,
        model_option={"per_molecule_ms": "2"},
    )
    # A Spot worker node as a KubeRay pod runs it (see ray_node_process.py), no pre-stop hook.
    env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": str(drain_timeout_s)}
    argv = [sys.executable, "-m", "tests.integration.ray_node_process", ray_cluster.address]
    log_path = tmp_path / "spot-node.log"
    with logged_process(argv, tmp_path / "spot-node.out", log_path, env) as node:
        async with (
            OutputWatcher(broker.bootstrap_servers) as out,
            StreamProcessor(settings, hooks=hooks) as proc,
        ):
            await wait_until(lambda: len(hooks.by_worker) == 2, 90, "a worker on each node busy")
            stays = {n.node_id for n in ray_cluster.spot_nodes}
            (victim,) = [w for w in proc.pool.workers() if w.node_id not in stays]
            node.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await wait_until(
                lambda: victim.state in (ReplicaState.DRAINING, ReplicaState.STOPPED),
                15,
                "the pool sees the node draining",
            )
            seen_after = time.monotonic() - signalled
            batches_at_notice = hooks.by_worker[victim.name]
            await asyncio.to_thread(node.wait, drain_timeout_s + 10)
            exited_after = time.monotonic() - signalled
            await wait_until(lambda: len(out.ids) >= len(inputs), 180, "every molecule")
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert set(out.ids) == {m.id for m in inputs}
    assert hooks.by_worker[victim.name] <= batches_at_notice + 1, "no new batch after the notice"
    assert exited_after < drain_timeout_s / 2, f"the node did not empty: {exited_after:.1f} s"
    assert "finished draining" in log, log[-2000:]
    assert not hooks.failures, hooks.failures
    print(f"draining seen {seen_after:.1f} s after SIGTERM; node gone after {exited_after:.1f} s")


# -- Producer settings --------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip", "none"])
async def test_the_broker_takes_compressed_batches(
    broker: EmbeddedBroker, compression: str
) -> None:
    """zstd is the default: aiokafka compresses with cramjam (pinned), the embedded broker
    stores the batches and a reader gets every record back."""
    kafka = ProducerSettings(bootstrap_servers=broker.bootstrap_servers)
    assert kafka.compression_type == "zstd"
    inputs = synthetic_molecules(300)
    topic = f"compressed-{compression}"
    settings = kafka.model_copy(update={"compression_type": compression, "linger_ms": 50})
    async with Publisher(settings, topic=topic) as pub:
        await pub.publish_all(inputs)
    records = await read_raw(broker.bootstrap_servers, topic)
    decoded = [MOLECULE_CODEC.decode(r.value) for r in records]  # type: ignore[attr-defined]
    assert sorted(m.id for m in decoded) == sorted(m.id for m in inputs)


# -- TLS -----------------------------------------------------------------------------------


async def test_tls_end_to_end(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    """Producer, consumer and reader all speak TLS, verified against a test CA; see
    tests/integration/tls_proxy.py for why TLS is terminated in front of the broker."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cafile, certfile, keyfile = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(cafile))
    server_cert.cert_chain_pems[0].write_to_path(str(certfile))
    server_cert.private_key_pem.write_to_path(str(keyfile))
    tls_port = free_port()
    with EmbeddedBroker(advertised_port=tls_port, log_file=tmp_path / "broker.log") as broker:
        async with TlsTerminator(
            port=tls_port, upstream_port=broker.port, cert=certfile, key=keyfile
        ):
            tls = ProducerSettings(
                bootstrap_servers=broker.bootstrap_servers,
                security_protocol="SSL",
                ssl_cafile=str(cafile),
            )
            plain = ProducerSettings(bootstrap_servers=broker.bootstrap_servers, broker_timeout_s=3)
            asked = time.monotonic()
            with pytest.raises((KafkaError, TimeoutError)):
                await Publisher(plain, topic="molecules").start()
            assert time.monotonic() - asked < 10, "a plaintext client fails within its timeout"

            inputs = synthetic_molecules(300)
            async with Publisher(tls, topic="molecules") as pub:
                await pub.publish_all(inputs)
            ray_cluster.add_spot_node()
            settings = settings_for(
                broker.bootstrap_servers,
                ray_cluster,
                group_id="tls-test",
                security_protocol="SSL",
                ssl_cafile=str(cafile),
            )
            ids: set[str] = set()
            async with StreamProcessor(settings), asyncio.timeout(180):
                async for p in read_predictions(
                    tls, topic="predictions", max_count=len(inputs), timeout_s=120
                ):
                    assert not isinstance(p, DecodeError), p
                    ids.add(p.id)
    assert ids == {m.id for m in inputs}


# -- Logs ----------------------------------------------------------------------------------


@dataclass
class ConsumerRun:
    """What ``molstream consume --log-format json`` printed during a short run."""

    returncode: int
    stderr: list[str]
    stdout: list[str]
    records: list[dict[str, Any]]  # stderr lines that are JSON objects
    other: list[str]  # stderr lines that are not


BAD_RECORDS = 5
Raw = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]  # key, value, headers


@contextmanager
def logged_process(
    argv: list[str], stdout: Path, stderr: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` with its output in files; killed by pid if the test leaves it running."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=REPO_ROOT, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def run_consumer(broker: EmbeddedBroker, cluster: LocalCluster, workdir: Path) -> ConsumerRun:
    inputs = synthetic_molecules(500)
    poison = Molecule(id="raise-1", smiles=RAISE_MARKER)  # for lines about failed batches
    good: list[Raw] = [(m.id.encode(), MOLECULE_CODEC.encode(m), []) for m in [*inputs, poison]]
    bad: list[Raw] = [(f"bad-{i}".encode(), b"\x00\x01not avro", []) for i in range(BAD_RECORDS)]
    await publish_raw(broker.bootstrap_servers, "molecules", good[:100] + bad + good[100:])
    argv = consume_command(
        broker.bootstrap_servers,
        cluster.address,
        *("--model", "tests.plugins:KillerModel", "--max-workers", "1"),
        *("--group-id", "logs-test", "--commit-interval-s", "0.2"),
    )
    err_path, out_path = workdir / "stderr.log", workdir / "stdout.log"
    async with OutputWatcher(broker.bootstrap_servers) as out:
        with logged_process(argv, out_path, err_path) as proc:
            await wait_until(lambda: len(out.ids) >= len(inputs) + 1, 180, "predictions")
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 60)
    stderr = err_path.read_text(encoding="utf-8", errors="replace").splitlines()
    parsed: list[dict[str, Any]] = []
    other: list[str] = []
    for line in stderr:
        try:
            value = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if isinstance(value, dict):
            parsed.append(value)
        else:
            other.append(line)
    stdout = out_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return ConsumerRun(code, stderr, stdout, parsed, other)


@pytest.fixture(scope="module")
def consumer_run(tmp_path_factory: pytest.TempPathFactory) -> ConsumerRun:
    """One short ``molstream consume`` run shared by the log tests; everything it started is
    stopped before the tests look at its output."""
    with EmbeddedBroker() as broker, LocalCluster() as cluster:
        cluster.add_spot_node()
        return asyncio.run(run_consumer(broker, cluster, tmp_path_factory.mktemp("logs")))


def test_every_stderr_line_of_the_consumer_is_json(consumer_run: ConsumerRun) -> None:
    assert consumer_run.returncode == 0
    assert consumer_run.records, "the consumer logged"
    assert not consumer_run.stdout, "logs go to stderr, stdout stays empty"
    assert not consumer_run.other, (
        f"{len(consumer_run.other)} of {len(consumer_run.stderr)} stderr lines are not JSON "
        f"objects:\n" + "\n".join(consumer_run.other[:20])
    )


def test_stdlib_log_records_become_json_lines_too() -> None:
    probe = (
        "import logging; from consumer.ops.logs import configure_logging; "
        "configure_logging('json'); logging.getLogger('aiokafka').warning('probe %d', 1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines, "the warning was printed"
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}") from None
        assert record["level"] == "warning" and "probe 1" in record["event"], record
        assert "timestamp" in record, record


def test_lines_about_records_and_workers_carry_their_context(consumer_run: ConsumerRun) -> None:
    records = consumer_run.records
    for r in records:
        assert {"level", "timestamp", "event"} <= r.keys(), r
        assert datetime.fromisoformat(r["timestamp"]).utcoffset() is not None, r
    undecodable = [r for r in records if r["event"] == "undecodable record"]
    assert len(undecodable) == BAD_RECORDS
    for r in undecodable:
        assert r["level"] == "warning"
        assert r["topic"] == "molecules", r
        assert isinstance(r["partition"], int) and isinstance(r["offset"], int), r
    assert len({(r["partition"], r["offset"]) for r in undecodable}) == BAD_RECORDS
    workers = [r for r in records if str(r["event"]).startswith("worker ")]
    assert any(r["event"] == "worker ready" for r in workers), records
    naming = workers + [r for r in records if "worker" in r]
    missing = [r for r in naming if not r.get("worker") or not r.get("node")]
    assert not missing, f"lines about workers without worker and node: {missing[:5]}"


def test_a_clean_run_logs_no_error(consumer_run: ConsumerRun) -> None:
    errors = [r for r in consumer_run.records if r["level"] in ("error", "critical")]
    assert not errors, errors


def test_lines_about_batches_carry_a_batch_id(consumer_run: ConsumerRun) -> None:
    batches = [r for r in consumer_run.records if "batch" in str(r["event"])]
    assert batches, "the failing batch was logged"
    assert all(r.get("batch_id") for r in batches), batches[:5]
