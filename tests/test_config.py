"""Config files and --set overrides: YAML's booleans do not leak into string fields."""

from __future__ import annotations

import pytest

from anchoralign.config import load_config
from anchoralign.errors import InputError


def test_off_is_a_string_for_string_fields(tmp_path) -> None:
    # YAML 1.1 reads `off` as false: `pair_relations: off` must still mean "off", in a file and in --set
    path = tmp_path / "c.yaml"
    path.write_text("decode:\n  pair_relations: off\n  constrained: off\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.decode.pair_relations == "off" and cfg.decode.constrained is False
    cfg = load_config(None, ["decode.pair_relations=union", "decode.pair_relations=off"])
    assert cfg.decode.pair_relations == "off"


def test_a_boolean_where_a_choice_is_expected_names_the_field() -> None:
    with pytest.raises(InputError, match="span_source.*got 'yes'"):
        load_config(None, ["decode.span_source=yes"])
    # boolean fields still take the YAML 1.1 words
    cfg = load_config(None, ["decode.constrained=no", "decode.signatures=off", "decode.tagger_spans=yes"])
    assert cfg.decode.constrained is False and cfg.decode.signatures is False and cfg.decode.tagger_spans is True


def test_a_training_config_cannot_turn_the_veto_on() -> None:
    with pytest.raises(InputError, match="are set by `anchoralign veto`"):
        load_config(None, ["anchor.veto_classifier=true"])
    with pytest.raises(InputError, match="are set by `anchoralign veto`"):
        load_config(None, ["anchor.veto_members=3"])
