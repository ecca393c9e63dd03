"""Unit tests for consumer.models: the reference and synthetic models and the loader."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from consumer.errors import ConfigurationError, ModelLoadError
from consumer.models import Model, ModelResult, load_model, resolve_model_class
from consumer.models.base import BUILTIN_MODELS
from consumer.models.reference import OUTPUTS, ReferenceModel, esol_log_s
from consumer.models.synthetic import SyntheticModel
from schemas import Status

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
RHODANINE = "S=C1SC(=Cc2ccccc2)C(=O)N1"  # 5-benzylidene rhodanine


class TinyModel:
    """A plugin model for the loader tests: ``tests.unit.test_models:TinyModel``."""

    name = "tiny"
    version = "0.0.1"

    def __init__(self, scale: str = "1") -> None:
        self.scale = float(scale)

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        return [ModelResult(Status.OK, {"n": self.scale * len(s)}) for s in smiles]


class NoPredict:
    name = "no-predict"
    version = "0"


class Nameless:
    version = "0"

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        return []


class NumericVersion:
    name = "numeric"
    version = 2

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        return []


not_a_class = TinyModel  # a module attribute that *is* a class, under another name
an_instance = TinyModel()

HERE = __name__  # "tests.unit.test_models" when collected by pytest


@pytest.fixture(scope="module")
def reference() -> ReferenceModel:
    return ReferenceModel()


# -- reference model -------------------------------------------------------------------------


def test_aspirin_has_every_output_with_sane_values(reference: ReferenceModel) -> None:
    (result,) = reference.predict([ASPIRIN])
    assert result.status is Status.OK
    assert result.error is None
    assert set(result.outputs) == set(OUTPUTS)
    assert len(OUTPUTS) == 10
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.outputs.values())
    out = result.outputs
    # C9H8O4 with IUPAC-ish average masses: 9 * 12.011 + 8 * 1.008 + 4 * 15.999.
    assert out["mol_weight"] == pytest.approx(9 * 12.011 + 8 * 1.008 + 4 * 15.999, abs=1e-3)
    assert out["mol_weight"] == pytest.approx(180.16, abs=0.01)
    assert out["hbd"] == 1  # the carboxylic acid OH
    assert out["hba"] == 3
    assert out["lipinski_violations"] == 0
    assert 0 < out["qed"] < 1
    assert out["tpsa"] == pytest.approx(63.6, abs=0.1)  # 2 x C=O 17.07, ester O 9.23, OH 20.23
    assert out["clogp"] == pytest.approx(1.31, abs=0.01)  # Crippen
    assert out["rotatable_bonds"] == 2
    assert out["pains_alerts"] == 0


def test_aspirin_esol_follows_delaney(reference: ReferenceModel) -> None:
    (result,) = reference.predict([ASPIRIN])
    out = result.outputs
    # By hand: 13 heavy atoms, 6 of them aromatic (the benzene ring).
    aromatic_proportion = 6 / 13
    # Non-ring single bonds between non-terminal heavy atoms: C(=O)-O, O-c, c-C(=O)OH; RDKit's
    # default (strict) rotatable-bond rule leaves out the ester C(=O)-O, as it does amides.
    rotatable = 2
    mol_weight = 180.159
    clogp = out["clogp"]  # Crippen's cLogP, the open stand-in for Daylight's
    expected = (
        0.16 - 0.63 * clogp - 0.0062 * mol_weight + 0.066 * rotatable - 0.74 * aromatic_proportion
    )
    assert out["esol_logs"] == pytest.approx(expected, abs=1e-6)
    assert out["esol_logs"] == pytest.approx(
        esol_log_s(clogp, mol_weight, rotatable, aromatic_proportion), abs=1e-6
    )
    assert out["esol_logs"] == pytest.approx(-1.99, abs=0.01)
    # Aspirin is ~3 g/L in water, log S about -1.7: ESOL is within its usual error.
    assert -3.0 < out["esol_logs"] < -1.0


def test_esol_function_is_delaneys_equation() -> None:
    assert esol_log_s(0.0, 0.0, 0, 0.0) == pytest.approx(0.16)
    assert esol_log_s(1.0, 100.0, 2, 0.5) == pytest.approx(
        0.16 - 0.63 - 0.62 + 0.132 - 0.37, abs=1e-12
    )


@pytest.mark.parametrize("bad", ["", "not a smiles", "C1CC", "c1cccc1", "C(C", "[Xx]"])
def test_invalid_smiles_is_a_per_item_result(reference: ReferenceModel, bad: str) -> None:
    results = reference.predict(["CCO", bad, "N"])
    assert [r.status for r in results] == [Status.OK, Status.INVALID_INPUT, Status.OK]
    invalid = results[1]
    assert invalid.outputs == {}
    assert invalid.error


def test_predict_keeps_order_and_length(reference: ReferenceModel) -> None:
    smiles = ["C", "CC", "CCC", "", "CCCC"]
    results = reference.predict(smiles)
    assert len(results) == len(smiles)
    weights = [r.outputs.get("mol_weight", -1.0) for r in results]
    assert weights[:3] == sorted(weights[:3])
    assert weights[3] == -1.0
    assert reference.predict([]) == []


def test_rhodanine_triggers_a_pains_alert(reference: ReferenceModel) -> None:
    # Check against RDKit's PAINS catalog directly first, so the test does not depend on the
    # model to know what an alert is.
    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
    catalog = FilterCatalog(params)
    matches = catalog.GetMatches(Chem.MolFromSmiles(RHODANINE))
    assert any("ene_rhod" in m.GetDescription() for m in matches)

    (result,) = reference.predict([RHODANINE])
    assert result.status is Status.OK
    assert result.outputs["pains_alerts"] >= 1
    assert result.outputs["pains_alerts"] == len(matches)


def test_lipinski_violations_count(reference: ReferenceModel) -> None:
    # Hexatriacontane, C36H74: MW ~507 and cLogP ~14 -> two violations, no donors/acceptors.
    (result,) = reference.predict(["C" * 36])
    assert result.outputs["mol_weight"] > 500
    assert result.outputs["clogp"] > 5
    assert result.outputs["lipinski_violations"] == 2


def test_reference_model_satisfies_the_protocol(reference: ReferenceModel) -> None:
    assert isinstance(reference, Model)
    assert reference.name == "reference"
    assert isinstance(reference.version, str)


# -- synthetic model -------------------------------------------------------------------------


def test_synthetic_model_outputs() -> None:
    model = SyntheticModel(load_s="0", per_molecule_ms="0")
    assert model.load_s == 0.0
    assert model.per_molecule_ms == 0.0
    results = model.predict(["C", "CCO", ""])
    assert results == [
        ModelResult(Status.OK, {"length": 1.0}),
        ModelResult(Status.OK, {"length": 3.0}),
        ModelResult(Status.OK, {"length": 0.0}),
    ]
    assert isinstance(model, Model)


@pytest.mark.parametrize(
    "options", [{"load_s": "-1"}, {"per_molecule_ms": "-0.5"}, {"load_s": "soon"}]
)
def test_synthetic_model_bad_options(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        SyntheticModel(**options)
    with pytest.raises(ModelLoadError, match="'synthetic'"):
        load_model("synthetic", options)


# -- loader ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "cls"), [("reference", ReferenceModel), ("synthetic", SyntheticModel)]
)
def test_builtin_names_resolve(spec: str, cls: type[object]) -> None:
    assert resolve_model_class(spec) is cls
    assert BUILTIN_MODELS[spec].endswith(f":{cls.__name__}")


def test_full_spec_of_a_builtin_resolves() -> None:
    assert resolve_model_class("consumer.models.synthetic:SyntheticModel") is SyntheticModel


def test_load_builtin_with_options() -> None:
    model = load_model("synthetic", {"load_s": "0", "per_molecule_ms": "0"})
    assert isinstance(model, SyntheticModel)
    assert model.name == "synthetic"
    assert isinstance(load_model("reference", {}), ReferenceModel)


def test_plugin_from_this_module() -> None:
    assert HERE == "tests.unit.test_models"
    spec = "tests.unit.test_models:TinyModel"
    assert resolve_model_class(spec) is TinyModel
    model = load_model(spec, {"scale": "2"})
    assert isinstance(model, TinyModel)
    assert model.name == "tiny"
    assert model.predict(["CCO"]) == [ModelResult(Status.OK, {"n": 6.0})]
    assert isinstance(load_model(spec, {}), TinyModel)


def test_plugin_from_a_module_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "molstream_plugin_probe.py").write_text(
        "class Probe:\n"
        "    name = 'probe'\n"
        "    version = '9'\n"
        "    def predict(self, smiles):\n"
        "        return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "molstream_plugin_probe", raising=False)
    model = load_model("molstream_plugin_probe:Probe", {})
    assert model.name == "probe"
    assert model.version == "9"


@pytest.mark.parametrize(
    ("spec", "options", "fragment"),
    [
        ("no_such_module_for_molstream:Model", {}, "cannot import 'no_such_module_for_molstream'"),
        ("tests.unit.no_such_test_module:Model", {}, "cannot import"),
        (f"{HERE}:MissingClass", {}, "has no class 'MissingClass'"),
        (f"{HERE}:an_instance", {}, "has no class 'an_instance'"),
        (f"{HERE}:ASPIRIN", {}, "has no class 'ASPIRIN'"),
        (f"{HERE}:NoPredict", {}, "has no predict method"),
        (f"{HERE}:Nameless", {}, "no string attribute 'name'"),
        (f"{HERE}:NumericVersion", {}, "no string attribute 'version'"),
        (f"{HERE}:TinyModel", {"bogus": "1"}, "rejected options ['bogus']"),
        (f"{HERE}:TinyModel", {"scale": "big"}, "rejected options ['scale']"),
        ("reference", {"unexpected": "x"}, "rejected options ['unexpected']"),
        ("nocolon", {}, "'module:Class'"),
        ("Reference", {}, "'module:Class'"),  # builtin names are case-sensitive
        ("", {}, "'module:Class'"),
        (":Model", {}, "'module:Class'"),
        ("some.module:", {}, "'module:Class'"),
    ],
)
def test_load_errors_name_the_spec(spec: str, options: dict[str, str], fragment: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model(spec, options)
    message = str(info.value)
    assert f"--model {spec!r}" in message
    assert fragment in message
    assert isinstance(info.value, ConfigurationError)


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(ModelLoadError, match=r"\['reference', 'synthetic'\]"):
        resolve_model_class("magic")


def test_not_a_class_alias_is_still_a_class() -> None:
    assert resolve_model_class(f"{HERE}:not_a_class") is TinyModel
