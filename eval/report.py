"""Evaluation reports: one JSON for machines, one Markdown table for people, a plot when comparing.

A :class:`Report` holds the data set, the measures, one :class:`SystemResult` per system
(effectiveness, per-query values, efficiency, exact settings), the library version, the
command line and the machine. ``report.save(out_dir)`` writes ``report.json``, ``report.md`` and,
with two or more systems, ``tradeoff.png`` (nDCG@10 or the first measure against latency) and,
in ``report.md``, paired significance tests of every system against the first
(:meth:`Report.significance`, :mod:`eval.significance`).

Example:
    >>> from eval.report import Report, SystemResult
    >>> rep = Report(dataset={"name": "scifact", "split": "test"}, measures=["nDCG@10"],
    ...              systems=[SystemResult("bm25", {"k1": 0.9}, {"nDCG@10": 0.68}, {})])
    >>> print(rep.to_markdown().splitlines()[2])
    | bm25 | 0.6800 | – | – | – | – | – | – | – | – | – | – |
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .atomic import atomic_file
from .significance import Comparison, compare, comparisons_markdown, holm

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT_PNG = "tradeoff.png"


def library_version() -> str:
    try:
        from importlib.metadata import version

        return version("lsr")
    except Exception:
        return "0+unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def machine_info() -> dict:
    """Where a measurement was taken: CPU, cores, memory, OS, Python and key library versions."""
    versions = {}
    for mod in ("numpy", "scipy", "numba", "ir_measures", "torch", "transformers"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
        "git_commit": _git_commit(),
    }


@dataclass
class SystemResult:
    """Everything measured for one system (encoder + index + engine settings) on one data set.

    Attributes:
        name: short label used in tables and plots.
        settings: the exact configuration (encoder config, engine, k...), JSON-able.
        effectiveness: ``{measure: aggregate value}``.
        efficiency: latency (``search_latency`` / ``query_encode_latency`` dicts of
            :func:`eval.efficiency.latency_stats`), ``throughput_qps``, ``query_nnz`` / ``doc_nnz``
            (dicts of :func:`eval.efficiency.vector_length_stats`), ``flops``, ``index_bytes``,
            ``build_seconds``, ``doc_encode_seconds``.
        per_query: ``{query_id: {measure: value}}``.
        run_file: the TREC run file written for this system, if any.
    """

    name: str
    settings: dict
    effectiveness: dict[str, float]
    efficiency: dict
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    run_file: str | None = None


@dataclass
class Report:
    """A comparison of systems on one data set; see the module docstring."""

    dataset: dict
    measures: list[str]
    systems: list[SystemResult]
    command: str | None = None
    library_version: str = field(default_factory=library_version)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    machine: dict = field(default_factory=machine_info)

    # ----------------------------------------------------------- serialise
    def to_dict(self) -> dict:
        d = asdict(self)
        d["format"] = "lsr-report"
        d["format_version"] = 1
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        systems = [SystemResult(**s) for s in d["systems"]]
        return cls(dataset=d["dataset"], measures=list(d["measures"]), systems=systems,
                   command=d.get("command"), library_version=d.get("library_version", "?"),
                   created=d.get("created", ""), machine=d.get("machine", {}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Report:
        """Read a ``report.json`` (or a directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / REPORT_JSON
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}: no such report; run `lsr evaluate ... --out DIR` first") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON ({e})") from None
        if d.get("format") != "lsr-report":
            raise ValueError(f"{p} is not an lsr report (format {d.get('format')!r})")
        return cls.from_dict(d)

    # ------------------------------------------------------------ markdown
    def to_markdown(self) -> str:
        """One table: effectiveness and efficiency of every system side by side."""
        eff_cols = [
            ("q nnz", lambda e: _get(e, "query_nnz", "mean"), "{:.1f}"),
            ("d nnz", lambda e: _get(e, "doc_nnz", "mean"), "{:.1f}"),
            ("FLOPS", lambda e: e.get("flops"), "{:.3g}"),
            ("p50 ms", lambda e: _get(e, "search_latency", "p50_ms"), "{:.3f}"),
            ("p95 ms", lambda e: _get(e, "search_latency", "p95_ms"), "{:.3f}"),
            ("p99 ms", lambda e: _get(e, "search_latency", "p99_ms"), "{:.3f}"),
            ("p50 ms +enc", lambda e: _get(e, "encode_and_search_latency", "p50_ms"), "{:.3f}"),
            ("QPS", lambda e: e.get("throughput_qps"), "{:.0f}"),
            ("index MB", lambda e: None if e.get("index_bytes") is None else e["index_bytes"] / 1e6, "{:.2f}"),
            ("build s", lambda e: e.get("build_seconds"), "{:.2f}"),
            ("encode s", lambda e: e.get("doc_encode_seconds"), "{:.1f}"),
        ]
        header = ["system", *self.measures, *[c[0] for c in eff_cols]]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for s in self.systems:
            cells = [s.name]
            for m in self.measures:
                v = s.effectiveness.get(m)
                cells.append("–" if v is None else f"{v:.4f}")
            for _, get, fmt in eff_cols:
                v = get(s.efficiency)
                cells.append("–" if v is None else fmt.format(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    # -------------------------------------------------------- significance
    def significance(self, baseline: str | None = None, measures: Sequence[str] | None = None, *,
                     correction: str | None = "holm", confidence: float = 0.95) -> list[Comparison]:
        """Every other system against ``baseline`` (default: the first system), paired per query.

        Args:
            baseline: a system's name.
            measures: measure names (default: the report's measures that have per-query values).
            correction: ``"holm"`` (p-values adjusted over the systems compared, per measure) or None.
            confidence: level of the bootstrap intervals.

        Returns one :class:`eval.significance.Comparison` per (measure, system); see
        :mod:`eval.significance` for the tests.
        """
        if correction not in ("holm", None):
            raise ValueError(f"correction must be 'holm' or None, got {correction!r}")
        if not self.systems:
            raise ValueError("the report has no systems")
        names = [s.name for s in self.systems]
        base_name = names[0] if baseline is None else baseline
        if base_name not in names:
            raise ValueError(f"baseline {base_name!r} is not in the report; its systems are {names}")
        base = self.systems[names.index(base_name)]
        out: list[Comparison] = []
        if measures is None:  # the report's measures that per-query values were kept for
            kept = {m for s in self.systems for v in s.per_query.values() for m in v}
            measures = [m for m in self.measures if m in kept]
        for m in measures:
            family = [compare(s.per_query, base.per_query, m, system=s.name, baseline=base.name,
                              confidence=confidence) for s in self.systems if s is not base]
            out.extend(holm(family) if correction == "holm" else family)
        return out

    def to_markdown_document(self) -> str:
        ds = self.dataset
        title = f"# {ds.get('name')} ({ds.get('split') or 'all'})"
        meta = [
            f"- documents: {ds.get('n_docs')}, judged queries: {ds.get('n_judged_queries')}",
            f"- lsr {self.library_version}, {self.created}, {self.machine.get('cpu')} "
            f"({self.machine.get('affinity_cores') or self.machine.get('logical_cores')} cores)",
        ]
        if self.command:
            meta.append(f"- command: `{self.command}`")
        notes = ("Latency: one query at a time; p50 ms is the search alone, p50 ms +enc adds the query's encoding "
                 "(SPLADE runs its model per query, an inference-free encoder only tokenizes); QPS: one batch of all "
                 "queries, search only. FLOPS: expected multiplications per query-document pair (SPLADE's definition).")
        warmed = {s.settings.get("warmup") for s in self.systems} - {None}
        if warmed:
            notes += " Warm-up: " + "; ".join(sorted(warmed)) + ", so no timing includes kernel compilation."
        parts = [title, "", *meta, "", self.to_markdown(), "", notes, ""]
        if len(self.systems) >= 2 and all(s.per_query for s in self.systems):
            parts += [f"## Against {self.systems[0].name}", "",
                      comparisons_markdown(self.significance()), "",
                      "Paired over queries: difference of means with a 95 % bootstrap interval, two-sided paired "
                      "t-test, p-values Holm-adjusted over the systems per measure (* below 0.05).", ""]
        return "\n".join(parts)

    # ---------------------------------------------------------------- plot
    def plot(self, path: str | os.PathLike, measure: str | None = None) -> Path | None:
        """Scatter of a measure (default nDCG@10, else the first) against p50 latency per query: a hollow
        marker for the search alone, a filled one (joined to it) for query encoding + search.

        Returns the path written, or ``None`` when matplotlib is missing (a warning is logged).
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            logger.warning("matplotlib is not installed (pip install 'lsr[plot]'): no plot written")
            return None
        measure = measure or ("nDCG@10" if "nDCG@10" in self.measures else self.measures[0])
        fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
        xs = []
        for i, s in enumerate(self.systems):
            x = _get(s.efficiency, "search_latency", "p50_ms")
            x_enc = _get(s.efficiency, "encode_and_search_latency", "p50_ms")
            y = s.effectiveness.get(measure)
            if x is None or y is None:
                continue
            color = f"C{i % 10}"
            xs.append(x)
            ax.scatter([x], [y], s=40, facecolors="none", edgecolors=color)
            label_x = x
            if x_enc is not None and x_enc > 0:  # the same system with its query encoding: filled, joined
                xs.append(x_enc)
                ax.plot([x, x_enc], [y, y], color=color, lw=0.8, alpha=0.6)
                ax.scatter([x_enc], [y], s=40, color=color)
                label_x = x_enc
            ax.annotate(s.name, (label_x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        log = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 10
        if log:
            ax.set_xscale("log")
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel("p50 latency per query (ms" + (", log scale" if log else "")
                      + "): ○ search only, ● query encoding + search")
        ax.set_ylabel(measure)
        ax.set_title(f"{self.dataset.get('name')} {self.dataset.get('split') or ''}: {measure} vs latency")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path)
        plt.close(fig)
        return path

    # ---------------------------------------------------------------- save
    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and (two or more systems) ``tradeoff.png`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {"json": _atomic_write(out / REPORT_JSON, self.to_json() + "\n"),
                   "markdown": _atomic_write(out / REPORT_MD, self.to_markdown_document())}
        if len(self.systems) >= 2:
            p = self.plot(out / PLOT_PNG)
            if p is not None:
                written["plot"] = p
        return written


def _get(d: dict, key: str, sub: str):
    v = d.get(key)
    if isinstance(v, dict):
        return v.get(sub)
    return None


def _atomic_write(path: Path, text: str) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
