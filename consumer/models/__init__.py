"""Models: the contract, the shipped models and the loader for ``--model``."""

from consumer.models.base import Model, ModelResult, as_result, load_model, resolve_model_class

__all__ = ["Model", "ModelResult", "as_result", "load_model", "resolve_model_class"]
