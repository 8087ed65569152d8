"""Import rules of shared/DESIGN.md, checked two ways: what loads at run time, and what the code says."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "index": {"torch", "transformers", "lsr", "training", "eval"},
    "eval": {"torch", "transformers", "lsr", "training"},
    "lsr": {"training"},
}


def loaded_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("stmt", ["import index", "import eval", "import lsr.cli", "import lsr",
                                  "from lsr.cli import main; main(['--help'])"])
def test_no_torch_at_import(stmt):
    assert "torch" not in loaded_after(stmt)


def test_index_and_eval_stand_alone():
    mods = loaded_after("import index")
    assert not mods & {"lsr", "eval", "training", "torch"}
    mods = loaded_after("import eval")
    assert not mods & {"lsr", "index", "training", "torch"}


def imported_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_source_respects_import_rules(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "lsr" and path.name == "cli.py":
            continue  # the CLI may import training lazily, inside a subcommand
        for name, line in imported_names(path):
            if name in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_index_modules_import_without_cycles():
    """index.reorder and index.inverted both use index.threads; neither imports the other at module level."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "index"
    for name, other in (("reorder", "inverted"), ("threads", "inverted"), ("searcher", "inverted")):
        tree = ast.parse((root / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
        assert not any(n.module == other for n in top), f"index/{name}.py imports index.{other} at module level"
