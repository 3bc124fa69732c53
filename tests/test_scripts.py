"""scripts.py: letters by script, and which texts a model trained on some scripts refuses."""

from __future__ import annotations

import pytest

from anchoralign.errors import InputError
from anchoralign.scripts import ScriptCheck, count_scripts, script_of


@pytest.mark.parametrize(("ch", "script"), [
    ("a", "Latin"), ("Ä", "Latin"), ("ß", "Latin"), ("Ａ", "Latin"),  # full width folds to Latin
    ("中", "Han"), ("の", "Hiragana"), ("ﾀ", "Katakana"), ("카", "Hangul"),
    ("Ж", "Cyrillic"), ("π", "Greek"), ("ا", "Arabic"), ("א", "Hebrew"), ("क", "Devanagari"),
    ("1", None), ("٣", None), (",", None), ("。", None), (" ", None), ("😀", None), ("\u200b", None),
])
def test_script_of(ch, script) -> None:
    assert script_of(ch) == script


def test_count_scripts_counts_letters_only() -> None:
    assert count_scripts(["Mary 2x 约翰!", "Жук"]) == {"Latin": 5, "Han": 2, "Cyrillic": 3}


def test_a_text_is_refused_when_more_than_half_its_letters_are_unseen() -> None:
    check = ScriptCheck({"Latin": 99_950, "Greek": 50})  # Greek: 0.05 % of the letters, under 0.1 %: unseen
    assert check.seen == {"Latin"}
    assert check.problem("") is None and check.problem("1234 !!! 😀") is None  # no letters: nothing to refuse
    assert check.problem("abcd约翰北京") is None  # 4 of 8: half is not more than half
    why = check.problem("abc约翰北京")  # 4 of 7
    assert why is not None and why.startswith("4 of its 7 letters") and "Han (4)" in why
    assert why.endswith("the model was trained on Latin 99.95 %, Greek 0.05 %")
    assert check.problem("αβγ a") is not None  # Greek held too little of the training letters
    assert ScriptCheck({"Latin": 998, "Greek": 2}).problem("αβγ a") is None  # 0.2 %: seen


def test_from_metadata_reads_what_train_saves_and_ignores_junk() -> None:
    assert ScriptCheck.from_metadata({"scripts": {"Latin": 10, "Han": 0}}) == ScriptCheck({"Latin": 10})
    for meta in (None, [], {}, {"scripts": None}, {"scripts": {}}, {"scripts": {"Latin": "x"}},
                 {"scripts": {"Latin": float("inf")}}, {"scripts": {"Latin": True}}, {"scripts": {"Latin": 0.4}},
                 {"scripts": {"Latin": float("nan")}}, {"scripts": {"Latin": -3}}):
        assert ScriptCheck.from_metadata(meta) is None, meta


def test_the_extractor_refuses_by_record_before_decoding(tmp_path) -> None:
    """An extractor of a tiny model saved with Latin training scripts; the same model saved without them (an
    older model) reads anything."""
    import anchoralign
    from anchoralign.model import save_model

    from .tiny import overfit_tiny_model

    model = overfit_tiny_model(tmp_path, steps=1)
    save_model(model, tmp_path / "m", metadata={"scripts": {"Latin": 1000}})
    ex = anchoralign.load(tmp_path / "m", device="cpu")
    with pytest.raises(InputError, match=r"^record 1: 4 of its 4 letters .* Han \(4\)") as e:
        ex.extract(["Mary lives in Paris .", "约翰北京"])
    assert "any_script=True" in str(e.value)
    assert [r.text for r in ex.extract(["Mary lives in Paris .", "约翰北京"], any_script=True)] == [
        "Mary lives in Paris .", "约翰北京"]
    assert ex.info()["scripts"] == {"Latin": 1000}
    assert [r.text for r in ex.extract(t for t in ["Mary lives in Paris .", "Acme"])] == [
        "Mary lives in Paris .", "Acme"]  # a generator is read once, not run dry by the check
    (tmp_path / "m" / "metadata.json").write_bytes(b"\xff\xfe not UTF-8")
    assert anchoralign.load(tmp_path / "m", device="cpu").scripts is None  # unreadable metadata: no check
    save_model(model, tmp_path / "old")
    assert not (tmp_path / "old" / "metadata.json").exists()
    old = anchoralign.load(tmp_path / "old", device="cpu")
    assert old.scripts is None and len(old.extract(["约翰北京"])) == 1
