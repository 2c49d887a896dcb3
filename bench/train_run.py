"""One training run from the command line: load, train with a progress bar, measure, write JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from mnist_cnn.data import TrainValidationSplit, load_train_validation, take_subset
from mnist_cnn.metrics import measure_model
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings, pick_device, train, use_available_cores


@dataclass(frozen=True)
class TrainRun:
    config: CNNConfig
    settings: TrainSettings
    validation_size: int = 5000
    train_size: int | None = None
    data_dir: Path | None = None
    device: str | None = None


def run_training(run: TrainRun, results_dir: Path) -> tuple[str, Path]:
    """Train `run`, measure the model, write a JSON summary; return its text and path."""
    use_available_cores()
    device = pick_device(run.device)
    split = load_train_validation(run.data_dir, run.validation_size, run.settings.seed)
    split = TrainValidationSplit(take_subset(split.train, run.train_size, run.settings.seed), split.validation)
    with tqdm(total=run.settings.epochs, desc="training", unit="epoch") as bar:
        def show(record, model):
            bar.update(1)
            bar.set_postfix(val_acc=f"{record.validation_accuracy:.4f}", loss=f"{record.train_loss:.3f}")

        result = train(run.config, run.settings, split, device, on_evaluation=show)
    metrics = measure_model(result.model)
    last = result.history[-1]
    summary = {
        "config": asdict(run.config),
        "train_settings": asdict(run.settings),
        "validation_size": run.validation_size,
        "train_size": len(split.train),
        "device": str(device),
        "validation_accuracy": last.validation_accuracy,
        "validation_loss": last.validation_loss,
        "train_images_per_second": sum(r.images_per_second for r in result.history) / len(result.history),
        "training_seconds": result.training_seconds,
        **asdict(metrics),
        "history": result.history_dicts(),
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(results_dir) / "train" / f"run-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
    text = (
        f"validation accuracy {last.validation_accuracy:.2%} (loss {last.validation_loss:.4f}) | "
        f"{metrics.parameters:,} params | {metrics.flops_per_image / 1e6:.2f} MFLOPs/image | "
        f"train {summary['train_images_per_second']:,.0f} img/s | "
        f"latency {metrics.latency_ms_batch1:.2f} ms | "
        f"inference {metrics.inference_images_per_second:,.0f} img/s @256"
    )
    return text, path
