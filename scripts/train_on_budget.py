"""Train several variants of a recipe side by side within a fixed time, keep the one best on dev, pack it.

Made for a borrowed GPU machine that is held for minutes, not hours: every variant runs in its own
process on the same GPU (a small model leaves it mostly idle), measures its own step time first, fits
its number of steps (and so its learning-rate schedule) to the minutes given, evaluates on the
recipe's dev split as it goes (``eval.keep_best``), and the variant and step with the best dev score
is packed into ``--pack`` as a tar file (split in parts under ``--part-mb`` when asked, for transports
with a per-file limit) with every variant's logs next to it. Nothing here looks at a test split.

Usage:
    python scripts/train_on_budget.py inference-free-tiny-round3 --minutes 6 \\
        --variant b32: --variant b64n7:optim.batch_size=64,data.n_negatives=7,optim.lr=3e-5 \\
        --pack out/

Each ``--variant NAME:KEY=VALUE,...`` is the recipe with those ``--set``-style overrides (values are
JSON when they parse as JSON, and hold no comma; a value with commas goes in a ``--set``, which applies to
every variant); its run folder is ``<output_dir>/<NAME>``. Then, where the machine
that trains is not the one that ships:

    cat out/best-model.tar.part-* | tar -x -C models/round3     # the chosen model (an lsr encoder)
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tarfile
import time
from pathlib import Path

logger = logging.getLogger("train_on_budget")


def parse_variant(text: str) -> tuple[str, dict]:
    name, colon, rest = text.partition(":")
    if not colon or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"--variant expects NAME:KEY=VALUE,..., got {text!r}")
    return name, dict(parse_setting(item) for item in filter(None, rest.split(",")))


def parse_setting(text: str) -> tuple[str, object]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def fit_steps(step_seconds: float, minutes: float, eval_fraction: float = 0.15) -> int:
    """Steps that fill ``minutes`` at ``step_seconds`` each, leaving ``eval_fraction`` of the time to evaluations."""
    return max(1, int(minutes * 60 * (1 - eval_fraction) / max(step_seconds, 1e-6)))


def run_variant(recipe: str, name: str, overrides: dict, minutes: float, calibrate: int, evals: int,
                fixed_steps: int | None = None) -> dict:
    """One variant in this process: time ``calibrate`` steps, fit the steps to ``minutes``, train.

    With ``fixed_steps`` every variant runs that many steps (a comparison at equal steps), ``minutes``
    only stopping a run that would overrun.
    """
    from training import Trainer, load_config

    base = load_config(recipe, overrides)
    out = Path(base.output_dir) / name
    if fixed_steps:
        steps, step_s, sources = int(fixed_steps), float("nan"), None
    else:
        probe_cfg = load_config(recipe, {**overrides, "output_dir": str(out / "calibration"), "eval.every": 0,
                                         "eval.keep_best": False})
        probe = Trainer(probe_cfg, show_progress=False)
        for _ in range(3):  # warm-up: lazy initialisation, kernel selection
            probe.train_step()
        t0 = time.perf_counter()
        for _ in range(calibrate):
            probe.train_step()
        step_s = (time.perf_counter() - t0) / calibrate
        steps = fit_steps(step_s, minutes)
        logger.info("%s: %.3f s per step on %s -> %d steps in %.1f min", name, step_s, probe.device, steps, minutes)
        sources = probe.sources
        del probe
    every = max(1, steps // max(1, evals))
    cfg = load_config(recipe, {**overrides, "output_dir": str(out), "optim.steps": steps, "eval.every": every,
                               "eval.keep_best": True, "optim.max_minutes": minutes})
    trainer = Trainer(cfg, show_progress=False, sources=sources)
    result = trainer.train()
    if fixed_steps:
        step_s = result.seconds / max(1, result.steps)
    summary = {"variant": name, "overrides": overrides, "step_seconds": round(step_s, 4), "steps": result.steps,
               "train_seconds": round(result.seconds, 1), "evaluations": result.evaluations}
    (out / "variant.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def pack(folder: Path, dest: Path, name: str, part_mb: float | None) -> list[Path]:
    """``folder`` as ``dest/name`` (a tar), split into parts of at most ``part_mb`` MB when given."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    with tarfile.open(target, "w") as tar:
        tar.add(folder, arcname=".")
    if not part_mb or target.stat().st_size <= part_mb * 1e6:
        return [target]
    data = target.read_bytes()
    target.unlink()
    size = int(part_mb * 1e6)
    parts = []
    for i in range(0, len(data), size):
        p = dest / f"{name}.part-{i // size:02d}"
        p.write_bytes(data[i:i + size])
        parts.append(p)
    return parts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="a recipe name or config file (its eval section names the dev split)")
    ap.add_argument("--minutes", type=float, required=True, help="training minutes per variant (all run at once)")
    ap.add_argument("--variant", action="append", type=parse_variant, required=True, metavar="NAME:KEY=VALUE,...")
    ap.add_argument("--calibrate", type=int, default=20, help="steps timed to fit the schedule (default 20)")
    ap.add_argument("--steps", type=int, help="run exactly this many steps in every variant (no calibration; "
                    "for comparisons at equal steps); --minutes then only stops an overrun")
    ap.add_argument("--evals", type=int, default=8, help="dev evaluations per variant (default 8)")
    ap.add_argument("--pack", type=Path, help="folder for the chosen model's tar and the variants' logs")
    ap.add_argument("--part-mb", type=float, help="split the model's tar into parts of at most this many MB")
    ap.add_argument("--set", action="append", default=[], type=parse_setting, metavar="KEY=VALUE",
                    help="an override for every variant (before the variant's own), e.g. output_dir=runs/x")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    common = dict(args.set)
    own = dict(args.variant)
    variants = {name: {**common, **mine} for name, mine in own.items()}
    if len(variants) != len(args.variant):
        ap.error("variant names must differ")
    if args.worker:
        run_variant(args.recipe, args.worker, variants[args.worker], args.minutes, args.calibrate, args.evals,
                    args.steps)
        return 0

    from training import load_config

    base = load_config(args.recipe, common)
    root = Path(base.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    # the worker gets the same settings: shared ones one per --set (their JSON may hold commas), each variant's own
    every_variant = [x for k, v in common.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    every_variant += [x for n, o in own.items()
                      for x in ("--variant", f"{n}:" + ",".join(f"{k}={json.dumps(v)}" for k, v in o.items()))]
    procs = {}
    for name in variants:
        log = open(root / f"{name}.log", "w", encoding="utf-8")
        cmd = [sys.executable, __file__, args.recipe, "--minutes", str(args.minutes), "--calibrate",
               str(args.calibrate), "--evals", str(args.evals), "--worker", name, *every_variant,
               *(["--steps", str(args.steps)] if args.steps else [])]
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    failed = []
    for name, (proc, log) in procs.items():
        if proc.wait() != 0:
            failed.append(name)
            logger.error("variant %s failed (exit %d); see %s", name, proc.returncode, log.name)
        log.close()
    measure = base.eval.selection_measure
    results = []
    for name in variants:
        f = root / name / "variant.json"
        if f.exists():
            s = json.loads(f.read_text(encoding="utf-8"))
            best = [r for r in s["evaluations"] if r.get("best")]
            if best:
                results.append((best[-1][measure], name, best[-1]["step"], s))
    for value, name, step, s in sorted(results, reverse=True):
        logger.info("%s: best dev %s %.4f at step %d of %d (%.3f s/step)", name, measure, value, step, s["steps"],
                    s["step_seconds"])
    if not results:
        logger.error("no variant finished with an evaluation")
        return 1
    value, name, step, _ = max(results)
    choice = {"variant": name, "step": step, "measure": measure, "value": value, "failed": failed,
              "variants": [s for *_, s in results]}
    (root / "choice.json").write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
    logger.info("chosen: %s at step %d (%s %.4f on the dev split)", name, step, measure, value)
    if args.pack:
        parts = pack(root / name / "best", args.pack, "best-model.tar", args.part_mb)
        logs = args.pack / "logs.tar.gz"
        with tarfile.open(logs, "w:gz") as tar:
            tar.add(root / "choice.json", arcname="choice.json")
            for n in variants:
                for item in ("variant.json", "eval_log.jsonl", "train_log.jsonl", "config.json", "summary.json"):
                    if (root / n / item).exists():
                        tar.add(root / n / item, arcname=f"{n}/{item}")
                if (root / f"{n}.log").exists():
                    tar.add(root / f"{n}.log", arcname=f"{n}.log")
        logger.info("packed %s and %s", ", ".join(p.name for p in parts), logs.name)
    return 0 if not failed else 2


if __name__ == "__main__":
    sys.exit(main())
