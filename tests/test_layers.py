"""The house plan: bench/ is the pipeline by stage, and no stage imports a later one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The pipeline's stages in order: a module may import its own stage and earlier ones.
STAGES = ("store", "search", "evidence", "benchmark", "final", "report", "machine")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_bench_top_level_holds_only_the_cli_and_the_stages():
    top = {p.name for p in BENCH.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {"__init__.py", "cli.py", *STAGES}


def test_no_stage_imports_a_later_stage_or_the_cli():
    later = []
    for path in BENCH.glob("*/*.py"):
        stage = path.parent.name
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] != "bench" or len(parts) < 2:
                continue
            if parts[1] == "cli" or (parts[1] in STAGES
                                     and STAGES.index(parts[1]) > STAGES.index(stage)):
                later.append(f"{path.relative_to(BENCH)} imports {name}")
    assert later == []


def test_no_private_module_of_a_dependency_is_imported():
    private = re.compile(r"optuna\.[a-z_.]*\._|from optuna\._|\._processes")
    hits = [f"{path}: {line}" for path in [*BENCH.rglob("*.py"), *BENCH.parent.glob("mnist_cnn/*.py")]
            for line in path.read_text().splitlines() if private.search(line)]
    assert hits == []
