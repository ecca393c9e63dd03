"""Issue 4 acceptance with Ray's own autoscaler (fake multi-node provider): a backlog makes
the pool request and receive more nodes, an empty backlog lets them go again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Molecule
from tests.harness import OutputWatcher, publish, wait_until

pytestmark = pytest.mark.integration

MAX_NODES = 3


def autoscaling_config(path: Path, gcs_port: int) -> Path:
    """A cluster config for the fake multi-node provider: Spot nodes of one CPU."""
    config = {
        "cluster_name": "molstream-test",
        "max_workers": MAX_NODES,
        "idle_timeout_minutes": 0.1,
        "upscaling_speed": 10.0,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": f"127.0.0.1:{gcs_port}",
        },
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "spot": {
                "resources": {"CPU": 1, SPOT_RESOURCE: 1},
                "node_config": {},
                "min_workers": 0,
                "max_workers": MAX_NODES,
            },
        },
        "auth": {"ssh_user": "ubuntu"},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def autoscaling_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    """A head whose autoscaler launches one-CPU Spot nodes as local processes."""
    monkeypatch.setenv("RAY_FAKE_CLUSTER", "1")
    monkeypatch.setenv("AUTOSCALER_UPDATE_INTERVAL_S", "1")
    monkeypatch.setenv("RAY_enable_autoscaler_v2", "0")
    gcs_port = free_port()
    config = autoscaling_config(tmp_path / "autoscaler.json", gcs_port)
    cluster = LocalCluster(
        head_args={"autoscaling_config": str(config), "gcs_server_port": gcs_port}
    )
    cluster.start()
    try:
        yield cluster
    finally:
        # Nodes the autoscaler launched outlive the head (shutdown_at_exit=False): collect
        # our descendants first, then stop what is left of them by pid.
        ours = psutil.Process().children(recursive=True)
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
        for proc in ours:
            if proc.is_running():
                proc.kill()
        psutil.wait_procs(ours, timeout=10)


def spot_nodes_alive() -> int:
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sum(1 for n in nodes if n["Alive"] and n["Resources"].get(SPOT_RESOURCE, 0) > 0)


async def test_backlog_brings_nodes_and_an_empty_backlog_lets_them_go(
    broker: EmbeddedBroker, autoscaling_cluster: LocalCluster
) -> None:
    settings = ConsumerSettings(
        bootstrap_servers=broker.bootstrap_servers,
        ray_address=autoscaling_cluster.address,
        worker_resources={SPOT_RESOURCE: 1},
        model="synthetic",
        model_option={"per_molecule_ms": "3"},
        min_workers=1,
        max_workers=MAX_NODES,
        batch_size=32,
        autoscale_interval_s=0.5,
        upscale_delay_s=1,
        downscale_delay_s=2,
        target_drain_s=5,
        commit_interval_s=0.2,
        group_id="autoscaler-test",
    )
    seen_max = 0
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        await wait_until(lambda: spot_nodes_alive() == 1, 60, "one node for min_workers=1")
        inputs = [Molecule(id=f"a{i}", smiles="CCO") for i in range(8000)]
        await publish(broker.bootstrap_servers, "molecules", inputs)

        def grown() -> bool:
            nonlocal seen_max
            seen_max = max(seen_max, spot_nodes_alive())
            return seen_max >= MAX_NODES

        await wait_until(grown, 90, f"the autoscaler brings {MAX_NODES} nodes")
        await wait_until(lambda: len(out.ids) >= len(inputs), 180, "every molecule")
        await wait_until(lambda: proc.autoscaler.state.desired == 1, 30, "pool shrinks")
        await wait_until(lambda: spot_nodes_alive() == 1, 90, "idle nodes released")
    assert set(out.ids) == {m.id for m in inputs}
    assert seen_max == MAX_NODES
