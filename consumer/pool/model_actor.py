"""The worker: a Ray actor that holds one model in memory and does a batch's per-record work."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consumer.models import load_model
from consumer.pool.batch_work import compute
from consumer.state.work_messages import WorkRequest, pack, unpack

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Where a worker runs and what it serves; known once the model is loaded."""

    node_id: str
    hostname: str
    pid: int
    model: str
    model_version: str


class ModelWorker:
    """Loads the model once at construction; ``process`` is called many times (by up to
    ``--worker-concurrency`` threads at once).

    Wrapped with ``ray.remote`` by the pool, so this module imports no Ray at module level and
    the class stays testable in one process.
    """

    def __init__(
        self,
        name: str,
        model_spec: str,
        model_options: dict[str, str],
        tracing_env: dict[str, str] | None = None,
    ) -> None:
        self._name = name
        self._spec = model_spec
        self._model = load_model(model_spec, model_options)
        self._tracer: Tracer | None = None
        if tracing_env is not None:  # the consumer's OTEL_* settings: export as it does
            os.environ.update(tracing_env)
            from consumer.ops.tracing import Tracer

            self._tracer = Tracer("molstream-worker")

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

    def process(self, payload: bytes) -> bytes:
        """Decode, predict and encode one batch: a packed
        :class:`~consumer.state.work_messages.WorkRequest` in, a packed
        :class:`~consumer.state.work_messages.WorkResult` out (see
        :func:`consumer.pool.batch_work.compute`); a wrong count of results or a result of a type no
        model may return fails the batch."""
        request = unpack(payload, WorkRequest)
        tracer = self._tracer
        if tracer is None or request.trace is None:
            return pack(compute(request, self._model, plugin=self._spec, worker=self._name))
        with tracer.remote(request.trace, "molstream.worker"):
            result = compute(
                request, self._model, plugin=self._spec, worker=self._name, trace=tracer
            )
        return pack(result)
