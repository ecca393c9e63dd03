"""A Spot capacity drought at full length, with the default group timing.

Run: ``.venv/bin/python -m bench.drought [--drought-s 330] [--molecules 6000]``. Prints a
summary, writes ``drought.json`` and ``drought.png`` (``--out``, default bench/results).

The scenario of issue 9 as a user met it: a backlog larger than ``--max-in-flight``, no Spot
node for longer than aiokafka's ``max_poll_interval_ms`` (300 s by default, the setting
``--max-poll-interval-s``), then two nodes. ``molstream consume`` runs as a process with its
default settings; every second the bench reads its ``/healthz`` (how long ago it last polled
Kafka) and counts predictions; at the end it counts duplicates and the rebalances it logged.
The test suite runs the same scenario with a 20 s poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import runner
from bench.harness import consumer_process, terminate
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import LocalCluster
from consumer.settings import ConsumerSettings
from tests.harness import OutputWatcher, consume_command, publish, synthetic_molecules


def _polled_s_ago(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            body = answer.read()
    except OSError as exc:  # 503 (HTTPError is an OSError) still carries the body
        body = getattr(exc, "read", lambda: b"")()
    value = json.loads(body or b"{}").get("polled_s_ago") if body else None
    return float(value) if value is not None else None


async def _run(
    args: argparse.Namespace, broker: EmbeddedBroker, cluster: LocalCluster
) -> dict[str, Any]:
    inputs = synthetic_molecules(args.molecules)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    port = free_port()
    argv = consume_command(
        broker.bootstrap_servers,
        cluster.address,
        *("--model", "synthetic", "--max-workers", "2", "--metrics-port", str(port)),
    )
    log_path = Path(tempfile.mkdtemp(prefix="molstream-drought-")) / "consumer.log"
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        consumer_process(argv, log_path) as consumer,
    ):
        samples = await _watch(args, cluster, port, out, consumer, len(inputs))
        await asyncio.sleep(2)  # a duplicate would arrive now
        code = await terminate(consumer)
    result = _result(args, samples, _events(log_path), out)
    return {
        "molecules": len(inputs),
        **result,
        "exit_code": code,
        "log": str(log_path),
        "samples": samples,
    }


async def _watch(
    args: argparse.Namespace,
    cluster: LocalCluster,
    port: int,
    out: OutputWatcher,
    consumer: asyncio.subprocess.Process,
    goal: int,
) -> list[dict[str, Any]]:
    """Every second until ``goal`` predictions (or the timeout): the consumer's time since
    its last poll and the count; two Spot nodes added once the drought is over."""
    samples: list[dict[str, Any]] = []
    started, nodes_added = time.monotonic(), False
    while len(out.ids) < goal and consumer.returncode is None:
        now = time.monotonic() - started
        if not nodes_added and now >= args.drought_s:
            for _ in range(2):  # blocks this process for seconds, not the consumer
                cluster.add_spot_node(wait=False)
            nodes_added = True
        polled = await asyncio.to_thread(_polled_s_ago, port)
        samples.append({"t_s": now, "polled_s_ago": polled, "predicted": len(out.ids)})
        if now > args.drought_s + args.timeout_s:
            break
        await asyncio.sleep(1.0)
    return samples


def _events(log_path: Path) -> list[dict[str, Any]]:
    """The consumer's JSON log events before its SIGTERM (the shutdown's own leave is no
    rebalance)."""
    events = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    stop_at = next((i for i, e in enumerate(events) if e.get("event") == "shutting down"), None)
    return events[:stop_at]


def _result(
    args: argparse.Namespace,
    samples: list[dict[str, Any]],
    events: list[dict[str, Any]],
    out: OutputWatcher,
) -> dict[str, Any]:
    """What the run shows: predictions, duplicates, rebalances, the longest poll gap."""
    defaults = ConsumerSettings()
    gaps: list[float] = [s["polled_s_ago"] for s in samples if s["polled_s_ago"] is not None]
    return {
        "drought_s": args.drought_s,
        "max_poll_interval_s": defaults.max_poll_interval_s,
        "max_in_flight": defaults.max_in_flight,
        "predicted": len(out.ids),
        "duplicates": out.duplicates(),
        "revokes": sum(1 for e in events if e.get("event") == "partitions revoked"),
        "group_errors": sum(
            1 for e in events if "UnknownMemberId" in str(e) or "CommitFailed" in str(e)
        ),
        "max_polled_s_ago": max(gaps),
        "done_s": samples[-1]["t_s"],
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    t = [s["t_s"] for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    top.plot(t, [s["predicted"] for s in samples])
    top.set_ylabel("molecules predicted")
    top.axvline(result["drought_s"], color="grey", linestyle="--", label="two Spot nodes arrive")
    top.legend(loc="upper left")
    polled = [(s["t_s"], s["polled_s_ago"]) for s in samples if s["polled_s_ago"] is not None]
    bottom.plot(*zip(*polled, strict=True), label="time since the consumer's last poll")
    bottom.axhline(result["max_poll_interval_s"], color="red", label="max_poll_interval")
    bottom.set_yscale("log")
    bottom.set_ylabel("seconds")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="center left")
    fig.suptitle(
        f"Spot drought of {result['drought_s']:g} s, default settings: "
        f"{result['duplicates']} duplicates, {result['revokes']} rebalances"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    """Run the drought once; print, write JSON and PNG."""
    parser = runner.parser(__doc__)
    parser.add_argument("--drought-s", type=float, default=330.0)
    parser.add_argument("--molecules", type=int, default=6000)
    parser.add_argument("--timeout-s", type=float, default=300.0, help="after the drought")
    args = parser.parse_args()
    with runner.broker_and_cluster() as (broker, cluster):
        result = asyncio.run(_run(args, broker, cluster))
    runner.write_json(args.out / "drought.json", result)
    print(f"the consumer's log: {result['log']}")
    _plot(result, args.out / "drought.png")
    print(
        f"drought {result['drought_s']:g} s (max poll interval {result['max_poll_interval_s']:g}"
        f" s, max in flight {result['max_in_flight']}): {result['predicted']}/"
        f"{result['molecules']} predicted, {result['duplicates']} duplicates, "
        f"{result['revokes']} rebalances, {result['group_errors']} group errors logged, "
        f"longest time between polls {result['max_polled_s_ago']:.2f} s, done after "
        f"{result['done_s']:.0f} s, exit code {result['exit_code']}"
    )


if __name__ == "__main__":
    main()
