"""scripts/train_on_budget.py: variants side by side, the dev-best kept and packed in parts that reassemble."""

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from lsr import load_encoder  # noqa: E402
from lsr.encoders.models import random_mlm  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_on_budget.py"
WORDS = "the cat sat on mat dog dogs chased garden roses need sun water soil stock markets fell monday".split()


@pytest.fixture(scope="module")
def budget():
    spec = importlib.util.spec_from_file_location("train_on_budget", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_and_step_fitting(budget):
    assert budget.parse_variant("b32:optim.batch_size=32,model.activation=log_log") == \
        ("b32", {"optim.batch_size": 32, "model.activation": "log_log"})
    assert budget.parse_variant("plain:") == ("plain", {})
    assert budget.parse_setting('data.train=[{"jsonl": "a.jsonl", "corpus": "x"}]')[1] == [{"jsonl": "a.jsonl",
                                                                                            "corpus": "x"}]
    with pytest.raises(Exception, match="NAME:KEY=VALUE"):
        budget.parse_variant("no-colon")
    assert budget.fit_steps(0.5, 5) == 510  # 5 min, 15 % left to evaluations, 0.5 s a step
    assert budget.fit_steps(100.0, 0.1) == 1


def test_pack_splits_and_reassembles(budget, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    (src / "weights.bin").write_bytes(bytes(range(256)) * 400)
    parts = budget.pack(src, tmp_path / "out", "m.tar", part_mb=0.03)
    assert len(parts) > 1 and all(p.stat().st_size <= 30_000 for p in parts)
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join(p.read_bytes() for p in sorted(parts)))
    with tarfile.open(joined) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    assert (tmp_path / "back" / "weights.bin").read_bytes() == (src / "weights.bin").read_bytes()


def test_variants_run_and_the_dev_best_is_packed(budget, tmp_path, tiny_beir, make_tokenizer):
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    tok = make_tokenizer(backbone, WORDS)
    random_mlm(vocab_size=len(tok), hidden=16, layers=1, heads=2, seed=1).save_pretrained(backbone)
    tok.save_pretrained(backbone)
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(x) + "\n" for x in [
        {"query": "cat on a mat", "positives": ["d1"], "negatives": ["d3"]},
        {"query": "garden roses", "positives": ["d4"], "negatives": ["d3", "d1"]}]))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "output_dir": str(tmp_path / "runs"),
        "model": {"kind": "inference-free", "backbone": str(backbone), "doc_max_length": 32, "bf16": False},
        "data": {"train": [{"jsonl": str(examples), "corpus": str(tiny_beir)}], "n_negatives": 1},
        "regularizer": {"doc": {"kind": "flops", "weight": 1e-4}},
        "optim": {"lr": 1e-3, "batch_size": 2, "warmup_steps": 0, "threads": 1},
        "eval": {"dataset": str(tiny_beir), "split": "dev", "k": 10}}))
    rc = budget.main([str(recipe), "--minutes", "0.2", "--steps", "4", "--evals", "2", "--variant", "a:",
                      "--variant", "b:optim.lr=0.01", "--pack", str(tmp_path / "out")])
    assert rc == 0
    choice = json.loads((tmp_path / "runs" / "choice.json").read_text())
    assert choice["variant"] in ("a", "b") and choice["measure"] == "nDCG@10" and not choice["failed"]
    best = max((e["nDCG@10"], v["variant"]) for v in choice["variants"] for e in v["evaluations"])
    assert choice["value"] == best[0]
    for v in choice["variants"]:
        assert v["steps"] == 4 and [e["step"] for e in v["evaluations"]] == [2, 4]
    with tarfile.open(tmp_path / "out" / "best-model.tar") as tar:
        tar.extractall(tmp_path / "model", filter="data")
    assert load_encoder(tmp_path / "model").kind == "inference-free"
    assert json.loads((tmp_path / "model" / "selection.json").read_text())["value"] == choice["value"]
    with tarfile.open(tmp_path / "out" / "logs.tar.gz") as tar:
        assert {"choice.json", "a/eval_log.jsonl", "b/variant.json"} <= set(tar.getnames())
