"""One training run from the command line: load, train with a progress bar (for one seed or
several), measure, optionally test once at the end, write JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from bench.evidence.reproduction import Measured, Reference
from bench.store import layout
from bench.store.identity import Fidelity
from mnist_cnn.data import load_split, load_test_set, require_test_files
from mnist_cnn.metrics import measure_model
from mnist_cnn.model import CNNConfig
from mnist_cnn.progress import progress_bar
from mnist_cnn.train import TrainSettings, evaluate, pick_device, train, use_available_cores


@dataclass(frozen=True)
class TrainRun:
    """One network trained with `repeats` seeds (settings.seed, +1, ...) on one validation split;
    with `test`, each final model is scored on the test set once, after all training."""

    config: CNNConfig
    settings: TrainSettings
    validation_size: int = 5000
    train_size: int | None = None
    data_dir: Path | None = None
    device: str | None = None
    repeats: int = 1
    test: bool = False
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")


def run_training(run: TrainRun, results_dir: Path) -> tuple[str, Path]:
    """Train `run`, measure the model, write its JSON record; return the summary it prints
    and the record's path."""
    use_available_cores()
    device = pick_device(run.device)
    split = load_split(run.data_dir, run.validation_size, run.settings.seed, run.train_size)
    if run.test:
        require_test_files(run.data_dir)  # missing ones fail before any training
    out_dir = layout.make_folder(Path(results_dir) / "train")  # so does an unmakeable folder
    results = []
    for offset in range(run.repeats):
        settings = replace(run.settings, seed=run.settings.seed + offset)
        label = f"training seed {settings.seed}" if run.repeats > 1 else "training"
        with progress_bar(total=settings.epochs, desc=label, unit="epoch") as bar:
            def show(record, model):
                bar.update(1)
                bar.set_postfix(val_acc=f"{record.validation_accuracy:.4f}",
                                loss=f"{record.train_loss:.3f}")

            results.append(train(run.config, settings, split, device, on_evaluation=show))
    # Every model is final before the test files are read, once.
    tests = []
    if run.test:
        test_set = load_test_set(run.data_dir)
        tests = [evaluate(r.model, test_set, device, precision=run.settings.precision).accuracy
                 for r in results]
    metrics = measure_model(results[0].model, precision=run.settings.precision)
    seeds = [{"seed": run.settings.seed + i, "validation_accuracy": r.history[-1].validation_accuracy,
              "validation_loss": r.history[-1].validation_loss,
              "training_seconds": r.training_seconds,
              **({"test_accuracy": tests[i]} if tests else {}), "history": r.history_dicts()}
             for i, r in enumerate(results)]
    fidelity = Fidelity.of(run.settings, len(split.train), len(split.validation), run.data_dir,
                           device.type, split.seed)
    reference = Reference.shipped(results_dir)
    check = reference.check(asdict(run.config), fidelity.record(),
                            [Measured(s["seed"], tuple(s["history"])) for s in seeds]) \
        if reference else None
    validation = [s["validation_accuracy"] for s in seeds]
    seconds = [s["training_seconds"] for s in seeds]
    run_record = {
        "preset": run.preset,
        "config": asdict(run.config),
        "train_settings": asdict(run.settings),
        "validation_size": run.validation_size,
        "train_size": len(split.train),
        "device": str(device),
        "validation_accuracy": statistics.fmean(validation),
        "validation_loss": statistics.fmean(s["validation_loss"] for s in seeds),
        "train_images_per_second": statistics.fmean(
            rec.images_per_second for r in results for rec in r.history),
        "training_seconds": statistics.fmean(seconds),
        "training_seconds_max": max(seconds),
        **_spread("test_accuracy", tests),
        **asdict(metrics),
        "seeds": seeds,
        "history": seeds[0]["history"],
        **({"reference_check": {"reproduced": check.reproduced, "sentence": check.sentence()}}
           if check else {}),
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"run-{stamp}.json"
    path.write_text(json.dumps(run_record, indent=2))
    over = f" over {run.repeats} seeds" if run.repeats > 1 else ""
    seconds_text = (f"{run_record['training_seconds']:.1f} s of training per seed (max "
                    f"{run_record['training_seconds_max']:.1f} s)" if over
                    else f"{run_record['training_seconds']:.1f} s of training")
    lines = [
        f"validation accuracy {run_record['validation_accuracy']:.2%}{over} | "
        f"{metrics.parameters:,} params | {metrics.flops_per_image / 1e6:.2f} MFLOPs/image | "
        f"train {run_record['train_images_per_second']:,.0f} img/s, {seconds_text} | "
        f"{metrics.latency_text()} | "
        f"inference {metrics.inference_images_per_second:,.0f} img/s @256"
    ]
    if tests:
        spread = (f" ± {run_record['test_accuracy_std']:.2%} (sd; min {min(tests):.2%}, max "
                  f"{max(tests):.2%}, n={len(tests)} seeds)" if len(tests) > 1 else " (one seed)")
        lines.append(f"test accuracy {run_record['test_accuracy_mean']:.2%}{spread}")
    if reference:
        lines += reference.unreadable
    if check:
        lines.append(check.sentence())
    return "\n".join(lines), path


def _spread(name: str, values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"{name}_mean": statistics.fmean(values),
            f"{name}_std": statistics.stdev(values) if len(values) > 1 else 0.0,
            f"{name}_min": min(values), f"{name}_max": max(values)}
