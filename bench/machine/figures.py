"""One run that measures a machine end to end and writes every figure to one JSON file.

Made for the GPU machines this project is lent now and then, which come bare and for minutes:
`mnist-bench figures --device cuda --out figures.json` runs the speed comparison, a search, the
same search with K worker processes on one device (trials per minute for each K), a one-epoch
finetune and the report, and rewrites the JSON after each step, so a run cut short still leaves
what it measured. With `--device cpu` and small sizes it runs in CI, which keeps it working.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from bench.search.settings import SearchSettings
from bench.store import layout


@dataclass(frozen=True)
class FiguresSettings:
    """What to measure; the defaults are the full run a GPU session has minutes for."""

    out: Path = Path("figures.json")
    device: str | None = None  # default: CUDA when there is one
    results_dir: Path = Path("results-figures")
    data_dir: Path | None = None
    trials: int = 20
    workers: tuple[int, ...] = (1, 2, 4)
    worker_trials: int = 8  # trials per worker count: enough for a rate, few enough for minutes
    train_size: int | None = None  # default: all 55,000 training images
    validation_size: int = 5000
    speed_images: int = 6400
    finetune_epochs: int = 1

    def __post_init__(self) -> None:
        for name in ("trials", "worker_trials", "validation_size", "speed_images",
                     "finetune_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.workers or min(self.workers) < 1:
            raise ValueError(f"worker counts must be at least 1, got {self.workers}")

    def search(self, **changes: Any) -> SearchSettings:
        base = SearchSettings(trials=self.trials, train_size=self.train_size,
                              validation_size=self.validation_size, results_dir=self.results_dir,
                              data_dir=self.data_dir, device=self.device, replay=False,
                              curve_table=layout.curve_table(self.results_dir))
        return replace(base, **changes)


def machine() -> dict[str, Any]:
    """What ran it: enough to compare one machine's figures with another's."""
    from mnist_cnn.train import available_cores

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": available_cores(),
            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def run_figures(settings: FiguresSettings,
                progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Every step in turn; the JSON at `settings.out` is rewritten after each one."""
    from bench.final.finetune import FinetuneSettings, run_finetune
    from bench.report import ReportSettings, build_report
    from bench.search.runner import run_search
    from bench.machine.speed import run_speed_benchmark
    from mnist_cnn.train import pick_device

    from mnist_cnn.data import load_split

    device = str(pick_device(settings.device))
    search = settings.search()  # data the steps cannot load fail here, not as five failed steps
    load_split(search.data_dir, search.validation_size, search.data_seed, search.train_size)
    for folder in (Path(settings.out).parent, settings.results_dir):  # so do unmakeable outputs
        layout.make_folder(folder)
    figures: dict[str, Any] = {"device": device, "machine": machine(),
                               "settings": _jsonable(asdict(settings)), "steps": {}}

    def step(name: str, run: Callable[[], dict[str, Any]]) -> None:
        progress(f"{name} ...")
        started = time.perf_counter()
        try:
            result = run()
        except Exception as error:  # a failed step is a figure too; the others still run
            result = {"error": f"{type(error).__name__}: {error}"}
        result["seconds"] = round(time.perf_counter() - started, 2)
        figures["steps"][name] = result
        _write(settings.out, figures)
        progress(f"{name}: {json.dumps(result)}")

    def speed() -> dict[str, Any]:
        result = run_speed_benchmark(images=settings.speed_images, repeats=3,
                                     data_dir=settings.data_dir, device=device)
        bf16_fraction = result.fraction_of_bf16_matmul
        return {"ratio": round(result.ratio, 3), "precision": result.precision,
                "fraction_of_matmul": round(result.fraction_of_matmul, 3),
                "fraction_of_bf16_matmul": None if bf16_fraction is None else round(bf16_fraction, 3),
                "ours_images_per_second": round(result.ours_median),
                "tutorial_images_per_second": round(result.tutorial_median),
                "matmul_gflops": round(result.matmul_flops_per_second / 1e9, 1)}

    def search() -> dict[str, Any]:
        outcome = run_search(settings.search(study_name="figures-search"))
        return {"trials": outcome.finished, "pruned": outcome.pruned,
                "best_validation_accuracy": outcome.best_value,
                "search_seconds": round(outcome.seconds, 2)}

    def workers() -> dict[str, Any]:
        rates = {}
        for count in settings.workers:
            outcome = run_search(settings.search(study_name=f"figures-workers-{count}",
                                                 trials=settings.worker_trials, workers=count,
                                                 pruner="none"))
            rates[str(count)] = {"trials": outcome.finished, "seconds": round(outcome.seconds, 2),
                                 "trials_per_minute": round(60 * outcome.finished
                                                            / max(outcome.seconds, 1e-9), 2)}
        return {"workers": rates}

    def finetune() -> dict[str, Any]:
        metrics, _ = run_finetune(FinetuneSettings(
            study="figures-search", results_dir=settings.results_dir,
            epochs=settings.finetune_epochs, data_dir=settings.data_dir, device=device))
        return {"test_accuracy": metrics["test_accuracy_mean"],
                "started_from": metrics["started_from"], "finetune_seconds": metrics["seconds"]}

    def report() -> dict[str, Any]:
        output = build_report(ReportSettings(results_dir=settings.results_dir,
                                             study="figures-search"))
        return {"files": len(output.files), "index": str(output.out_dir / "index.html")}

    for name, run in (("speed", speed), ("search", search), ("workers", workers),
                      ("finetune", finetune), ("report", report)):
        step(name, run)
    return figures


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write(path: Path, figures: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(figures, indent=2))
    partial.replace(path)
