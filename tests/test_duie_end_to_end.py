"""A Chinese own-data file in the DuIE format (``text``, ``spo_list``) trains and evaluates end to end through
the command line, and extraction from unseen Chinese lines gives valid character offsets (issue 9). Whether
the encoder knows the unseen characters is the Chinese backbone's business (docs/chinese.md)."""

from __future__ import annotations

import json

from anchoralign.cli import main

RECORDS = [
    ("张三在北京大学工作。", [("张三", "人物", "就职于", "北京大学", "机构")]),
    ("李四出生于上海。", [("李四", "人物", "出生地", "上海", "地点")]),
    ("王五是清华大学的教授。", [("王五", "人物", "就职于", "清华大学", "机构")]),
    ("赵六来自广州。", [("赵六", "人物", "出生地", "广州", "地点")]),
    ("钱七在复旦大学任教。", [("钱七", "人物", "就职于", "复旦大学", "机构")]),
    ("孙八出生于杭州。", [("孙八", "人物", "出生地", "杭州", "地点")]),
]


def _write(path, records) -> None:
    lines = []
    for text, spos in records:
        spo_list = [{"subject": s, "subject_type": st, "predicate": p, "object": o, "object_type": ot}
                    for s, st, p, o, ot in spos]
        lines.append(json.dumps({"text": text, "spo_list": spo_list}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_duie_trains_evaluates_and_extracts(tmp_path, capsys) -> None:
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    _write(train, RECORDS)
    _write(dev, RECORDS[:3])
    out = tmp_path / "run"
    args = ["train", "--train", str(train), "--dev", str(dev), "--format", "duie", "--output", str(out),
            "--set", "model.backbone=random-tiny", "--set", "train.epochs=3", "--set", "train.batch_size=3",
            "--set", "train.precision=fp32", "--set", "train.threads=1", "--set", "train.eval_from_epoch=3"]
    assert main(args) == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--input", str(dev), "--format", "duie", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["protocol"] == "micro" and 0.0 <= scores["main"] <= 1.0 and scores["malformed"] == 0
    lines = tmp_path / "lines.txt"
    unseen = ["周九在南京大学工作。", "吴十出生于成都，后来在武汉大学读书。"]
    lines.write_text("\n".join(unseen) + "\n", encoding="utf-8")
    result = tmp_path / "out.jsonl"
    assert main(["extract", "--model", str(out), "--input", str(lines), "--output", str(result)]) == 0
    records = [json.loads(x) for x in result.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == unseen
    for r in records:
        for e in r["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(r["text"]) and r["text"][e["start"] : e["end"]] == e["text"]
