"""Unit tests for producer.readers: .smi, .csv and .sdf parsing (files in tmp_path only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdkit import Chem, RDConfig

from producer.readers import ReadError, Skipped, detect_format, read_molecules
from schemas import Molecule


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- format detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.smi", "smi"),
        ("a.smiles", "smi"),
        ("A.SMI", "smi"),
        ("a.csv", "csv"),
        ("a.sdf", "sdf"),
        ("dir.v2/a.Sdf", "sdf"),
    ],
)
def test_detect_format_from_suffix(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


def test_detect_format_explicit_wins() -> None:
    assert detect_format(Path("whatever.txt"), "csv") == "csv"


@pytest.mark.parametrize("name", ["mols.txt", "mols", "mols.sdf.gz", "mols.mol2"])
def test_detect_format_unknown_suffix(name: str) -> None:
    with pytest.raises(ReadError, match="--format"):
        detect_format(Path(name))


def test_unknown_suffix_raises_when_reading(tmp_path: Path) -> None:
    path = _write(tmp_path / "mols.txt", "CCO x\n")
    with pytest.raises(ReadError, match="cannot tell the format"):
        list(read_molecules(path))
    assert [m.smiles for m in read_molecules(path, "smi")] == ["CCO"]


@pytest.mark.parametrize("name", ["missing.smi", "missing.csv", "missing.sdf"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(ReadError, match="no such file"):
        list(read_molecules(tmp_path / name))


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.smi"
    folder.mkdir()
    with pytest.raises(ReadError, match="no such file"):
        list(read_molecules(folder))


def test_read_error_is_a_value_error() -> None:
    assert issubclass(ReadError, ValueError)


# -- .smi ------------------------------------------------------------------------------------


def test_smi_smiles_then_optional_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mols.smi",
        "SMILES Name\n"
        "CCO ethanol\n"
        "\n"
        "# a comment\n"
        "   \t  \n"
        "c1ccccc1\tbenzene\n"
        "CC(=O)O\n"
        "  N  \t ammonia   extra  columns\n"
        "#CCC not-a-molecule\n"
        "O\t\twater\n",
    )
    assert list(read_molecules(path)) == [
        Molecule(id="ethanol", smiles="CCO"),
        Molecule(id="benzene", smiles="c1ccccc1"),
        Molecule(id="mols:7", smiles="CC(=O)O"),  # no name: stem and line number
        Molecule(id="ammonia", smiles="N"),
        Molecule(id="water", smiles="O"),
    ]


@pytest.mark.parametrize("header", ["SMILES Name", "smiles\tid", "Smiles"])
def test_smi_header_on_line_one_is_skipped(tmp_path: Path, header: str) -> None:
    path = _write(tmp_path / "h.smi", f"{header}\nC one\n")
    assert list(read_molecules(path)) == [Molecule(id="one", smiles="C")]


def test_smi_header_word_after_line_one_is_data(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.smi", "C one\nSMILES two\n")
    assert [m.id for m in read_molecules(path)] == ["one", "two"]


def test_smi_unnamed_ids_count_physical_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "batch-7.smi", "# header comment\n\nC\nCC\n")
    assert [m.id for m in read_molecules(path)] == ["batch-7:3", "batch-7:4"]


def test_smi_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.smi", "")
    assert list(read_molecules(path)) == []


def test_smi_has_no_properties_and_no_timestamp(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.smi", "C a\n")
    (mol,) = read_molecules(path)
    assert mol.properties == {}
    assert mol.submitted_at is None


def test_reading_is_lazy_and_in_file_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "order.smi", "".join(f"{'C' * i} m{i}\n" for i in range(1, 50)))
    ids = [m.id for m in read_molecules(path)]
    assert ids == [f"m{i}" for i in range(1, 50)]


# -- .csv ------------------------------------------------------------------------------------


def test_csv_default_columns_and_properties(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mols.csv",
        'id,smiles,source,mw\na1,CCO,NCI,46.07\n b2 , c1ccccc1 ,"Sigma, Inc.",78.11\n,CC,,\n',
    )
    skipped: list[Skipped] = []
    assert list(read_molecules(path, skipped=skipped)) == [
        Molecule(id="a1", smiles="CCO", properties={"source": "NCI", "mw": "46.07"}),
        Molecule(id="b2", smiles="c1ccccc1", properties={"source": "Sigma, Inc.", "mw": "78.11"}),
        Molecule(id="mols:4", smiles="CC", properties={"source": "", "mw": ""}),
    ]
    assert skipped == []


def test_csv_without_id_column_uses_stem_and_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.csv", "smiles\nC\nN\n")
    assert [(m.id, m.smiles) for m in read_molecules(path)] == [("plain:2", "C"), ("plain:3", "N")]


def test_csv_custom_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "custom.csv", "Name,SMILES,smiles,id\nasp,CC(=O)O,x,y\n")
    (mol,) = read_molecules(path, smiles_column="SMILES", id_column="Name")
    # The default-named columns are ordinary properties when other columns are chosen.
    assert mol == Molecule(id="asp", smiles="CC(=O)O", properties={"smiles": "x", "id": "y"})


def test_csv_missing_smiles_column_has_a_helpful_message(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "id,structure\n1,CCO\n")
    with pytest.raises(ReadError) as info:
        list(read_molecules(path))
    message = str(info.value)
    assert "bad.csv" in message
    assert "'smiles'" in message
    assert "id, structure" in message  # the columns that are there
    assert "--smiles-column" in message


def test_csv_missing_custom_smiles_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "smiles\nC\n")
    with pytest.raises(ReadError, match="'SMILES'"):
        list(read_molecules(path, smiles_column="SMILES"))


def test_csv_empty_file_has_no_smiles_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.csv", "")
    with pytest.raises(ReadError, match="no column 'smiles'"):
        list(read_molecules(path))


def test_csv_empty_smiles_rows_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "holes.csv", "smiles,id\nC,a\n,b\n   ,c\nN,d\n")
    skipped: list[Skipped] = []
    mols = list(read_molecules(path, skipped=skipped))
    assert [m.id for m in mols] == ["a", "d"]
    assert [(s.path, s.position) for s in skipped] == [(path, 3), (path, 4)]
    assert all("smiles" in s.reason for s in skipped)


def test_csv_short_and_long_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "ragged.csv", "smiles,id,note\nC,a\nN,b,x,extra\n")
    mols = list(read_molecules(path))
    assert mols == [
        Molecule(id="a", smiles="C", properties={}),  # missing trailing value: no property
        Molecule(id="b", smiles="N", properties={"note": "x"}),  # extra value dropped
    ]


def test_skipped_defaults_to_a_private_list(tmp_path: Path) -> None:
    path = _write(tmp_path / "holes.csv", "smiles\n\nC\n,\n")
    assert [m.smiles for m in read_molecules(path)] == ["C"]


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("smiles,id\nCCO,e1\n", encoding="utf-8-sig")
    assert list(read_molecules(path)) == [Molecule(id="e1", smiles="CCO")]


# -- .sdf ------------------------------------------------------------------------------------


def _write_sdf(path: Path) -> Path:
    writer = Chem.SDWriter(str(path))
    named = Chem.MolFromSmiles("OCC")
    named.SetProp("_Name", "  ethanol  ")
    named.SetProp("source", "NCI")
    named.SetProp("id", "ignored-because-named")
    writer.write(named)
    with_id = Chem.MolFromSmiles("c1ccccc1")
    with_id.SetProp("id", "benz-1")
    with_id.SetProp("note", "aromatic ring")
    writer.write(with_id)
    # Pentavalent carbon, written unsanitized: RDKit cannot read this record back.
    writer.write(Chem.MolFromSmiles("CC(C)(C)(C)(C)C", sanitize=False))
    anonymous = Chem.MolFromSmiles("N")
    anonymous.SetIntProp("count", 3)
    writer.write(anonymous)
    writer.close()
    return path


def test_sdf_ids_properties_and_skipped_records(tmp_path: Path) -> None:
    path = _write_sdf(tmp_path / "library.sdf")
    skipped: list[Skipped] = []
    mols = list(read_molecules(path, skipped=skipped))
    assert mols == [
        Molecule(id="ethanol", smiles="CCO", properties={"source": "NCI"}),
        Molecule(id="benz-1", smiles="c1ccccc1", properties={"note": "aromatic ring"}),
        Molecule(id="library:4", smiles="N", properties={"count": "3"}),
    ]
    assert len(skipped) == 1
    assert skipped[0].path == path
    assert skipped[0].position == 3
    assert "RDKit" in skipped[0].reason
    for mol in mols:
        assert all(isinstance(v, str) for v in mol.properties.values())
        assert "id" not in mol.properties


def test_sdf_smiles_are_canonical(tmp_path: Path) -> None:
    path = tmp_path / "one.sdf"
    writer = Chem.SDWriter(str(path))
    writer.write(Chem.MolFromSmiles("C1=CC=CC=C1O"))
    writer.close()
    (mol,) = read_molecules(path)
    assert mol.smiles == Chem.MolToSmiles(Chem.MolFromSmiles("Oc1ccccc1"))
    assert mol.id == "one:1"


def test_sdf_properties_are_the_text_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "numbers.sdf"
    writer = Chem.SDWriter(str(path))
    mol = Chem.MolFromSmiles("C")
    mol.SetProp("id", "007")
    mol.SetProp("logp", "1.50")
    mol.SetProp("cas", "0064-17-5")
    writer.write(mol)
    writer.close()
    (read,) = read_molecules(path)
    assert read.properties == {"logp": "1.50", "cas": "0064-17-5"}
    assert read.id == "007"


def test_sdf_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.sdf", "")
    assert list(read_molecules(path)) == []


# -- the NCI file shipped with RDKit ---------------------------------------------------------


def test_reads_the_nci_file_shipped_with_rdkit() -> None:
    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    skipped: list[Skipped] = []
    mols = list(read_molecules(path, skipped=skipped))
    # 4,999 lines (despite the name), each "SMILES<TAB>NSC number", no header.
    assert len(mols) == 4999
    assert skipped == []
    ids = [m.id for m in mols]
    assert len(set(ids)) == len(ids)
    assert all(i.isdigit() for i in ids)
    assert mols[0] == Molecule(id="1", smiles="CC1=CC(=O)C=CC1=O")
    assert all(m.smiles for m in mols)
