"""A Spot worker node in a process of its own, as ``ray start --block`` runs it in a pod.

``python -m tests.integration.ray_node_process GCS_ADDRESS`` starts a worker node (one CPU,
``{"spot": 1}``, on 127.0.0.1) the way ``ray start --block`` does (``Node(head=False,
shutdown_at_exit=True)``, whose SIGTERM handler drains the node through Ray for
``RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S`` before stopping its processes), then blocks until
signalled. The ``ray start`` command itself cannot be used here: it joins a cluster only with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1``, and then it swaps 127.0.0.1 for the host's address.
"""

from __future__ import annotations

import sys
import time

import consumer  # noqa: F401  (sets the Ray cluster variable before Ray is imported)


def main(gcs_address: str) -> None:
    import ray._private.node
    import ray._private.parameter

    params = ray._private.parameter.RayParams(
        gcs_address=gcs_address,
        node_ip_address="127.0.0.1",
        num_cpus=1,
        num_gpus=0,
        resources={"spot": 1},
        object_store_memory=150 * 1024 * 1024,
        min_worker_port=0,
        max_worker_port=0,
        node_manager_port=0,
    )
    params.dashboard_agent_listen_port = None
    ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print("node started", flush=True)
    while True:  # as `ray start --block`: the SIGTERM handler drains, then exits
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1])
