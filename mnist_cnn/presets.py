"""Named networks with their training: `mnist-bench train --preset NAME`.

A preset is a config and training settings that were chosen on validation accuracy only; its
test accuracy is measured afterwards, over many seeds, as a check, never to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings


@dataclass(frozen=True)
class Preset:
    name: str
    config: CNNConfig
    settings: TrainSettings
    origin: str  # how it was chosen


PRESETS = {
    preset.name: preset
    for preset in (
        Preset("tutorial", CNNConfig(), TrainSettings(),
               "the tutorial's network and Adam at lr 1e-3, batch 64, 10 epochs"),
        Preset("speedrun",
               CNNConfig(channels=(16, 32), kernel_size=3, fc_width=128),
               TrainSettings(epochs=2, batch_size=128, learning_rate=0.01, lr_schedule="onecycle"),
               "the best trial (98.98% validation; lr 0.00998 rounded) of `mnist-bench search "
               "--space speedrun --epochs 2 --evaluations-per-epoch 2 --pruner none --trials 20`, "
               "2026-11-29"),
    )
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]
