"""The worker: a Ray actor that holds one model in memory and predicts batches of SMILES."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from consumer.models import ModelResult, as_result, load_model


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Where a worker runs and what it serves; known once the model is loaded."""

    node_id: str
    hostname: str
    pid: int
    model: str
    model_version: str


class ModelWorker:
    """Loads the model once at construction; ``predict`` is called many times.

    Wrapped with ``ray.remote`` by the pool, so this module imports no Ray at module level and
    the class stays testable in one process.
    """

    def __init__(self, model_spec: str, model_options: dict[str, str]) -> None:
        self._spec = model_spec
        self._model = load_model(model_spec, model_options)

    def info(self) -> WorkerInfo:
        """Called once after placement; its answer means the model is loaded."""
        import ray

        return WorkerInfo(
            node_id=ray.get_runtime_context().get_node_id(),
            hostname=socket.gethostname(),
            pid=os.getpid(),
            model=self._model.name,
            model_version=self._model.version,
        )

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """One result per SMILES, in order; a wrong count is a model bug and fails the batch,
        and so is a result of a type no model may return (once, without retries)."""
        results: list[object] = list(self._model.predict(smiles))
        if len(results) != len(smiles):
            raise RuntimeError(f"model returned {len(results)} results for {len(smiles)} inputs")
        return [as_result(r, plugin=self._spec) for r in results]
