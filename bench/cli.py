"""The `mnist-bench` command: thin commands that parse options and call library functions."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from bench.layout import ensure_results_dir

DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MNIST_BENCH_DATA_DIR",
    help="Folder of the four MNIST IDX files (gzipped or not). Default: the copy shipped "
    "in the package. Env: MNIST_BENCH_DATA_DIR.",
)
RESULTS_DIR_OPTION = click.option(
    "--results-dir",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder for results.",
)
DEVICE_OPTION = click.option(
    "--device", default=None, help="torch device, e.g. cpu or cuda:0. Default: CUDA when there is one."
)


class BadInput(click.ClickException):
    """Bad input found after parsing: a one-line error and exit code 2."""

    exit_code = 2


def bad_input_errors(command):
    """Turn the library's input errors into BadInput, so they print as one line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from mnist_cnn.data import DataError
        from mnist_cnn.model import InvalidConfig

        try:
            return command(*args, **kwargs)
        except (InvalidConfig, DataError, ValueError) as error:
            raise BadInput(str(error)) from None

    return wrapper


def parse_channels(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not channels or min(channels) < 1:
        raise click.BadParameter(f"channels must be positive, got {value!r}")
    return channels


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Hyperparameter search and benchmarking for CNNs on MNIST.

    Start with `mnist-bench search --trials 50`, then `mnist-bench report results/`
    and `mnist-bench finetune --best`.
    """


@cli.command()
@click.option("--channels", default="32,64", show_default=True, callback=parse_channels,
              help="Output channels per conv block, comma-separated; one entry per block.")
@click.option("--kernel-size", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--padding", type=click.Choice(["same", "valid"]), default="same", show_default=True)
@click.option("--pool-size", type=click.IntRange(min=1), default=2, show_default=True,
              help="Pooling window; 1 means no pooling.")
@click.option("--pool-stride", type=click.IntRange(min=1), default=None,
              help="Pooling stride. Default: the pool size.")
@click.option("--pool-type", type=click.Choice(["max", "avg"]), default="max", show_default=True)
@click.option("--fc-width", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=1e-3,
              show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds weights, batch order and the validation split.")
@click.option("--validation-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Images carved from the training set for validation.")
@click.option("--train-size", type=click.IntRange(min=1), default=None,
              help="Train on a seeded subset of this many images. Default: all.")
@DATA_DIR_OPTION
@RESULTS_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def train(channels, kernel_size, stride, padding, pool_size, pool_stride, pool_type, fc_width,
          dropout, epochs, batch_size, learning_rate, weight_decay, seed, validation_size,
          train_size, data_dir, results_dir, device) -> None:
    """Train and measure one CNN on the validation split (the tutorial's network by default)."""
    from bench.train_run import TrainRun, run_training

    from mnist_cnn.model import CNNConfig, validate
    from mnist_cnn.train import TrainSettings

    config = CNNConfig(
        conv_blocks=len(channels), channels=channels, kernel_size=kernel_size, stride=stride,
        padding=padding, pool_size=pool_size, pool_stride=pool_stride, pool_type=pool_type,
        fc_width=fc_width, dropout=dropout,
    )
    validate(config)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                             weight_decay=weight_decay, seed=seed)
    results_dir = ensure_results_dir(results_dir)
    run = TrainRun(config=config, settings=settings, validation_size=validation_size,
                   train_size=train_size, data_dir=data_dir, device=device)
    summary, path = run_training(run, results_dir)
    click.echo(summary)
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--images", type=click.IntRange(min=64), default=6400, show_default=True,
              help="Images each loop trains on.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Alternating rounds of both loops; the median is reported.")
@DATA_DIR_OPTION
@bad_input_errors
def speed(images, batch_size, repeats, data_dir) -> None:
    """Compare the tutorial's DataLoader loop with ours, side by side, on the tutorial network."""
    from bench.speed import run_speed_benchmark

    click.echo(run_speed_benchmark(images=images, batch_size=batch_size, repeats=repeats,
                                   data_dir=data_dir).render())


def main() -> None:
    """Entry point: every error is one line on stderr, bad input exits with 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)

