"""The trainer end to end on a tiny random model: overfitting, resume, configs, data, CLI."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval.datasets import DataFormatError  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.encoders.models import random_mlm  # noqa: E402
from lsr.encoders.projection import TokenVectors, pooled_tokens  # noqa: E402
from lsr.encoders.projection import late_interaction as late_interaction_scores  # noqa: E402
from training import ConfigError, Trainer, config_from_dict, load_config  # noqa: E402
from training import data as tdata  # noqa: E402

WORDS = ("the cat sat on mat dog dogs bark insulin resistance muscle cells cause causes what is a of in and "
         "to for with fish swim water river bank money loan rate high low garden roses sun soil stock market").split()

TRIPLES = [
    ("cat on a mat", "the cat sat on the mat", "stock market money loan rate"),
    ("insulin resistance", "insulin resistance in muscle cells", "fish swim in the river"),
    ("garden roses", "roses need sun and soil in the garden", "dogs bark at the cat"),
    ("bank loan rate", "the bank has a high loan rate", "roses need water"),
]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory, make_tokenizer):
    d = tmp_path_factory.mktemp("backbone")
    tok = make_tokenizer(d, WORDS)
    random_mlm(vocab_size=len(tok), hidden=16, layers=1, heads=2, seed=1).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture
def triples(tmp_path):
    p = tmp_path / "triples.tsv"
    p.write_text("".join("\t".join(t) + "\n" for t in TRIPLES), encoding="utf-8")
    return p


def _config(tmp_path, backbone, triples, **over):
    cfg = {"output_dir": str(tmp_path / "run"),
           "model": {"kind": "inference-free", "backbone": backbone, "doc_max_length": 32, "bf16": False},
           "data": {"train": [{"triples": str(triples)}], "n_negatives": 1},
           "regularizer": {"doc": {"kind": "flops", "weight": 1e-4}},
           "optim": {"lr": 3e-3, "steps": 4, "batch_size": 4, "warmup_steps": 0, "threads": 1},
           "checkpoint": {"every": 2, "keep": 2}}
    for key, value in over.items():
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config_from_dict(cfg, "test")


def _pos_neg_scores(trainer):
    with torch.no_grad():
        trainer.model.mlm.eval()
        q = trainer.model.inference_free_queries([t[0] for t in TRIPLES], [trainer.idf[0]] * len(TRIPLES))
        pos = trainer.model.encode([t[1] for t in TRIPLES], 32)
        neg = trainer.model.encode([t[2] for t in TRIPLES], 32)
    return (q * pos).sum(1), (q * neg).sum(1)


def test_tiny_model_overfits_a_handful_of_triples(tmp_path, backbone, triples):
    cfg = _config(tmp_path, backbone, triples, **{"optim.steps": 40})
    trainer = Trainer(cfg, show_progress=False)
    first = [trainer.train_step()["contrastive"] for _ in range(3)]
    for _ in range(37):
        last = trainer.train_step()
    assert last["contrastive"] < 0.5 * np.mean(first)
    pos, neg = _pos_neg_scores(trainer)
    assert (pos > neg).all(), (pos, neg)


def test_checkpoint_then_resume_gives_the_same_state(tmp_path, backbone, triples):
    straight = Trainer(_config(tmp_path / "a", backbone, triples), show_progress=False)
    straight.train()
    interrupted = Trainer(_config(tmp_path / "b", backbone, triples), show_progress=False)
    interrupted.out.mkdir(parents=True)
    interrupted.train_step()
    interrupted.train_step()
    interrupted.save_checkpoint()
    del interrupted  # "killed" after step 2
    resumed = Trainer(_config(tmp_path / "b", backbone, triples), show_progress=False)
    result = resumed.train()
    assert result.steps == 4
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    logs = [json.loads(line) for line in open(result.output_dir / "train_log.jsonl")]
    assert [r["step"] for r in logs] == [3, 4]  # the resumed run logged only what it did
    assert sorted(p.name for p in (result.output_dir / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]


def test_saved_model_is_an_lsr_encoder(tmp_path, backbone, triples):
    result = Trainer(_config(tmp_path, backbone, triples, **{"optim.steps": 2}), show_progress=False).train()
    enc = load_encoder(result.model_dir)
    assert enc.kind == "inference-free"
    docs = enc.encode_documents([t[1] for t in TRIPLES])
    q = enc.encode_queries(["insulin resistance"])
    assert docs.shape[0] == 4 and q.nnz == 2
    assert (result.model_dir / "training_config.json").exists() and (result.output_dir / "summary.json").exists()
    assert (result.output_dir / "training.png").exists()


@pytest.mark.parametrize("kind,extra", [
    ("splade", {"regularizer.query": {"kind": "l1", "weight": 1e-3}}),
    ("slim", {"model.token_top_k": 4}),
    ("inference-free", {"model.query_weights": "learned", "model.activation": "log_log",
                        "regularizer.doc": {"kind": "df_flops", "weight": 1e-3, "l0_threshold": 3}}),
])
def test_every_kind_trains(tmp_path, backbone, triples, kind, extra):
    cfg = _config(tmp_path, backbone, triples, **{"model.kind": kind, "optim.steps": 3, **extra})
    trainer = Trainer(cfg, show_progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    recs = [trainer.train_step() for _ in range(3)]
    assert all(np.isfinite(r["loss"]) for r in recs)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoder" in k for k in changed)
    if kind == "inference-free":
        assert "query_raw" in changed  # learned query weights move
    if kind == "slim":  # the non-zeros of one token vector, at most token_top_k, logged beside the pooled ones
        assert all(0 < r["doc_token_nnz"] <= 4 and 0 < r["query_token_nnz"] <= 4 for r in recs)
        assert all(r["doc_token_nnz"] <= r["doc_nnz"] for r in recs)
    enc = trainer.model.to_encoder()
    assert enc.kind == kind


def test_late_interaction_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    dim = 12
    q = TokenVectors(torch.rand(5, 3, generator=g), torch.randint(0, dim, (5, 3), generator=g), [2, 3])
    d = TokenVectors(torch.rand(7, 3, generator=g), torch.randint(0, dim, (7, 3), generator=g), [4, 0, 3])

    def dense(t):
        out = torch.zeros(t.values.shape[0], dim)
        for r in range(out.shape[0]):
            for v, i in zip(t.values[r], t.indices[r]):
                out[r, i] = max(out[r, i], v)  # duplicate indices: scatter keeps one; make them distinct below
        return out

    q = q._replace(indices=torch.stack([torch.randperm(dim, generator=g)[:3] for _ in range(5)]))
    d = d._replace(indices=torch.stack([torch.randperm(dim, generator=g)[:3] for _ in range(7)]))
    qd, dd = dense(q), dense(d)
    got = late_interaction_scores(q, d, dim)
    expected = torch.zeros(2, 3)
    qrows, drows = torch.split(qd, q.lengths), torch.split(dd, d.lengths)
    for i, qq in enumerate(qrows):
        for j, ddd in enumerate(drows):
            if ddd.shape[0]:
                expected[i, j] = (qq @ ddd.T).max(dim=1).values.clamp(min=0).sum()
    torch.testing.assert_close(got, expected)
    pooled = pooled_tokens(d, dim)
    torch.testing.assert_close(pooled[0], dd[:4].max(0).values)
    assert pooled[1].sum() == 0


def test_config_errors_name_the_key(tmp_path, backbone, triples):
    good = _config(tmp_path, backbone, triples).to_dict()
    bad = json.loads(json.dumps(good))
    bad["optim"]["stpes"] = 3
    with pytest.raises(ConfigError, match="optim: unknown key 'stpes'"):
        config_from_dict(bad, "x.json")
    bad = json.loads(json.dumps(good))
    bad["regularizer"]["doc"]["kind"] = "flop"
    with pytest.raises(ConfigError, match="regularizer: kind: 'flop' is not one of"):
        config_from_dict(bad, "x.json")
    bad = json.loads(json.dumps(good))
    bad["optim"]["batch_size"] = 0
    with pytest.raises(ConfigError, match="batch_size must be > 0"):
        config_from_dict(bad, "x.json")
    bad = json.loads(json.dumps(good))
    bad["optim"]["lr"] = "fast"
    with pytest.raises(ConfigError, match="optim.lr: expected a number"):
        config_from_dict(bad, "x.json")
    bad = json.loads(json.dumps(good))
    bad["regularizer"]["doc"].update(target_nnz=100, target_flops=2.0)
    with pytest.raises(ConfigError, match="not both"):
        config_from_dict(bad, "x.json")
    path = tmp_path / "broken.json"
    path.write_text('{"optim": {"steps": 3,}}')
    with pytest.raises(ConfigError, match="broken.json:1: not valid JSON"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="shipped recipes"):
        load_config(tmp_path / "missing.json")


def test_shipped_recipes_are_valid():
    from training import list_recipes

    names = list_recipes()
    assert {"inference-free-idf", "inference-free-l0", "splade", "slim"} <= set(names)
    for name in names:
        load_config(name)


def test_beir_source_mines_negatives_and_caches(tiny_beir, tmp_path, monkeypatch):
    src = tdata.beir_source(str(tiny_beir), "test", teachers=["bm25"], depth=10, keep=2, cache_dir=tmp_path,
                            show_progress=False)
    by_q = {ex.qid: ex for ex in src.examples}
    assert set(by_q) == {"q1", "q2"}
    assert by_q["q2"].positives == ["d2", "d4"]
    for ex in src.examples:
        assert not set(ex.negatives) & set(ex.positives)
        assert set(ex.scores["bm25"]) == set(ex.positives) | set(ex.negatives)
    monkeypatch.setattr(tdata, "_mine", lambda *a, **k: pytest.fail("should read the cache"))
    again = tdata.beir_source(str(tiny_beir), "test", teachers=["bm25"], depth=10, keep=2, cache_dir=tmp_path,
                              show_progress=False)
    assert [e.negatives for e in again.examples] == [e.negatives for e in src.examples]
    # the same folder spelled relative to the working directory hits the same cache
    monkeypatch.chdir(tiny_beir.parent)
    relative = tdata.beir_source(tiny_beir.name, "test", data_dir=".", teachers=["bm25"], depth=10, keep=2,
                                 cache_dir=tmp_path, show_progress=False)
    assert [e.negatives for e in relative.examples] == [e.negatives for e in src.examples]
    # the cache, gzipped and carried elsewhere, is a JSONL source of the same examples
    import gzip

    (cache,) = tmp_path.glob("tiny-test-*.jsonl")
    carried = tmp_path / "carried.jsonl.gz"
    carried.write_bytes(gzip.compress(cache.read_bytes()))
    reused = tdata.jsonl_source(carried, corpus=str(tiny_beir))
    assert [(e.qid, e.query, e.positives, e.negatives, e.scores) for e in reused.examples] == \
        [(e.qid, e.query, e.positives, e.negatives, e.scores) for e in src.examples]
    assert reused.docs == src.docs


def test_batches_are_deterministic_and_fill_missing_negatives(triples):
    src = tdata.triples_source(triples)
    b = tdata.Batcher([src], batch_size=3, n_negatives=2, seed=5)
    one, two = b.batch(7), b.batch(7)
    assert one.queries == two.queries and one.docs == two.docs
    assert len(one.docs) == 9 and one.group == 3
    # the filled-in negatives keep the batch's keys aligned with its documents (no corpus key list leaks in)
    assert len(one.doc_keys) == 9 and all(k.startswith("0:") for k in one.doc_keys)
    assert [src.docs[k[2:]] for k in one.doc_keys] == one.docs


def test_keep_best_saves_the_model_of_the_best_dev_evaluation(tmp_path, backbone, triples, tiny_beir, monkeypatch):
    from lsr import pipeline

    cfg = _config(tmp_path, backbone, triples, **{
        "optim.steps": 6, "eval.dataset": str(tiny_beir), "eval.split": "test", "eval.every": 2,
        "eval.measures": "nDCG@10,R@100", "eval.select": "R@100", "eval.keep_best": True, "eval.k": 10})
    trainer = Trainer(cfg, show_progress=False)
    scores = iter([0.2, 0.5, 0.4])  # the evaluations' R@100, fixed: the second one must win
    original = pipeline.evaluate_dataset

    def fixed(*args, **kwargs):
        result = original(*args, **kwargs)
        result.effectiveness["R@100"] = next(scores)
        return result

    monkeypatch.setattr(pipeline, "evaluate_dataset", fixed)
    result = trainer.train()
    assert [r["step"] for r in result.evaluations] == [2, 4, 6]
    assert [bool(r.get("best")) for r in result.evaluations] == [True, True, False]
    selection = json.loads((tmp_path / "run" / "best" / "selection.json").read_text())
    assert selection == {"step": 4, "measure": "R@100", "value": 0.5, "dataset": f"{tiny_beir}/test"}
    assert load_encoder(str(tmp_path / "run" / "best")).kind == "inference-free"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["step"] == 4 and summary["best"]["R@100"] == 0.5
    with pytest.raises(ConfigError, match="select"):
        _config(tmp_path, backbone, triples, **{"eval.dataset": "x", "eval.select": "MRR@10"}).check()


def test_device_setting(tmp_path, backbone, triples):
    from training.trainer import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="device"):
        _config(tmp_path, backbone, triples, **{"optim.device": "gpu"}).check()
    trainer = Trainer(_config(tmp_path, backbone, triples, **{"optim.device": "auto"}), show_progress=False)
    assert next(trainer.model.parameters()).device.type == trainer.device.type
    assert np.isfinite(trainer.train_step()["loss"])


def test_bad_training_files_name_the_line(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("q\tpos\tneg\nonly two\tfields\n")
    with pytest.raises(DataFormatError, match="t.tsv:2"):
        tdata.triples_source(p)
    j = tmp_path / "ex.jsonl"
    j.write_text('{"query": "a", "positives": ["x"]}\n{"query": "b"}\n')
    with pytest.raises(DataFormatError, match="ex.jsonl:2: no \"positives\""):
        tdata.jsonl_source(j)
    j.write_text('{"query": "a", "positives": ["x"], "scores": {"x": 1.5}}\nnot json\n')
    with pytest.raises(DataFormatError, match="ex.jsonl:2: not valid JSON"):
        tdata.jsonl_source(j)


def test_jsonl_with_teacher_scores_drives_distillation(tmp_path, backbone):
    j = tmp_path / "ex.jsonl"
    lines = [{"query": q, "positives": [p], "negatives": [n], "scores": {"ce": {p: 9.0, n: 1.0}}} for q, p, n in TRIPLES]
    j.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = config_from_dict({"output_dir": str(tmp_path / "r"),
                            "model": {"backbone": backbone, "doc_max_length": 32, "bf16": False},
                            "data": {"train": [{"jsonl": str(j)}], "n_negatives": 1},
                            "loss": {"contrastive": 0.0, "distill": "margin_mse"},
                            "optim": {"steps": 2, "batch_size": 2, "warmup_steps": 0}}, "test")
    rec = Trainer(cfg, show_progress=False).train_step()
    assert "distill" in rec and "contrastive" not in rec


def test_cli_train(tmp_path, backbone, triples, capsys):
    from lsr.cli import main

    cfg = _config(tmp_path, backbone, triples)
    path = tmp_path / "cfg.json"
    cfg.save(path)
    assert main(["train", str(path), "--set", "optim.steps=2", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 2 and load_encoder(out["model_dir"]).kind == "inference-free"
    assert main(["train", str(path), "--set", "optim.stpes=2", "-q"]) == 1
    assert "unknown key 'stpes'" in capsys.readouterr().err
    assert main(["train", "--list-recipes"]) == 0
    assert "inference-free-idf" in capsys.readouterr().out


def test_dense_teacher_mines_and_scores(tiny_beir, backbone, tmp_path):
    pytest.importorskip("faiss")
    from training.teachers import DenseTeacher

    texts = ["the cat sat on the mat", "stock market money", "roses need sun in the garden"]
    t = DenseTeacher("dense", backbone, texts, show_progress=False)
    t.prepare_queries(["cat on a mat", "garden roses"])
    res = t.search(k=5)
    assert res.doc_idx.shape == (2, 3) and res.doc_idx.dtype == np.int32
    for qi in range(2):  # faiss's scores are the inner products score() computes
        np.testing.assert_allclose(t.score(qi, res.doc_idx[qi]), res.scores[qi], rtol=1e-5, atol=1e-6)
        assert (np.diff(res.scores[qi]) <= 1e-6).all()


def test_batch_marks_in_batch_false_negatives():
    src = tdata.Source("s", {"a": "A", "b": "B", "c": "C", "n": "N"},
                       [tdata.Example("q1", ["a", "b"], ["n"]), tdata.Example("q2", ["b"], ["n"])])
    batch = tdata.Batch(["q1", "q2"], ["A", "N", "B", "N"], 2, [0, 0], {}, ["0:a", "0:n", "0:b", "0:n"],
                        [{"0:a", "0:b"}, {"0:b"}])
    assert batch.false_negatives().tolist() == [[False, False, True, False], [False, False, False, False]]
    b = tdata.Batcher([src], batch_size=4, n_negatives=1, seed=0).batch(0)
    mask = b.false_negatives()
    for i in range(4):
        for j in range(8):
            if mask[i, j]:
                assert j // 2 != i and (b.doc_keys[j] in b.positives[i] or b.doc_keys[j] == b.doc_keys[2 * i])


def test_self_mining_with_the_model_under_training(tiny_beir, backbone, tmp_path):
    cfg = config_from_dict({"output_dir": str(tmp_path / "r"),
                            "model": {"backbone": backbone, "doc_max_length": 32, "bf16": False},
                            "data": {"train": [{"dataset": str(tiny_beir), "split": "test"}], "n_negatives": 1,
                                     "negatives": {"teachers": ["self", "bm25"], "depth": 10, "keep": 2}},
                            "loss": {"distill": "kl"},
                            "optim": {"steps": 1, "batch_size": 2, "warmup_steps": 0}}, "test")
    trainer = Trainer(cfg, show_progress=False)
    src = trainer.sources[0]
    assert src.teachers() == ["bm25", "self"]
    for ex in src.examples:
        assert set(ex.scores["self"]) == set(ex.positives) | set(ex.negatives)
    rec = trainer.train_step()
    assert np.isfinite(rec["loss"]) and "distill" in rec


def test_results_table_adds_a_model_to_saved_reports(tmp_path, backbone, triples, tiny_beir, monkeypatch):
    import importlib.util
    from pathlib import Path

    from eval import Report

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "training_results.py"
    spec = importlib.util.spec_from_file_location("training_results", path)
    tr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tr)
    model = Trainer(_config(tmp_path, backbone, triples, **{"optim.steps": 2}), show_progress=False).train().model_dir
    monkeypatch.setenv("LSR_DATA", str(tiny_beir.parent))
    out = tmp_path / "results"
    common = ["--datasets", "tiny", "--out", str(out), "-k", "10"]
    with pytest.raises(SystemExit):  # nothing saved yet to add to
        tr.main(["--add", "--model", f"b={model}", *common])
    with pytest.raises(SystemExit):  # --add without a model
        tr.main(["--add", *common])
    assert tr.main(["--no-baselines", "--model", f"a={model}", *common]) == 0
    assert tr.main(["--add", "--model", f"b={model}", *common]) == 0
    assert tr.main(["--add", "--model", f"a={model}", *common]) == 0  # same name: replaced, not repeated
    report = Report.load(out / "tiny-test")
    assert [s.name for s in report.systems] == ["b", "a"]
    assert report.systems[0].effectiveness == report.systems[1].effectiveness
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "| tiny | a |" in table and "| tiny | b |" in table
    assert table.splitlines()[0].count("&&") == 2  # every command that built the table, in order


def test_a_collapsing_run_stops_and_says_which_way(tmp_path, backbone, triples):
    from training.trainer import CollapseGuard, TrainingCollapsed

    guard = CollapseGuard(dim=1000, grace=3, smoothing=0.5)
    for step in range(3):
        guard.check({"doc_nnz": 0.0}, step)  # within the grace period: no verdict
    with pytest.raises(TrainingCollapsed, match="toward 0 non-zeros.*lower regularizer.doc.weight"):
        guard.check({"doc_nnz": 0.0}, 3)
    with pytest.raises(TrainingCollapsed, match="whole vocabulary.*raise regularizer.doc.weight"):
        CollapseGuard(dim=1000, grace=0).check({"doc_nnz": 900.0}, 0)
    # end to end: an absurd FLOPS weight empties the documents and the trainer stops with the message
    cfg = _config(tmp_path, backbone, triples, **{"regularizer.doc.weight": 1e4, "optim.steps": 60,
                                                  "optim.lr": 5e-2})
    trainer = Trainer(cfg, show_progress=False)
    trainer.guard = CollapseGuard(trainer.model.dim, grace=5, smoothing=0.5)
    with pytest.raises(TrainingCollapsed, match="toward 0"):
        for _ in range(60):
            trainer.train_step()


def test_families_table_from_the_three_family_runs(tmp_path, backbone, triples, tiny_beir, monkeypatch, capsys):
    """benchmarks/families.py on tiny runs of each kind: families.json has the shape issue 20 asks for."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "families.py"
    spec = importlib.util.spec_from_file_location("families", path)
    fam = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fam)
    runs = {}
    for kind, extra in (("splade", {}), ("slim", {"model.token_top_k": 4}), ("inference-free", {}),
                        ("l0", {"model.activation": "log_log", "regularizer.doc.l0_threshold": 2})):
        over = {"optim.steps": 2, "output_dir": str(tmp_path / kind), **extra,
                "model.kind": "inference-free" if kind == "l0" else kind}
        runs[kind] = Trainer(_config(tmp_path, backbone, triples, **over), show_progress=False).train().model_dir
    monkeypatch.setenv("LSR_DATA", str(tiny_beir.parent))
    out = tmp_path / "results"
    common = ["--datasets", "tiny", "--out", str(out), "-k", "4", "--rerank", "4"]
    with pytest.raises(SystemExit):  # the two arms of the comparison go together
        fam.main(["--l0", str(runs["l0"]), *common])
    with pytest.raises(SystemExit):  # a model folder that is not there is named
        fam.main(["--splade", str(tmp_path / "nowhere"), *common])
    with pytest.raises(SystemExit):  # a SPLADE model given as SLIM
        fam.main(["--slim", str(runs["splade"]), *common])
    if not torch.cuda.is_available():  # a GPU asked for where torch sees none: refused with the fix, nothing written
        with pytest.raises(SystemExit):
            fam.main(["--slim", str(runs["slim"]), "--device", "cuda", *common])
        assert "sees no GPU" in capsys.readouterr().err and not out.exists()
    assert fam.main(["--splade", str(runs["splade"]), *common]) == 0
    assert "Not evaluated here (no model given): SLIM, l0 vs FLOPS" in (out / "families.md").read_text()
    assert fam.main(["--add", "--slim", str(runs["slim"]), "--l0", str(runs["l0"]),
                     "--idf-flops", str(runs["inference-free"]), *common]) == 0  # SPLADE's results stay
    got = json.loads((out / "families.json").read_text())
    assert got["command"].count("&&") == 1
    from eval import Report
    names = [s.name for s in Report.load(out / "families-tiny-test").systems]
    assert len(names) == 6 and names[:2] == [fam.SPLADE_ZERO_SHOT, "SPLADE fine-tuned"]
    s, m, c = got["splade"]["tiny"], got["slim"]["tiny"], got["l0_vs_idf_flops"]["tiny"]
    assert {"ndcg@10", "doc_nnz", "query_nnz"} <= set(s) and s["train_steps"] == 2
    assert {"first_stage_ndcg@10", "rescored_ndcg@10", "added_ms_per_query"} <= set(m)
    slim_rows = [x for x in Report.load(out / "families-tiny-test").systems if x.settings.get("family") == "slim"]
    assert [x.settings["device"] for x in slim_rows] == ["cpu", "cpu"]
    assert {"l0_ndcg@10", "idf_flops_ndcg@10", "l0_doc_nnz", "idf_flops_doc_nnz"} <= set(c)
    assert c["doc_nnz_gap"] == pytest.approx(c["l0_doc_nnz"] / c["idf_flops_doc_nnz"] - 1)
    assert 0 <= s["vs_zero_shot"]["p_value"] <= 1
    md = (out / "families.md").read_text()
    assert "| tiny |" in md and "Not evaluated" not in md
    assert (out / "families-tiny-test" / "report.json").exists()
