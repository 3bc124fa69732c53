"""Dataset registry: specs, data-directory resolution, splits, schemas, label mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchoralign.data import (
    DATASETS,
    READERS,
    load_schema,
    load_split,
    read_types_file,
    resolve_data_dir,
    splits,
)
from anchoralign.data.base import map_labels
from anchoralign.errors import InputError
from anchoralign.schema import Schema
from anchoralign.types import Document, Entity, Relation


def test_specs_are_complete(data_dir: Path):
    assert set(DATASETS) == {
        "conll04",
        "ade",
        "scierc",
        "scierc_doc",
        "webnlg",
        "webnlg_star",
        "chinese_literature",
    }
    assert set(READERS) == {"spert", "dygie", "casrel", "brat", "jsonl", "duie"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.language in ("en", "zh") and spec.format in READERS
        assert spec.protocol and spec.train_split in spec.files
        for rel in spec.files.values():
            assert (data_dir / rel).exists(), rel
        assert spec.types_file is None or (data_dir / spec.types_file).is_file()


def test_splits():
    assert splits("conll04") == ["train", "dev", "test"]
    ade = splits("ade")
    assert len(ade) == 21 and ade[:2] == ["fold0-train", "fold0-test"] and ade[-1] == "full"
    assert splits("chinese_literature") == ["train", "dev", "test"]


def test_unknown_names_are_input_errors(data_dir):
    with pytest.raises(InputError, match="unknown dataset 'nyt'; known: conll04"):
        splits("nyt")
    with pytest.raises(InputError, match="no split 'dev'; splits: fold0-train"):
        load_split("ade", "dev", data_dir)


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("ANCHORALIGN_DATA", raising=False)
    assert resolve_data_dir(str(tmp_path)) == tmp_path
    monkeypatch.setenv("ANCHORALIGN_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    monkeypatch.delenv("ANCHORALIGN_DATA")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        resolve_data_dir(None)
    assert all(s in str(err.value) for s in ("--data-dir", "ANCHORALIGN_DATA", "./data"))
    (tmp_path / "data").mkdir()
    assert resolve_data_dir(None) == Path("data")
    with pytest.raises(InputError, match="missing.*--data-dir"):
        resolve_data_dir(tmp_path / "missing")


def test_schema_from_types_file(data_dir):
    schema = load_schema("conll04", data_dir)
    assert set(schema.entity_types) == {"Loc", "Org", "Peop", "Other"}
    assert len(schema.relation_types) == 5
    assert schema.allows("Peop", "Live_In", "Loc") and not schema.allows("Loc", "Live_In", "Peop")
    scierc = load_schema("scierc", data_dir)
    assert scierc.is_symmetric("Compare") and scierc.is_symmetric("Conjunction")
    assert load_schema("scierc_doc", data_dir).to_dict() == scierc.to_dict()  # USED-FOR -> Used-for


def test_schema_collected_from_train(data_dir):
    schema = load_schema("chinese_literature", data_dir)
    assert len(schema.entity_types) == 18 and "Physical" in schema.entity_types
    assert {"Located", "Part-Whole", "Family"} <= set(schema.relation_types)
    webnlg = load_schema("webnlg", data_dir)
    assert len(webnlg.relation_types) == 216 and {"fullName", "fullname"} <= set(webnlg.relation_types)
    assert set(webnlg.entity_types) == {"entity"}
    ade = load_schema("ade", data_dir, train_split="fold3-train")
    assert ade.signatures == {("Adverse-Effect", "Adverse-Effect", "Drug")}  # head: the effect


def test_read_types_file_rel2id(data_dir):
    schema = read_types_file(data_dir / "webnlg_star" / "rel2id.json")
    assert len(schema.relation_types) == 171 and not schema.entity_types


def test_map_labels_case_insensitive_but_never_ambiguous():
    schema = Schema()
    for name in ("Used-for", "fullName", "fullname"):
        schema.add_relation_type(name)
    schema.add_entity_type("Method")
    doc = Document("d", "a b", [], [Entity(0, 1, "METHOD", 0, 1), Entity(1, 2, "Method", 2, 3)])
    doc.relations = [Relation(0, 1, "USED-FOR"), Relation(0, 1, "FULLNAME"), Relation(0, 1, "fullname")]
    map_labels([doc], schema)
    assert [e.type for e in doc.entities] == ["Method", "Method"]
    assert [r.type for r in doc.relations] == ["Used-for", "FULLNAME", "fullname"]
