"""The house plan: bench/ is the pipeline by stage, and no stage imports a later one."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The pipeline's stages in order: a module may import its own stage and earlier ones.
STAGES = ("store", "search", "evidence", "race", "benchmark", "final", "report", "machine")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def module_name(path: Path, root: Path = BENCH) -> str:
    """bench/report/page.py -> bench.report.page; bench/report/__init__.py -> bench.report."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = BENCH) -> dict[str, set[str]]:
    """Each module of bench -> the modules of bench it imports, anywhere in its code (imports
    under TYPE_CHECKING or inside a function count too). `from bench.x import y` points at
    bench.x.y where that is a module, else at bench.x."""
    paths = {module_name(path, root): path for path in root.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.update(f"{node.module}.{alias.name}"
                               if f"{node.module}.{alias.name}" in paths else node.module
                               for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {target for target in targets if target in paths and target != name}
    return graph


def import_cycle(root: Path = BENCH) -> list[str]:
    """One circle of imports among the modules of bench, or [] when there is none."""
    try:
        TopologicalSorter(import_graph(root)).prepare()
    except CycleError as error:
        return list(error.args[1])
    return []


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


def test_no_module_of_evidence_imports_the_searchs_runner_or_objective():
    """Evidence is pure functions of studies: training (the race's job) goes through mnist_cnn."""
    training = {"bench.search.runner", "bench.search.objective"}
    hits = [f"{path.relative_to(BENCH)} imports {name}"
            for path in (BENCH / "evidence").glob("*.py") for name in imported_modules(path)
            if name in training or name.rpartition(".")[0] in training]
    assert hits == []


def test_no_private_module_of_a_dependency_is_imported():
    private = re.compile(r"optuna\.[a-z_.]*\._|from optuna\._|\._processes")
    hits = [f"{path}: {line}" for path in [*BENCH.rglob("*.py"), *BENCH.parent.glob("mnist_cnn/*.py")]
            for line in path.read_text().splitlines() if private.search(line)]
    assert hits == []


def test_no_module_of_bench_imports_itself_round_a_circle():
    """Inside a stage as between stages: a circle makes import order matter and the modules
    one, e.g. page -> plots -> glance -> page (an import under TYPE_CHECKING counts too)."""
    assert import_cycle() == []


def public_surface(stage: Path) -> tuple[set[str], set[str]]:
    """A stage package's __all__, and the names it can hold: its modules and what its
    __init__.py imports (read from the source, not imported)."""
    declared, present = set(), {path.stem for path in stage.glob("*.py")}
    for node in ast.parse((stage / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                for t in node.targets):
            declared = set(ast.literal_eval(node.value))
        elif isinstance(node, ast.ImportFrom):
            present.update(alias.asname or alias.name for alias in node.names)
    return declared, present


def test_each_stage_declares_the_modules_other_stages_import():
    """A stage's __all__ is its public surface: every module of it that the CLI or another
    stage imports is named there, and every name there exists."""
    graph = import_graph()
    wrong = []
    for stage in STAGES:
        declared, present = public_surface(BENCH / stage)
        package = f"bench.{stage}"
        used = {target.rpartition(".")[2] for user, targets in graph.items()
                if not user.startswith(package) for target in targets
                if target.startswith(package + ".")}
        wrong += [f"{package}.__all__ lacks {name}, which another stage imports"
                  for name in sorted(used - declared)]
        wrong += [f"{package}.__all__ names {name}, which it does not hold"
                  for name in sorted(declared - present)]
        if not declared:
            wrong.append(f"{package} declares no __all__")
    assert wrong == []
