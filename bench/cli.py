"""The `mnist-bench` command: thin commands that parse options and call library functions."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Any

import click

from bench.benchmark.compare import CompareSettings
from bench.evidence.settings import ConfirmSettings
from bench.final.finetune import FinetuneSettings
from bench.final.train_run import TrainRun
from bench.machine.figures import FiguresSettings
from bench.report import ReportSettings
from bench.search.settings import PRUNERS, SAMPLERS, SearchSettings
from bench.search.spaces import shipped_space_names
from bench.store import layout
from mnist_cnn.model import PADDING_MODES, POOL_TYPES, CNNConfig
from mnist_cnn.train import LR_SCHEDULES, PRECISIONS, TrainSettings


def default_of(settings: type, name: str) -> Any:
    """The default of a settings dataclass's field: each option's default lives in the
    dataclass the command fills, so the library and the command cannot disagree."""
    (field,) = (field for field in dataclasses.fields(settings) if field.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    if field.default is dataclasses.MISSING:
        raise TypeError(f"{settings.__name__}.{name} has no default")
    return field.default


def comma_separated(values: tuple) -> str:
    """A tuple default as the comma-separated text its option parses: (32, 64) -> '32,64'."""
    return ",".join(str(value) for value in values)

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
ARTIFACTS_OPTION = click.option(
    "--artifacts", default=None, envvar="MNIST_BENCH_ARTIFACTS",
    help="Optuna artifact store for the best trial's weights: a folder (shared by every "
    "machine of a study), s3://bucket or gs://bucket. Default: <results-dir>/artifacts. "
    "Env: MNIST_BENCH_ARTIFACTS.",
)


def check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A device this machine has, checked before a command makes anything."""
    if value is None:
        return None
    from mnist_cnn.train import DeviceError, pick_device

    try:
        pick_device(value)
    except DeviceError as error:
        raise click.BadParameter(str(error)) from None
    return value


DEVICE_OPTION = click.option(
    "--device", default=None, callback=check_device,
    help="torch device, e.g. cpu or cuda:0. Default: CUDA when there is one.")
PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=None,
    help="bf16: convolutions and matrix products under bf16 autocast (weights and optimizer stay "
    "float32), 1.4-1.8x faster on CPUs with native bf16 (AVX512-BF16 or AMX on x86, the bf16 "
    "extensions on ARM; check with `mnist-bench speed --precision bf16`). Elsewhere it is "
    "emulated, 12-22x slower (measured on an AVX2 CPU), and refused unless --allow-emulated-bf16. Part of a run's "
    "fidelity. Default: bf16 on CUDA, fp32 on the CPU.",
)
ALLOW_EMULATED_BF16_OPTION = click.option(
    "--allow-emulated-bf16", is_flag=True,
    help="Run --precision bf16 even on a CPU that emulates it (much slower).")


def precision_options(command):
    """--precision and --allow-emulated-bf16, refusing bf16 on a CPU that would emulate it."""

    @functools.wraps(command)
    def wrapper(*args, allow_emulated_bf16: bool, **kwargs):
        if kwargs.get("precision") == "bf16" and not allow_emulated_bf16:
            refuse_emulated_bf16(kwargs.get("device"))
        return command(*args, **kwargs)

    return PRECISION_OPTION(ALLOW_EMULATED_BF16_OPTION(wrapper))


def refuse_emulated_bf16(device_name: str | None) -> None:
    """BadInput, with the reason and a measured slowdown, where bf16 would be emulated."""
    from mnist_cnn.cpu import bf16_is_emulated, cpu_bf16_support
    from mnist_cnn.train import pick_device

    device = pick_device(device_name)
    if not bf16_is_emulated(device):
        return
    from bench.machine.speed import bf16_slowdown

    raise BadInput(f"--precision bf16 is emulated on this CPU ({cpu_bf16_support().reason}): a "
                   f"training step measured {bf16_slowdown(device):.0f}x slower than fp32 just "
                   "now. Use fp32 (the CPU's default), or --allow-emulated-bf16 to run anyway.")


