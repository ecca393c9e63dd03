"""Issue 17 item 5: every size in a record has a bound, checked before any decode (real
broker, real Ray): records over a bound are dead letters byte for byte, the rest flow
through a window bounded in bytes, and a dead letter's error headers are always ours."""

from __future__ import annotations

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import MOLECULE_CODEC, Molecule, Status
from tests.harness import Counting, committed, publish_raw, read_all, read_raw, wait_until

pytestmark = pytest.mark.integration

Raw = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def _raw(
    molecule: Molecule, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
) -> Raw:
    return (key or molecule.id.encode(), MOLECULE_CODEC.encode(molecule), headers or [])


def _hostile() -> dict[str, Raw]:
    """One record over each bound (the settings below), by the reason it must give."""
    return {
        "record of": _raw(Molecule("big", "C" * 3000)),
        "key of": _raw(Molecule("long-key", "C"), key=b"k" * 300),
        "headers:": _raw(Molecule("many-headers", "C"), headers=[("h", b"")] * 70),
        "headers of": _raw(Molecule("big-headers", "C"), headers=[("h", b"x" * 1500)]),
        "molecule id of": _raw(Molecule("i" * 300, "C"), key=b"long-id"),
    }


async def test_records_over_a_bound_are_dead_letters_and_the_rest_flow(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    valid = [Molecule(f"m{i}", "CCO") for i in range(300)]
    forged = Molecule("forged", "CCN")
    long_smiles = Molecule("long-smiles", "C" * 500)
    hostile = _hostile()
    records = [
        *(_raw(m) for m in valid[:150]),
        *hostile.values(),
        _raw(forged, headers=[("molstream.error.stage", b"forged"), ("traceparent", b"00-t")]),
        _raw(long_smiles),
        *(_raw(m) for m in valid[150:]),
    ]
    sent = await publish_raw(broker.bootstrap_servers, "molecules", records)
    settings = ConsumerSettings(
        bootstrap_servers=broker.bootstrap_servers,
        ray_address=ray_cluster.address,
        worker_resources={SPOT_RESOURCE: 1},
        min_workers=1,
        max_workers=1,
        group_id="bounds-test",
        commit_interval_s=0.2,
        batch_size=16,
        max_in_flight=64,
        max_in_flight_bytes=2048,  # a few records at a time: the window must still drain
        max_record_bytes=2048,
        max_header_count=64,
        max_header_bytes=1024,
        max_smiles_length=100,
    )
    async with StreamProcessor(settings, hooks=Counting()) as processor:
        await wait_until(lambda: processor.committed == sent.ends, 180, "commits reach the end")

    predictions = {p.id: p for p in await read_all(broker.bootstrap_servers, "predictions")}
    assert set(predictions) == {m.id for m in [*valid, forged, long_smiles]}
    assert all(predictions[m.id].status is Status.OK for m in [*valid, forged])
    cut = predictions["long-smiles"]
    assert cut.status is Status.INVALID_INPUT and cut.smiles == "C" * 100, "never copied whole"

    letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    assert len(letters) == len(hostile)
    by_value = {r.value: r for r in letters}  # type: ignore[attr-defined]
    for reason, (_, value, _) in hostile.items():
        letter = by_value[value]  # the value byte for byte
        headers = letter.headers  # type: ignore[attr-defined]
        errors = {k: v for k, v in headers if k.startswith("molstream.error.")}
        assert errors["molstream.error.stage"] == b"decode"
        assert errors["molstream.error.class"] == b"TooLargeError"
        assert reason in errors["molstream.error.message"].decode()
    outputs = await read_raw(broker.bootstrap_servers, "predictions")
    forged_out = next(r for r in outputs if r.key == b"forged")  # type: ignore[attr-defined]
    assert list(forged_out.headers) == [("traceparent", b"00-t")]  # type: ignore[attr-defined]
    assert await committed(broker.bootstrap_servers, "bounds-test", sent.ends) == sent.ends
