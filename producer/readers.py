"""Reading molecules from files: .smi, .csv and .sdf (pure parsing, no Kafka)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from schemas import Molecule

Format = Literal["auto", "smi", "csv", "sdf"]
_SUFFIXES: dict[str, Format] = {".smi": "smi", ".smiles": "smi", ".csv": "csv", ".sdf": "sdf"}


class ReadError(ValueError):
    """Raised when a file cannot be read as the format it was given or named."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record of the file that could not become a molecule, and why."""

    path: Path
    position: int
    reason: str


def detect_format(path: Path, fmt: Format = "auto") -> Format:
    """The format to read ``path`` as: the given one, or from the file name's suffix."""
    if fmt != "auto":
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ReadError(f"{path}: cannot tell the format from {path.suffix!r}; pass --format")
    return found


def read_molecules(
    path: Path,
    fmt: Format = "auto",
    *,
    smiles_column: str = "smiles",
    id_column: str = "id",
    skipped: list[Skipped] | None = None,
) -> Iterator[Molecule]:
    """Molecules of a file, in file order. Records that cannot be read go to ``skipped``."""
    kind = detect_format(path, fmt)
    if not path.is_file():
        raise ReadError(f"{path}: no such file")
    sink = skipped if skipped is not None else []
    if kind == "smi":
        yield from _read_smi(path, sink)
    elif kind == "csv":
        yield from _read_csv(path, smiles_column, id_column, sink)
    else:
        yield from _read_sdf(path, sink)


def _read_smi(path: Path, skipped: list[Skipped]) -> Iterator[Molecule]:
    # As RDKit reads SMILES files: SMILES, then an optional name, whitespace separated.
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if fields[0].upper() == "SMILES" and line_no == 1:
                continue  # a header line
            name = fields[1] if len(fields) > 1 else f"{path.stem}:{line_no}"
            yield Molecule(id=name, smiles=fields[0])


def _read_csv(
    path: Path, smiles_column: str, id_column: str, skipped: list[Skipped]
) -> Iterator[Molecule]:
    # utf-8-sig: spreadsheet exports start with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if smiles_column not in columns:
            raise ReadError(
                f"{path}: no column {smiles_column!r} (columns: {', '.join(columns)}); "
                "pass --smiles-column"
            )
        for row_no, row in enumerate(reader, 2):
            smiles = (row.get(smiles_column) or "").strip()
            if not smiles:
                skipped.append(Skipped(path, row_no, f"empty {smiles_column!r}"))
                continue
            mol_id = (row.get(id_column) or "").strip() or f"{path.stem}:{row_no}"
            props = {
                k: v
                for k, v in row.items()
                if k not in (smiles_column, id_column) and k is not None and v is not None
            }
            yield Molecule(id=mol_id, smiles=smiles, properties=props)


def _read_sdf(path: Path, skipped: list[Skipped]) -> Iterator[Molecule]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    with path.open("rb") as fh:
        for index, mol in enumerate(Chem.ForwardSDMolSupplier(fh), 1):
            if mol is None:
                skipped.append(Skipped(path, index, "RDKit could not read the record"))
                continue
            # GetProp keeps the text as written ("007" stays "007"); GetPropsAsDict parses numbers.
            props = {k: mol.GetProp(k) for k in mol.GetPropNames()}
            name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
            mol_id = name or props.pop("id", "") or f"{path.stem}:{index}"
            props.pop("id", None)
            yield Molecule(id=mol_id, smiles=Chem.MolToSmiles(mol), properties=props)
