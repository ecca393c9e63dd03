"""``molstream produce`` and ``molstream results`` as a user runs them, against the real broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rdkit import Chem

from consumer.dev.broker import EmbeddedBroker
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Prediction, Status
from tests.harness import publish_raw, read_raw

pytestmark = pytest.mark.integration


def molstream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_produce_publishes_every_format_keyed_by_id(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    (tmp_path / "a.smi").write_text("CCO ethanol\nc1ccccc1 benzene\n")
    (tmp_path / "b.csv").write_text("smiles,id,source\nCC(=O)O,acetic,vendor-x\n")
    with Chem.SDWriter(str(tmp_path / "c.sdf")) as writer:
        mol = Chem.MolFromSmiles("CCN")
        mol.SetProp("_Name", "ethylamine")
        writer.write(mol)
    done = await asyncio.to_thread(
        molstream,
        "produce",
        *(str(tmp_path / f) for f in ("a.smi", "b.csv", "c.sdf")),
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--topic",
        "molecules",
    )
    assert done.returncode == 0, done.stderr
    assert "published 4 molecules" in done.stderr
    records = await read_raw(broker.bootstrap_servers, "molecules")
    decoded = {r.key.decode(): MOLECULE_CODEC.decode(r.value) for r in records}  # type: ignore[attr-defined]
    assert set(decoded) == {"ethanol", "benzene", "acetic", "ethylamine"}
    assert decoded["acetic"].properties == {"source": "vendor-x"}
    assert decoded["ethanol"].submitted_at is not None


async def test_produce_rejects_a_missing_file_before_connecting(tmp_path: Path) -> None:
    done = await asyncio.to_thread(
        molstream, "produce", str(tmp_path / "nope.smi"), "--bootstrap-servers", "127.0.0.1:1"
    )
    assert done.returncode == 2
    assert "no such file" in done.stderr and "Traceback" not in done.stderr


async def test_results_prints_every_field_as_json_lines(broker: EmbeddedBroker) -> None:
    prediction = Prediction(
        id="m1",
        smiles="CCO",
        status=Status.OK,
        outputs={"qed": 0.4},
        error=None,
        model="reference",
        model_version="1.0.0",
        worker="worker-1",
        attempts=1,
        source_topic="molecules",
        source_partition=0,
        source_offset=7,
        produced_at=datetime(2026, 11, 28, tzinfo=UTC),
        latency_ms=12.5,
    )
    await publish_raw(
        broker.bootstrap_servers,
        "predictions",
        [(b"m1", PREDICTION_CODEC.encode(prediction), []), (b"bad", b"not avro", [])],
    )
    done = await asyncio.to_thread(
        molstream,
        "results",
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--timeout-s",
        "2",
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert json.loads(line) == {
        "id": "m1",
        "smiles": "CCO",
        "status": "OK",
        "outputs": {"qed": 0.4},
        "error": None,
        "model": "reference",
        "model_version": "1.0.0",
        "worker": "worker-1",
        "attempts": 1,
        "source_topic": "molecules",
        "source_partition": 0,
        "source_offset": 7,
        "produced_at": "2026-11-28T00:00:00+00:00",
        "latency_ms": 12.5,
    }
    assert "undecodable record" in done.stderr
