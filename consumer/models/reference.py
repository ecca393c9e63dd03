"""The reference model: RDKit descriptors, drug-likeness, Delaney ESOL and PAINS alerts."""

from __future__ import annotations

from rdkit import Chem, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from consumer.models.base import ModelResult
from schemas import Status

OUTPUTS = (
    "mol_weight",
    "clogp",
    "tpsa",
    "hbd",
    "hba",
    "rotatable_bonds",
    "qed",
    "esol_logs",
    "lipinski_violations",
    "pains_alerts",
)


def esol_log_s(
    clogp: float, mol_weight: float, rotatable_bonds: int, aromatic_prop: float
) -> float:
    """Delaney (2004) ESOL: log S = 0.16 - 0.63 cLogP - 0.0062 MW + 0.066 RB - 0.74 AP.

    Delaney fitted with Daylight's cLogP; Crippen's is the usual open substitute.
    """
    return (
        0.16 - 0.63 * clogp - 0.0062 * mol_weight + 0.066 * rotatable_bonds - 0.74 * aromatic_prop
    )


class ReferenceModel:
    """Descriptor model, one RDKit molecule per input; the PAINS catalog loads once."""

    name = "reference"
    version = "1.0.0"

    def __init__(self) -> None:
        RDLogger.DisableLog("rdApp.*")  # invalid SMILES are results, not log noise
        params = FilterCatalogParams()
        params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
        self._pains = FilterCatalog(params)

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """Descriptors for each SMILES; unparsable ones are ``INVALID_INPUT``."""
        return [self._one(s) for s in smiles]

    def _one(self, smiles: str) -> ModelResult:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or mol.GetNumAtoms() == 0:
            return ModelResult.invalid("RDKit could not parse the SMILES")
        mol_weight = Descriptors.MolWt(mol)
        clogp = Crippen.MolLogP(mol)
        hbd = Lipinski.NumHDonors(mol)
        hba = Lipinski.NumHAcceptors(mol)
        rotatable = rdMolDescriptors.CalcNumRotatableBonds(mol)
        heavy = mol.GetNumHeavyAtoms()
        aromatic = sum(1 for a in mol.GetAtoms() if a.GetIsAromatic())
        violations = (mol_weight > 500) + (clogp > 5) + (hbd > 5) + (hba > 10)
        outputs = {
            "mol_weight": mol_weight,
            "clogp": clogp,
            "tpsa": rdMolDescriptors.CalcTPSA(mol),
            "hbd": float(hbd),
            "hba": float(hba),
            "rotatable_bonds": float(rotatable),
            "qed": QED.qed(mol),
            "esol_logs": esol_log_s(
                clogp, mol_weight, rotatable, aromatic / heavy if heavy else 0.0
            ),
            "lipinski_violations": float(violations),
            "pains_alerts": float(len(self._pains.GetMatches(mol))),
        }
        return ModelResult(Status.OK, outputs)
