"""Wire format of molstream: Avro schemas, typed records and the single-object codec."""

from schemas.codec import MOLECULE_CODEC, PREDICTION_CODEC, Codec, load_schema
from schemas.errors import (
    BadMagicError,
    CorruptBodyError,
    DecodeError,
    EmptyRecordError,
    UnknownSchemaError,
)
from schemas.records import Molecule, Prediction, Status

__all__ = [
    "MOLECULE_CODEC",
    "PREDICTION_CODEC",
    "BadMagicError",
    "Codec",
    "CorruptBodyError",
    "DecodeError",
    "EmptyRecordError",
    "Molecule",
    "Prediction",
    "Status",
    "UnknownSchemaError",
    "load_schema",
]
