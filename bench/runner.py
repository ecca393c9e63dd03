"""What every benchmark's ``main`` does: its arguments, a broker and a local Ray cluster, the
machine's description and the JSON it writes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster

RESULTS = Path("bench/results")
RAW_KEYS = ("timeline", "samples", "cdf_ms", "processes_at_peak")
"""Series of raw samples: kept beside the result (``*.raw.json``, not committed), not in it."""


def machine_info() -> dict[str, object]:
    """What a result file says about the machine and the code it was measured on: the
    commit, and whether the code differed from it."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), **code_version()}


CODE = ("consumer", "producer", "schemas", "bench", "tests", "pyproject.toml", "requirements.lock")
"""What a result depends on (the bench takes the tests' harness): a change anywhere else
(docs) leaves it valid. Results themselves are left out (:data:`NOT_CODE`)."""
NOT_CODE = (":(exclude)bench/results", ":(exclude)*.md")
CHECKOUT = Path(__file__).resolve().parents[1]


def code_version() -> dict[str, object]:
    """The checkout's commit and whether its code (:data:`CODE`) has changes not in it;
    None for both outside a git checkout."""

    def git(*args: str) -> str | None:
        done = subprocess.run(
            ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else None

    commit, changed = git("rev-parse", "HEAD"), git("status", "--porcelain", "--", *CODE, *NOT_CODE)
    return {"commit": commit, "uncommitted_changes": None if changed is None else bool(changed)}


def parser(doc: str, *, prog: str | None = None, out: bool = True) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by the first line of ``doc``; with ``out``
    it takes ``--out``, the folder of its results (bench/results)."""
    made = argparse.ArgumentParser(prog=prog, description=doc.strip().splitlines()[0])
    if out:
        made.add_argument("--out", type=Path, default=RESULTS, help="folder of the results")
    return made


@contextlib.contextmanager
def broker_and_cluster(
    spot_nodes: int = 0,
    *,
    broker_log: Path | None = None,
    head_args: dict[str, Any] | None = None,
) -> Iterator[tuple[EmbeddedBroker, LocalCluster]]:
    """The embedded broker and a local Ray head with ``spot_nodes`` one-CPU Spot nodes, all
    stopped (ours only, by pid) on the way out."""
    with (
        EmbeddedBroker(log_file=broker_log) as broker,
        LocalCluster(head_args=head_args) as cluster,
    ):
        for _ in range(spot_nodes):
            cluster.add_spot_node()
        yield broker, cluster


def summary(value: Any) -> Any:
    """``value`` without its series of raw samples (:data:`RAW_KEYS`), at any depth."""
    if isinstance(value, Mapping):
        return {
            k: summary(v)
            for k, v in value.items()
            if not (k in RAW_KEYS and isinstance(v, Mapping | list))
        }
    if isinstance(value, list):
        return [summary(v) for v in value]
    return value


def write_json(path: Path, result: Mapping[str, Any]) -> Path:
    """The summary of ``result`` as ``path`` (its folder made) and the whole of it beside, as
    ``*.raw.json``; the machine first unless the result says it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine_info(), **result}
    path.with_suffix(".raw.json").write_text(json.dumps(document, default=str) + "\n")
    path.write_text(json.dumps(summary(document), indent=2, default=str) + "\n")
    return path
