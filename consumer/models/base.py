"""The model contract and the loader that turns ``--model`` into a class.

A model is a class constructed once per worker (the expensive load happens in ``__init__``,
with the ``--model-option`` values as keyword string arguments), with ``name``, ``version``
and ``predict(smiles) -> list[ModelResult]``, one result per molecule (a mapping of numbers or
a single number is taken too). An invalid molecule is
a per-item ``INVALID_INPUT`` result, not an exception; an exception fails the whole batch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from consumer.errors import ModelLoadError, ModelOutputError
from schemas import Status

BUILTIN_MODELS = {
    "reference": "consumer.models.reference:ReferenceModel",
    "synthetic": "consumer.models.synthetic:SyntheticModel",
}


@dataclass(frozen=True, slots=True)
class ModelResult:
    """What a model says about one molecule."""

    status: Status
    outputs: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def invalid(cls, error: str) -> ModelResult:
        """An ``INVALID_INPUT`` result with its reason."""
        return cls(Status.INVALID_INPUT, {}, error)


ACCEPTED_RESULTS = "a ModelResult, a mapping of output names to numbers, or a number"


def as_result(value: object, *, plugin: str) -> ModelResult:
    """A model's answer for one molecule as a :class:`ModelResult`: a mapping of numbers is an
    OK result, a single number the output ``value``. Raises :class:`ModelOutputError`,
    naming the plugin, for anything else."""
    if isinstance(value, ModelResult):
        return value
    if _is_number(value):
        return ModelResult(Status.OK, {"value": float(value)})  # type: ignore[arg-type]
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and _is_number(v) for k, v in value.items()
    ):
        return ModelResult(Status.OK, {k: float(v) for k, v in value.items()})
    raise ModelOutputError(
        f"model {plugin!r} returned {type(value).__name__} ({value!r:.80}) for a molecule; "
        f"expected {ACCEPTED_RESULTS}"
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@runtime_checkable
class Model(Protocol):
    """What ``--model`` must name: a class whose instances look like this."""

    name: str
    version: str

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """One result per input, in order (see :func:`as_result` for what else is taken)."""
        ...


def resolve_model_class(spec: str) -> type[Model]:
    """Import the class a spec names: ``reference``, ``synthetic`` or ``module:Class``."""
    target = BUILTIN_MODELS.get(spec, spec)
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise ModelLoadError(
            f"--model {spec!r}: expected one of {sorted(BUILTIN_MODELS)} or 'module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(f"--model {spec!r}: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ModelLoadError(f"--model {spec!r}: {module_name!r} has no class {class_name!r}")
    if not callable(getattr(cls, "predict", None)):
        raise ModelLoadError(f"--model {spec!r}: {class_name} has no predict method")
    return cls


def load_model(spec: str, options: dict[str, str]) -> Model:
    """Construct the model a spec names, passing the ``--model-option`` values."""
    cls = resolve_model_class(spec)
    try:
        model = cls(**options)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"--model {spec!r} rejected options {sorted(options)}: {exc}") from exc
    for attr in ("name", "version"):
        if not isinstance(getattr(model, attr, None), str):
            raise ModelLoadError(f"--model {spec!r}: instance has no string attribute {attr!r}")
    return model
