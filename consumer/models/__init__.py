"""Models: the contract, the shipped models and the loader for ``--model``."""

from consumer.models.base import Model, ModelResult, load_model, resolve_model_class

__all__ = ["Model", "ModelResult", "load_model", "resolve_model_class"]