def margin_option(settings: type):
    """--margin, given in percentage points and handed to the command as the fraction every
    library function takes: the one conversion, here at the edge. Its default is `settings`'s."""

    def to_fraction(ctx: click.Context, param: click.Parameter, percentage_points: float) -> float:
        return percentage_points / 100

    return click.option(
        "--margin", type=click.FloatRange(min=0, max=10, min_open=True),
        default=default_of(settings, "margin") * 100, show_default=True, callback=to_fraction,
        help="Margin of practical equivalence in percentage points: two configs within it are "
        "'equivalent' once shown so; by default what two retrainings differ by 95% of the time "
        "(1.96 x sqrt 2 x the seed sd the report prints).")


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


def check_results_dir(results_dir: Path) -> Path:
    """The results folder, or a one-line usage error if it cannot be one. It is not made here:
    the first file written makes it, so a command refused later leaves no folder behind."""
    path = Path(results_dir)
    if path.exists() and not path.is_dir():
        raise click.BadParameter(f"{path} exists and is not a folder", param_hint="--results-dir")
    existing = next(folder for folder in (path, *path.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise click.BadParameter(f"cannot create {path}: {existing} is not a folder",
                                 param_hint="--results-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in {existing}: permission denied",
                                 param_hint="--results-dir")
    return path


def check_plain_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A study, group or run name: one plain folder name (bench.store.layout.check_name)."""
    if value is None:
        return None
    try:
        return layout.check_name(value, "the name")
    except layout.InvalidName as error:
        raise click.BadParameter(str(error)) from None


def parse_positive_ints(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers (channels, worker counts)."""
    try:
        numbers = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise click.BadParameter(f"{param.name} must be positive, got {value!r}")
    return numbers


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Hyperparameter search and benchmarking for CNNs on MNIST.

    Start with `mnist-bench search --trials 50`, then `mnist-bench confirm` (more seeds for the
    top configs), `mnist-bench report results/` and `mnist-bench finetune --best`.
    """


@cli.command()
@click.option("--preset", default=None,
              help="Start from a named network and training: tutorial, or speedrun (99% test "
              "accuracy in seconds on a CPU). Options given as well override its values.")
@click.option("--channels", default=comma_separated(default_of(CNNConfig, "channels")),
              show_default=True, callback=parse_positive_ints,
              help="Output channels per conv block, comma-separated; one entry per block.")
@click.option("--kernel-size", type=click.IntRange(min=1),
              default=default_of(CNNConfig, "kernel_size"), show_default=True)
@click.option("--stride", type=click.IntRange(min=1),
              default=default_of(CNNConfig, "stride"), show_default=True)
@click.option("--padding", type=click.Choice(PADDING_MODES),
              default=default_of(CNNConfig, "padding"), show_default=True)
@click.option("--pool-size", type=click.IntRange(min=1),
              default=default_of(CNNConfig, "pool_size"), show_default=True,
              help="Pooling window; 1 is no pooling at pool stride 1, subsampling at a larger one.")
@click.option("--pool-stride", type=click.IntRange(min=1),
              default=default_of(CNNConfig, "pool_stride"),
              help="Pooling stride. Default: the pool size.")
@click.option("--pool-type", type=click.Choice(POOL_TYPES),
              default=default_of(CNNConfig, "pool_type"), show_default=True)
@click.option("--fc-width", type=click.IntRange(min=1),
              default=default_of(CNNConfig, "fc_width"), show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True),
              default=default_of(CNNConfig, "dropout"), show_default=True)
@click.option("--epochs", type=click.IntRange(min=1),
              default=default_of(TrainSettings, "epochs"), show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1),
              default=default_of(TrainSettings, "batch_size"), show_default=True)
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
              default=default_of(TrainSettings, "learning_rate"),
              show_default=True, help="Adam learning rate (the peak, with a schedule).")
@click.option("--schedule", "lr_schedule", type=click.Choice(LR_SCHEDULES),
              default=default_of(TrainSettings, "lr_schedule"), show_default=True,
              help="Learning-rate schedule over the steps.")
@click.option("--weight-decay", type=click.FloatRange(min=0),
              default=default_of(TrainSettings, "weight_decay"), show_default=True)
@click.option("--evaluations-per-epoch", type=click.IntRange(min=1),
              default=default_of(TrainSettings, "evaluations_per_epoch"), show_default=True,
              help="Validation evaluations per epoch (the learning curve's points; training is "
              "the same).")
@click.option("--seed", type=int, default=default_of(TrainSettings, "seed"), show_default=True,
              help="Seeds weights, batch order and the validation split.")
@click.option("--repeats", type=click.IntRange(min=1), default=default_of(TrainRun, "repeats"),
              show_default=True,
              help="Train seeds --seed .. --seed+R-1 (one validation split) and report their mean.")
@click.option("--test", is_flag=True,
              help="After all training, score each final model once on the test set: mean, "
              "spread and n. For a network already chosen; never choose by it.")
@click.option("--validation-size", type=click.IntRange(min=1),
              default=default_of(TrainRun, "validation_size"), show_default=True,
              help="Images carved from the training set for validation.")
@click.option("--train-size", type=click.IntRange(min=1),
              default=default_of(TrainRun, "train_size"),
              help="Train on a seeded subset of this many images. Default: all.")
@precision_options
@DATA_DIR_OPTION
@RESULTS_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def train(preset, repeats, test, validation_size, train_size, data_dir, results_dir, device,
          **knobs) -> None:
    """Train and measure one CNN on the validation split (the tutorial's network by default).

    When a reference table under <results-dir>/reference holds this network at the same
    settings (the faq space's: --epochs 1 --evaluations-per-epoch 8 --schedule onecycle --lr
    0.003, --seed 0, on a CPU), the run is checked against its seeds: a seed the reference has
    curve for curve, other seeds against a prediction interval."""
    from dataclasses import asdict

    from click.core import ParameterSource

    from bench.final.train_run import run_training
    from mnist_cnn.model import validate
    from mnist_cnn.presets import preset as named_preset

    values = {}
    if preset is not None:
        chosen = named_preset(preset)
        values = {**asdict(chosen.config), **asdict(chosen.settings)}
    context = click.get_current_context()
    values.update({name: value for name, value in knobs.items()
                   if preset is None or context.get_parameter_source(name)
                   == ParameterSource.COMMANDLINE})
    config_fields = set(CNNConfig.__dataclass_fields__) - {"conv_blocks"}
    config = CNNConfig(conv_blocks=len(values["channels"]),
                       **{k: v for k, v in values.items() if k in config_fields})
    validate(config)
    settings = TrainSettings(**{k: v for k, v in values.items()
                                if k in TrainSettings.__dataclass_fields__})
    results_dir = check_results_dir(results_dir)
    run = TrainRun(config=config, settings=settings, validation_size=validation_size,
                   train_size=train_size, data_dir=data_dir, device=device, repeats=repeats,
                   test=test, preset=preset)
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
@click.option("--device", default="cpu", show_default=True, callback=check_device,
              help="torch device, e.g. cuda:0.")
@PRECISION_OPTION
@bad_input_errors
def speed(images, batch_size, repeats, data_dir, device, precision) -> None:
    """Compare the tutorial's DataLoader loop with ours, side by side, on the tutorial network."""
    from bench.machine.speed import run_speed_benchmark

    click.echo(run_speed_benchmark(images=images, batch_size=batch_size, repeats=repeats,
                                   data_dir=data_dir, device=device, precision=precision).render())


@cli.command()
@click.option("--best", is_flag=True,
              help="Finetune the config the report recommends (after `confirm`): the cheapest "
              "config shown equivalent to the best within the margin on held-out seeds, or the "
              "best itself; before confirm, the best trial.")
@click.option("--trial", "trial_number", type=click.IntRange(min=0), default=None,
              help="Finetune this trial instead of the best.")
@click.option("--study", default=None, callback=check_plain_name,
              help="Study name. Default: the only study in the results folder (or --storage).")
@click.option("--storage", default=None,
              help="Optuna storage URL of the study, e.g. the PostgreSQL a team searched on. "
              "Default: sqlite:///<results-dir>/<study>/study.db.")
@ARTIFACTS_OPTION
@click.option("--run", "run_name", default=None, callback=check_plain_name,
              help="Run folder under <study>/finetune/. Default: trial_<N>.")
@click.option("--epochs", type=click.IntRange(min=1),
              default=default_of(FinetuneSettings, "epochs"),
              show_default=True, help="Most epochs; early stopping may end sooner.")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak Adam learning rate. Default: the trial's / 3 when starting from its kept "
              "weights, the trial's when it kept none.")
@click.option("--schedule", type=click.Choice(["cosine", "onecycle", "constant"]),
              default=default_of(FinetuneSettings, "schedule"), show_default=True,
              help="Learning-rate schedule over the epochs.")
@click.option("--augment/--no-augment", default=default_of(FinetuneSettings, "augment"),
              show_default=True,
              help="Random shifts (2 px) and rotations (10 degrees) of training images.")
@click.option("--patience", type=click.IntRange(min=1),
              default=default_of(FinetuneSettings, "patience"),
              show_default=True,
              help="Stop after this many epochs without a better validation accuracy.")
@click.option("--final-pass/--no-final-pass", default=default_of(FinetuneSettings, "final_pass"),
              show_default=True,
              help="After early stopping, one epoch on train+validation at a tenth of the rate.")
@click.option("--repeats", type=click.IntRange(min=1),
              default=default_of(FinetuneSettings, "repeats"),
              show_default=True,
              help="Seeds to train; test accuracy is reported as mean and spread.")
@click.option("--seed", type=int, default=default_of(FinetuneSettings, "seed"), show_default=True,
              help="First seed; repeats add 1.")
@click.option("--validation-size", type=click.IntRange(min=1), default=None,
              help="Images held out for early stopping. Default: the search's.")
@click.option("--train-size", type=click.IntRange(min=1), default=None,
              help="Train on a seeded subset of this many images (a short try). Default: all.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoints.")
@precision_options
@DATA_DIR_OPTION
@RESULTS_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def finetune(best, trial_number, study, storage, artifacts, run_name, epochs, learning_rate,
             schedule, augment, patience, final_pass, repeats, seed, validation_size, train_size,
             resume, precision, data_dir, results_dir, device) -> None:
    """Train a study's recommended config (or --trial N) further, then measure it once on the
    test set."""
    from bench.final.finetune import render, run_finetune

    if best == (trial_number is not None):
        raise BadInput("pass either --best or --trial N")
    settings = FinetuneSettings(
        study=study, trial=trial_number, results_dir=results_dir, storage=storage,
        artifacts=artifacts, run=run_name, epochs=epochs,
        learning_rate=learning_rate, schedule=schedule, augment=augment, patience=patience,
        final_pass=final_pass, repeats=repeats, seed=seed, validation_size=validation_size,
        train_size=train_size,
        data_dir=data_dir, device=device, resume=resume, precision=precision,
    )
    metrics, run_dir = run_finetune(settings)
    click.echo(render(metrics, run_dir))


@cli.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@DATA_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def evaluate(model, data_dir, device) -> None:
    """Measure a saved MODEL on the test set: a .pt2 export, weights.pt with config.json beside
    it, or a finetune run folder."""
    from bench.final.evaluate import evaluate_saved_model, render

    click.echo(render(evaluate_saved_model(model, data_dir, device), data_dir))


def _fidelity_options(command):
    """Options shared by search, grid and compare: what a trial trains on and where it is kept.
    Defaults are SearchSettings' own, so the library and the command agree."""
    defaults = SearchSettings()
    options = [
        click.option("--space", default=defaults.space, show_default=True,
                     help=f"Search space: {', '.join(shipped_space_names())} (search_spaces/), "
                     "or the path of a .toml space file."),
        click.option("--epochs", type=click.IntRange(min=1), default=defaults.epochs,
                     show_default=True, help="Epochs per trial."),
        click.option("--train-size", type=click.IntRange(min=1), default=defaults.train_size,
                     help="Train each trial on a seeded subset of this many images. "
                     "Default: all 55,000 training images left after the validation split."),
        click.option("--validation-size", type=click.IntRange(min=1),
                     default=defaults.validation_size, show_default=True,
                     help="Images carved from the training files to score trials on."),
        click.option("--evaluations-per-epoch", type=click.IntRange(min=1),
                     default=defaults.evaluations_per_epoch, show_default=True,
                     help="Validation evaluations per epoch: the steps the pruner judges."),
        click.option("--interim-validation-size", type=click.IntRange(min=1),
                     default=defaults.interim_validation_size,
                     help="Score the evaluations before an epoch's end on only this many "
                     "validation images (a fixed random subset), for the pruner, at a fraction "
                     "of the cost; each epoch's last evaluation scores the whole split and alone "
                     "makes the trial's value. Default: the whole split every time (a subset "
                     "searched faster but picked worse configs; see docs/measurements.md)."),
        click.option("--seed", type=int, default=defaults.seed, show_default=True,
                     help="Seeds the validation split, weights and batch order (the same for "
                     "every trial) and the samplers."),
        click.option("--replay", "curve_table", type=click.Path(dir_okay=False, path_type=Path),
                     default=None,
                     help="Curve table to record trained learning curves in and to answer "
                     "configs already measured under the same settings from (marked replayed). "
                     "Default: <results-dir>/curves.db."),
        click.option("--no-replay", is_flag=True,
                     help="Train every trial, even configs the curve table already has."),
        click.option("--storage", default=None,
                     help="Optuna storage URL, e.g. postgresql://user:pass@host/db to share "
                     "studies between machines. Default: sqlite:///<results-dir>/<study>/study.db; "
                     "for compare, <results-dir>/<group>/journal.log (an Optuna journal file)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help=f"Worker processes on this machine. Default: {defaults.workers} "
                     "(search, grid: all on one study); compare: one per available core."),
        DATA_DIR_OPTION,
        RESULTS_DIR_OPTION,
        DEVICE_OPTION,
    ]
    command = precision_options(command)
    for option in reversed(options):
        command = option(command)
    return command


def _search_settings(results_dir: Path, no_replay: bool, workers: int | None,
                     **values) -> SearchSettings:
    return SearchSettings(results_dir=check_results_dir(results_dir), replay=not no_replay,
                          workers=workers or default_of(SearchSettings, "workers"), **values)


def _run(settings: SearchSettings, run):
    """Run a search-like job; its RuntimeError (a failed worker) becomes a one-line error."""
    try:
        return run(settings)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


def _exit_if_interrupted(exit_code: int) -> None:
    if exit_code:
        stopped = click.ClickException("interrupted; rerun the same command to resume")
        stopped.exit_code = exit_code  # 128 + the signal, as a shell reports it
        raise stopped


@cli.command()
@click.option("--trials", type=click.IntRange(min=1), default=default_of(SearchSettings, "trials"),
              show_default=True,
              help="Total trials of the study: a rerun adds trials until this many have finished "
              "(completed or pruned; failed and interrupted ones do not count).")
@click.option("--sampler", type=click.Choice(SAMPLERS),
              default=default_of(SearchSettings, "sampler"),
              show_default=True,
              help="Proposes each trial's config: tpe, random, grid (each parameter's choices or "
              "grid list), cmaes, gp (Gaussian process) or qmc (quasi-random).")
@click.option("--pruner", type=click.Choice(PRUNERS), default=default_of(SearchSettings, "pruner"),
              show_default=True,
              help="Stops poor trials early, judged at each validation evaluation.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Start no trial after this many seconds.")
@click.option("--study-name", default=None, callback=check_plain_name,
              help="Study name. Default: <space>-<sampler>-<pruner>, so rerunning a command resumes it.")
@click.option("--heartbeat-interval", type=click.IntRange(min=1),
              default=default_of(SearchSettings, "heartbeat_interval"), show_default=True,
              help="Seconds between a running trial's heartbeats in the storage.")
@click.option("--grace-period", type=click.IntRange(min=1),
              default=default_of(SearchSettings, "grace_period"),
              show_default=True,
              help="Seconds without a heartbeat after which another machine's trial counts as "
              "dead, is failed and retried (a dead worker on this machine is seen at once).")
@ARTIFACTS_OPTION
@_fidelity_options
@bad_input_errors
def search(**options) -> None:
    """Search a space of networks or training settings with an Optuna study; resumable."""
    from bench.search.runner import run_search

    settings = _search_settings(**options)
    outcome = _run(settings, run_search)
    click.echo(outcome.summary())
    click.echo(f"storage {outcome.storage_url} | trials.csv in "
               f"{settings.results_dir / outcome.study_name}")
    _exit_if_interrupted(outcome.exit_code)


@cli.command()
@click.option("--study-name", default=None, callback=check_plain_name,
              help="Study name. Default: <space>-grid.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Training seeds per config: --seed, --seed+1, ... All train on the validation "
              "split of --seed, so a config's seeds are repeated measurements of it; seeds after "
              "the first are studies of their own (<study-name>-seed<N>).")
@ARTIFACTS_OPTION
@_fidelity_options
@bad_input_errors
def grid(seeds: int, **options) -> None:
    """Train every valid config of a finite space once per seed, filling the curve table that
    `search --replay` and `compare` answer from. Resumable; configs the table has with the same
    seed are replayed, and the reference tables under <results-dir>/reference are merged into it
    first (a clone ships the faq space's: --seeds 5 extends it by seeds 3 and 4; measure your
    own machine's in another --results-dir)."""
    from bench.benchmark.grid import run_grids

    outcomes = _run(_search_settings(**options), lambda settings: run_grids(settings, seeds))
    for outcome in outcomes:
        click.echo(outcome.summary())
    _exit_if_interrupted(outcomes[-1].search.exit_code)


def parse_names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of names; the library checks them against the allowed ones."""
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_seeds(ctx: click.Context, param: click.Parameter,
                value: str | None) -> tuple[int, ...] | None:
    """A comma-separated list of training seeds (whole numbers, 0 or more)."""
    names = parse_names(ctx, param, value)
    if names is None:
        return None
    if not names or not all(name.isdigit() for name in names):
        raise click.BadParameter(f"{value!r}: give seeds as whole numbers, e.g. 2 or 3,4")
    return tuple(int(name) for name in names)


@cli.command()
@click.option("--samplers", callback=parse_names,
              help=f"Comma-separated samplers to compare, of {', '.join(SAMPLERS)}. "
              f"Default: {comma_separated(default_of(CompareSettings, 'samplers'))}.")
@click.option("--pruners", callback=parse_names,
              help=f"Comma-separated pruners to compare, of {', '.join(PRUNERS)}. "
              f"Default: {comma_separated(default_of(CompareSettings, 'pruners'))}.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Studies per sampler and pruner; seed k (0..SEEDS-1) seeds the sampler only, "
              f"training is the same for all. Default: {default_of(CompareSettings, 'seeds')}.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Trials per study (completed or pruned). In a space of designed points "
              "(such as faq-tutorial) a trial is a draw of one of them; the sampler is told "
              "other draws scored chance and they do not count. "
              f"Default: {default_of(CompareSettings, 'trials')}.")
@click.option("--group", default=None, callback=check_plain_name,
              help="Name of the comparison: studies <group>-<sampler>-<pruner>-seed<k> in "
              "<results-dir>/<group>/journal.log, an Optuna journal file (or --storage). "
              "Default: compare-<space>.")
@click.option("--reserved-seeds", callback=parse_seeds, metavar="SEEDS",
              help="Comma-separated training seeds no query may draw: each study's pick, and a "
              "baseline (the config with the highest mean over the other seeds), are scored on "
              "them. Default: the highest seed every config of the table has, when it has two "
              "or more (seed 2 of the shipped faq table, seeds 0-2); `grid --seeds 5` then "
              "allows --reserved-seeds 3,4.")
@_fidelity_options
@bad_input_errors
def compare(samplers, pruners, seeds, trials, group, reserved_seeds, **options) -> None:
    """Benchmark samplers and pruners: one study per sampler, pruner and seed, its trials
    replayed from the curve table, into which the reference tables under
    <results-dir>/reference (a clone ships the faq space's) are merged first; for other spaces
    or fidelities fill it with `grid` (missing configs are trained). Queries draw any recorded
    seed but the reserved ones; each pick is scored on those, against a baseline selected on the
    others. Resumable."""
    from bench.benchmark.compare import run_compare

    given = {"samplers": samplers, "pruners": pruners, "seeds": seeds, "trials": trials,
             "group": group, "workers": options["workers"], "reserved_seeds": reserved_seeds}
    settings = CompareSettings(base=_search_settings(**options),
                               **{key: value for key, value in given.items() if value is not None})
    outcome = _run(settings, run_compare)
    click.echo(outcome.summary())
    _exit_if_interrupted(outcome.exit_code)


@cli.command()
@click.option("--study", default=None, callback=check_plain_name,
              help="The study to confirm (a folder under --results-dir). Default: the only one.")
@click.option("--top", type=click.IntRange(min=1),
              default=default_of(ConfirmSettings, "top"), show_default=True,
              help="Distinct configs of the study to race, best search value first.")
@click.option("--seeds", type=click.IntRange(min=2), default=default_of(ConfirmSettings, "seeds"),
              show_default=True,
              help="Held-out seeds (not the search's own) every config gets in the first round.")
@click.option("--max-seeds", type=click.IntRange(min=2),
              default=default_of(ConfirmSettings, "max_seeds"),
              show_default=True,
              help="Held-out seeds a config may get while a comparison it is in stays undecided; "
              "each later round adds one to those configs only.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Start no new run after this many minutes; a rerun continues the race.")
@margin_option(ConfirmSettings)
@click.option("--sweep/--no-sweep", default=default_of(ConfirmSettings, "sweep"), show_default=True,
              help="Also measure the configs one grid step from the best in each network knob "
              "(the paired comparisons that answer the FAQ).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Race at this many epochs instead of the study's own (e.g. finetune's 12): "
              "a budget of its own, in the study <study>-epochsE-confirm; the report shows each "
              "budget's decisions side by side and how well the rankings agree.")
@click.option("--storage", default=None,
              help="Optuna storage URL of the study. Default: sqlite:///<results-dir>/<study>/study.db.")
@RESULTS_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def confirm(study, top, seeds, max_seeds, minutes, margin, sweep, epochs, storage, results_dir,
            device) -> None:
    """Race the study's top configs on held-out seeds, at the study's own fidelity, until each
    comparison with the best and each FAQ pair is decided (better, equivalent within the
    margin, worse) or its seed or minute limit is reached.

    The search's own seed selected the configs, so it decides nothing. Each measurement is a
    trial of the study <study>-confirm in the same storage and a row of the curve table; what
    either already has is not trained again. Resumable: rerun the same command after an
    interruption, or with a larger --max-seeds to continue the race. The reference tables under
    <results-dir>/reference are merged into the curve table first, so seeds they measured at
    the same fidelity are not trained again; what confirm trains of a config they hold is
    checked against their seeds (does this machine reproduce them?).
    """
    from bench.race.confirm import run_confirm

    outcome = run_confirm(ConfirmSettings(study=study, top=top, seeds=seeds, max_seeds=max_seeds,
                                          minutes=minutes, margin=margin, sweep=sweep,
                                          epochs=epochs, results_dir=results_dir,
                                          storage=storage, device=device))
    for note in outcome.notes or []:
        click.echo(f"note: {note}")
    click.echo(outcome.summary())
    for line in outcome.reproduction:
        click.echo(line)
    _exit_if_interrupted(outcome.exit_code)


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=default_of(FiguresSettings, "out"), show_default=True,
              help="The JSON file of figures.")
@click.option("--trials", type=click.IntRange(min=1),
              default=default_of(FiguresSettings, "trials"), show_default=True,
              help="Trials of the search step.")
@click.option("--workers", callback=parse_positive_ints,
              default=comma_separated(default_of(FiguresSettings, "workers")), show_default=True,
              help="Worker counts to time on one device, each on its own study.")
@click.option("--worker-trials", type=click.IntRange(min=1),
              default=default_of(FiguresSettings, "worker_trials"), show_default=True,
              help="Trials per worker count (no pruning, no replay).")
@click.option("--train-size", type=click.IntRange(min=1), default=None,
              help="Images per trial's epoch. Default: all 55,000.")
@click.option("--validation-size", type=click.IntRange(min=1),
              default=default_of(FiguresSettings, "validation_size"), show_default=True)
@click.option("--speed-images", type=click.IntRange(min=64),
              default=default_of(FiguresSettings, "speed_images"), show_default=True,
              help="Images per loop of the speed step.")
@click.option("--finetune-epochs", type=click.IntRange(min=1),
              default=default_of(FiguresSettings, "finetune_epochs"), show_default=True)
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
              default=default_of(FiguresSettings, "results_dir"), show_default=True,
              help="Folder for the steps' studies and report (kept apart from results/).")
@DATA_DIR_OPTION
@DEVICE_OPTION
@bad_input_errors
def figures(out, trials, workers, worker_trials, train_size, validation_size, speed_images,
            finetune_epochs, results_dir, data_dir, device) -> None:
    """Measure this machine end to end (speed, a search, K workers on one device, a finetune,
    the report) into one JSON file, rewritten after each step. Made for a GPU lent for minutes:
    `mnist-bench figures --device cuda`."""
    from bench.machine.figures import run_figures

    settings = FiguresSettings(out=out, device=device, results_dir=check_results_dir(results_dir),
                               data_dir=data_dir, trials=trials, workers=workers,
                               worker_trials=worker_trials, train_size=train_size,
                               validation_size=validation_size, speed_images=speed_images,
                               finetune_epochs=finetune_epochs)
    figures = run_figures(settings, progress=lambda line: click.echo(line, err=True))
    failed = [name for name, step in figures["steps"].items() if "error" in step]
    click.echo(f"wrote {out}" + (f"; failed steps: {', '.join(failed)}" if failed else ""))
    if failed:
        raise SystemExit(1)


@cli.command("merge-curves")
@click.argument("tables", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--into", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The curve table to add to. Default: <results-dir>/curves.db.")
@RESULTS_DIR_OPTION
@bad_input_errors
def merge_curves(tables, into, results_dir) -> None:
    """Add the curve tables of other machines (their results/curves.db files, or reference
    tables as .jsonl text) to this one's.

    Each machine records its own curves; merging lets replay and `compare` here answer configs
    measured there. A row is matched only at the same settings, data (by content) and device
    kind, so a merge never mixes measurements of different things.
    """
    from bench.store.curves import CurveTable
    from bench.store.reference import SUFFIX, read_reference

    into = Path(into or layout.curve_table(check_results_dir(results_dir)))
    if any(Path(path).resolve() == into.resolve() for path in tables):
        raise BadInput(f"cannot merge {into} into itself")
    # Every table is read before the target is opened: a table that is not one makes nothing.
    rows = {path: read_reference(path) if Path(path).suffix == SUFFIX  # shipped as text
            else CurveTable(path).rows() for path in tables}
    target = CurveTable(into)
    for path, table_rows in rows.items():
        added, known = target.add_rows(table_rows)
        click.echo(f"{path}: {added} curves added, {known} already in {target.path}")


@cli.command()
@click.argument("results_dir", type=click.Path(path_type=Path), default=Path("results"))
@click.option("--study", default=None, callback=check_plain_name,
              help="Report only this study (a folder under RESULTS_DIR; with --storage, the "
              "study and those named after it, such as its confirm study or a compare group).")
@click.option("--storage", default=None,
              help="Read the studies from this Optuna storage URL (e.g. the PostgreSQL a team "
              "searched on) instead of RESULTS_DIR/*/study.db; outputs still go to RESULTS_DIR.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the tables and index.html. Default: RESULTS_DIR/report, or "
              "RESULTS_DIR/<study>/report with --study.")
@click.option("--top", type=click.IntRange(min=1), default=default_of(ReportSettings, "top"),
              show_default=True, help="Trials in the accuracy, size and speed tables.")
@margin_option(ReportSettings)
@bad_input_errors
def report(results_dir, study, storage, out_dir, top, margin) -> None:
    """Tables (CSV, Markdown) and a self-contained index.html from the studies in RESULTS_DIR.

    Exit codes: 2 when RESULTS_DIR or --study points at no study; 1 when the studies have no
    completed trial yet.
    """
    from bench.report import NothingToReport, build_report

    if results_dir.exists() and not results_dir.is_dir():
        raise BadInput(f"results folder {results_dir} is a file, not a folder")
    settings = ReportSettings(results_dir=results_dir, study=study, storage=storage,
                              out_dir=out_dir, top=top, margin=margin)
    try:
        output = build_report(settings)
    except NothingToReport as error:
        raise click.ClickException(f"nothing to report yet: {error}") from None
    for note in output.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {len(output.files)} files to {output.out_dir}; open "
               f"{output.out_dir / 'index.html'}")

def main() -> None:
    """Entry point: every error is one line on stderr, bad input exits with 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.NoArgsIsHelpError as no_command:  # the help, not an error
        no_command.show()
        sys.exit(no_command.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)

