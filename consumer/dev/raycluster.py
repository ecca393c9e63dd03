"""A multi-node Ray cluster on this machine, for the demo, the tests and the benchmarks.

Worker nodes play Spot instances: each has one CPU and the custom resource ``spot``; they can
be added while work runs (a node arriving) and removed hard (a node lost). Every process is
started on 127.0.0.1 and stopped by the node objects that started it.
"""

from __future__ import annotations

from typing import Any

import consumer  # noqa: F401  (sets the Ray cluster variable before Ray is imported)
from consumer.dev.localserver import StartStop

# Detect a lost node in about 5 s instead of Ray's default of a minute or more.
FAST_HEALTH_CHECKS = {
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
SPOT_RESOURCE = "spot"


class LocalCluster(StartStop):
    """A head with no CPUs (so no worker lands on it) plus Spot nodes added on demand."""

    def __init__(self, *, head_args: dict[str, Any] | None = None) -> None:
        self._head_args = head_args or {}
        self._cluster: Any = None
        self.spot_nodes: list[Any] = []

    @property
    def address(self) -> str:
        """GCS address to pass as ``--ray-address``."""
        assert self._cluster is not None, "cluster not started"
        return str(self._cluster.address)

    def start(self) -> None:
        """Start the head node."""
        if self._cluster is not None:
            return
        from ray.cluster_utils import Cluster

        self._cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "node_ip_address": "127.0.0.1",
                "include_dashboard": False,
                "_system_config": FAST_HEALTH_CHECKS,
                **self._head_args,
            },
        )

    def add_spot_node(self, num_cpus: int = 1, *, spot: int = 1, wait: bool = True) -> Any:
        """Add a one-CPU Spot node (returns Ray's node object, for removal); ``spot``
        workers fit on it (one by default)."""
        node = self._cluster.add_node(
            num_cpus=num_cpus,
            resources={SPOT_RESOURCE: spot},
            node_ip_address="127.0.0.1",
            wait=wait,
        )
        self.spot_nodes.append(node)
        return node

    def gcs_pid(self) -> int:
        """Process id of the head's GCS server (for tests that stop or kill it)."""
        from ray._private import ray_constants

        head = self._cluster.head_node
        return int(head.all_processes[ray_constants.PROCESS_TYPE_GCS_SERVER][0].process.pid)

    def remove_node(self, node: Any, *, graceful: bool = False) -> None:
        """Remove a node; hard by default, as a Spot reclaim without notice."""
        self._cluster.remove_node(node, allow_graceful=graceful)
        self.spot_nodes.remove(node)

    def preempt_notice(self, node: Any, *, deadline_s: float = 30.0) -> None:
        """Mark a node DRAINING as a Spot preemption notice does (it keeps running)."""
        import time

        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.core.generated.autoscaler_pb2 import DrainNodeReason  # type: ignore[attr-defined]

        accepted, error = GcsClient(address=self.address).drain_node(
            node.node_id,
            DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION"),
            "spot preemption notice",
            int((time.time() + deadline_s) * 1000),
        )
        if not accepted:
            raise RuntimeError(f"drain of node {node.node_id} refused: {error}")

    def stop(self) -> None:
        """Stop every process of this cluster; safe twice."""
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.shutdown()
            self.spot_nodes.clear()
