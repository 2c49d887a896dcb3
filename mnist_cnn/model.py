"""The configurable CNN: `CNNConfig` is the one place a network's shape is decided."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

IMAGE_SIZE = 28
NUM_CLASSES = 10
PADDING_MODES = ("same", "valid")
POOL_TYPES = ("max", "avg")


class InvalidConfig(ValueError):
    """A config that cannot make a network; the message says which part and why."""


@dataclass(frozen=True)
class CNNConfig:
    """Conv blocks (conv -> ReLU -> pool), then FC -> ReLU -> dropout -> FC(10).

    The defaults are the tutorial's network:
    Conv(1,32,3)-pool-Conv(32,64,3)-pool-FC(3136,128)-FC(10).
    """

    conv_blocks: int = 2
    channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    stride: int = 1
    padding: str = "same"
    pool_size: int = 2
    pool_stride: int | None = None
    pool_type: str = "max"
    fc_width: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @property
    def effective_pool_stride(self) -> int:
        return self.pool_stride or self.pool_size

    @property
    def conv_padding(self) -> int:
        """"same" pads (k-1)//2, so stride 1 keeps the size for odd kernels."""
        return (self.kernel_size - 1) // 2 if self.padding == "same" else 0


def _check_fields(config: CNNConfig) -> None:
    positive = {
        "conv_blocks": config.conv_blocks,
        "kernel_size": config.kernel_size,
        "stride": config.stride,
        "pool_size": config.pool_size,
        "pool_stride": config.effective_pool_stride,
        "fc_width": config.fc_width,
    }
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise InvalidConfig(f"{name} must be a positive integer, got {value!r}")
    if len(config.channels) != config.conv_blocks:
        raise InvalidConfig(
            f"channels {list(config.channels)} must have one entry per conv block "
            f"({config.conv_blocks})"
        )
    if any(c < 1 for c in config.channels):
        raise InvalidConfig(f"channels must be positive, got {list(config.channels)}")
    if config.padding not in PADDING_MODES:
        raise InvalidConfig(f"padding must be one of {PADDING_MODES}, got {config.padding!r}")
    if config.pool_type not in POOL_TYPES:
        raise InvalidConfig(f"pool_type must be one of {POOL_TYPES}, got {config.pool_type!r}")
    if not 0.0 <= config.dropout < 1.0:
        raise InvalidConfig(f"dropout must be in [0, 1), got {config.dropout}")


def feature_map_sizes(config: CNNConfig) -> list[int]:
    """Side length after each block; raises InvalidConfig where the map collapses."""
    _check_fields(config)
    size = IMAGE_SIZE
    sizes = []
    for block in range(1, config.conv_blocks + 1):
        conv_size = (size + 2 * config.conv_padding - config.kernel_size) // config.stride + 1
        if conv_size < 1:
            raise InvalidConfig(
                f"block {block}: a {size}x{size} map is smaller than kernel "
                f"{config.kernel_size} (padding {config.padding})"
            )
        if conv_size < config.pool_size:
            raise InvalidConfig(
                f"block {block}: the {conv_size}x{conv_size} map after conv is smaller "
                f"than pool {config.pool_size}"
            )
        size = (conv_size - config.pool_size) // config.effective_pool_stride + 1
        sizes.append(size)
    return sizes


def validate(config: CNNConfig) -> None:
    """Raise InvalidConfig unless `config` builds a network; costs no weights."""
    feature_map_sizes(config)


def build_model(config: CNNConfig) -> nn.Sequential:
    """The one constructor for networks in this project."""
    final_size = feature_map_sizes(config)[-1]
    layers: list[nn.Module] = []
    in_channels = 1
    pool = nn.MaxPool2d if config.pool_type == "max" else nn.AvgPool2d
    pools = config.pool_size > 1 or config.effective_pool_stride > 1
    for out_channels in config.channels:
        conv = nn.Conv2d(
            in_channels, out_channels, config.kernel_size,
            stride=config.stride, padding=config.conv_padding,
        )
        block = [conv, nn.ReLU(inplace=True)]
        if pools:
            block.append(pool(config.pool_size, config.effective_pool_stride))
            if config.pool_type == "max":
                # max-pool and ReLU commute; pooling first runs ReLU on a quarter of the values
                block[1], block[2] = block[2], block[1]
        layers += block
        in_channels = out_channels
    layers += [
        nn.Flatten(),
        nn.Linear(in_channels * final_size * final_size, config.fc_width),
        nn.ReLU(inplace=True),
    ]
    if config.dropout > 0:
        layers.append(nn.Dropout(config.dropout))
    layers.append(nn.Linear(config.fc_width, NUM_CLASSES))
    return nn.Sequential(*layers)

