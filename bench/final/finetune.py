"""Finetune: a study's best trial trained on to its best, then measured once on the test set.

Everything that selects looks at the validation split only: early stopping, and which repeat
is exported. The test files are read once, after every repeat has finished training.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from bench.store import layout, schema
from bench.store.artifacts import download_weights, open_artifact_store
from bench.final.evaluate import TestEvaluation, export_model, save_weights, score
from bench.store.identity import fidelity_key, trial_config_key, trial_fidelity
from bench.evidence.gather import gather
from bench.store.storage import settings_record
from bench.store.studies import StudySource
from bench.store.wording import within
from mnist_cnn.data import (ImageSet, TrainValidationSplit, data_fingerprint, describe_data,
                            load_split, load_test_set, require_test_files)
from mnist_cnn.metrics import describe_latency, measure_model
from mnist_cnn.model import CNNConfig, build_model, validate
from mnist_cnn.progress import progress_bar
from mnist_cnn.train import (
    LR_SCHEDULES,
    EpochRecord,
    StopTraining,
    TrainSettings,
    checkpoint_history,
    pick_device,
    prepare_model,
    read_checkpoint,
    train,
    use_available_cores,
)

FINETUNE_LR_FACTOR = 1 / 3  # default lr when starting from kept weights: a third of the trial's
FINAL_PASS_EPOCHS = 1  # the optional pass over train+validation
FINAL_PASS_LR_FACTOR = 0.1  # ... at a tenth of the finetune's rate: polish, not relearn
# Settings that identify a run rather than change its training; --resume does not compare them.
RUN_IDENTITY = ("study", "trial", "run", "results_dir", "storage", "artifacts", "resume", "device",
                "repeats")


@dataclass(frozen=True)
class FinetuneSettings:
    """How to finetune; `None` means "decide from the study" (see `load_starting_point`)."""

    study: str | None = None
    trial: int | None = None  # None: the study's best trial
    results_dir: Path = Path("results")  # where the run is written (and, by default, the study read)
    storage: str | None = None  # Optuna storage URL of the study; default: results/<study>/study.db
    artifacts: str | None = None  # artifact store of the kept weights; default: results/artifacts
    run: str | None = None  # folder under finetune/; None: trial_<N>
    epochs: int = 12
    learning_rate: float | None = None  # None: the trial's / 3 from kept weights, else the trial's
    schedule: str = "cosine"
    augment: bool = True
    patience: int = 4  # epochs without a better validation accuracy before stopping
    final_pass: bool = False
    repeats: int = 1
    seed: int = 0
    validation_size: int | None = None  # None: the search's
    train_size: int | None = None  # a seeded subset of the training images; None: all
    data_dir: Path | None = None
    device: str | None = None
    resume: bool = False
    precision: str | None = None  # None: the device's default (mnist_cnn.train.resolve_precision)

    def __post_init__(self) -> None:
        for name in ("epochs", "patience", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule must be one of {LR_SCHEDULES}, got {self.schedule!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready settings for the record (a storage password masked)."""
        return settings_record(self)

    @property
    def source(self) -> StudySource:
        return StudySource(self.results_dir, self.storage)

    @property
    def artifact_location(self) -> str:
        return str(self.artifacts or layout.artifacts_dir(self.results_dir))


@dataclass(frozen=True)
class StartingPoint:
    """What finetuning starts from: a trial's config, training settings and kept weights."""

    study: str  # the trial's study: the search's, or its confirm study
    run: str  # default run folder name
    trial_number: int
    config: CNNConfig
    train_settings: dict
    weights: dict[str, torch.Tensor] | None
    validation_size: int
    split_seed: int
    notes: tuple[str, ...] = ()  # why this trial, why not its kept weights
    data: str | None = None  # the data the trial was measured on (Fidelity.data), when recorded


@dataclass
class RepeatResult:
    """One seed's finetune: the weights chosen on validation and how they were reached."""

    seed: int
    weights: dict[str, torch.Tensor]
    history: list[dict]
    final_pass_history: list[dict] = field(default_factory=list)
    best_validation_accuracy: float = 0.0
    best_epoch: float = 0.0
    stopped_early: bool = False
    train_settings: dict = field(default_factory=dict)

    @property
    def epochs_trained(self) -> int:
        return len(self.history) + len(self.final_pass_history)

    def save(self, path: Path) -> None:
        _atomic_save(asdict(self), path)

    @classmethod
    def load(cls, path: Path) -> "RepeatResult":
        return cls(**read_checkpoint(path))


def _pick_trial(study: optuna.Study, study_name: str, number: int | None) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.number == number:
            return trial
    raise ValueError(f"study {study_name!r} has no trial {number} (it has {len(trials)} trials)")


def recommended_trial(settings: FinetuneSettings, study: optuna.Study
                      ) -> tuple[optuna.trial.FrozenTrial, optuna.Study, str | None]:
    """For --best: a trial of the config the report recommends ("the one to use": the cheapest
    config shown equivalent to the best on held-out seeds, or the best) at the measured budget
    closest to this finetune's epochs, its study, and a note when that is not the study's single
    best trial or when several budgets were measured (it says which one decided). A search trial
    of it is preferred (it has kept weights); a config only `confirm` measured comes from a
    confirm study. With one seed per config, or when the best trial has other training settings
    than the configs the evidence ranks, this is the best trial."""
    try:
        best = study.best_trial
    except ValueError:
        raise ValueError(f"study {study.study_name!r} has no finished trial to finetune; "
                         "let `mnist-bench search` finish one first") from None
    others = [s for _, s in settings.source.load_related(study.study_name)
              if s.study_name != study.study_name]  # its confirm study
    evidence = gather([study, *others])
    if evidence is None:
        return best, study, None
    best_fidelity = fidelity_key(trial_fidelity(
        best, study.user_attrs.get(schema.STUDY_ATTR_SETTINGS) or {}))
    if evidence.budgets[0].fidelity_key != best_fidelity:
        # The evidence ranks one fidelity; the best trial has other training settings (a
        # space with training knobs), so configs of the two are not like with like.
        return best, study, None
    # The decisions made at the budget closest to the one this finetune trains at (the longer
    # one on a tie): a ranking at one epoch need not hold at twelve.
    budget = min(evidence.budgets, key=lambda b: (abs(b.epochs - settings.epochs), -b.epochs))
    use = budget.ranked[budget.ranked["recommended"]].iloc[0]
    measured_at = (f"decided at {budget.epochs:g} epoch{'s' if budget.epochs != 1 else ''}, the "
                   f"measured budget closest to this finetune's {settings.epochs} (measured: "
                   + ", ".join(f"{b.epochs:g}" for b in evidence.budgets) + " epochs)")
    sources = [study, *others]
    candidates = [(index > 0, schema.ATTR_WEIGHTS not in trial.user_attrs, -trial.value,
                   trial.number, index)
                  for index, source in enumerate(sources)
                  for trial in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if trial_config_key(trial) == use["config_key"]]
    if not candidates:
        return best, study, None
    *_, number, index = min(candidates)
    source = sources[index]
    chosen = next(t for t in source.get_trials(deepcopy=False) if t.number == number)
    if source is study and number == best.number:
        return chosen, study, (f"finetuning the study's best trial {best.number}, the config to "
                               f"use {measured_at}" if len(evidence.budgets) > 1 else None)
    return chosen, source, (
        f"finetuning {source.study_name} trial {number}, the config to use (held-out mean "
        f"{use['mean']:.2%} over {int(use['heldout_seeds'])} seeds, {use['decision']}; the "
        f"cheapest in FLOPs of the best and the configs shown equivalent to it within "
        f"{within(use['margin'])}; {measured_at}), not the single best trial {best.number} "
        f"({best.value:.2%}, the search's own value); --trial N picks another")


def load_starting_point(settings: FinetuneSettings, study_name: str) -> StartingPoint:
    """The chosen trial's config and kept weights, and the validation split its search used."""
    study, storage = settings.source.load_with_storage(study_name)
    choice_note = None
    if settings.trial is None:
        trial, study, choice_note = recommended_trial(settings, study)
    else:
        trial = _pick_trial(study, study_name, settings.trial)
    if schema.ATTR_CONFIG not in trial.user_attrs:
        raise ValueError(f"trial {trial.number} of {study_name!r} ({trial.state.name}) has no config")
    config = CNNConfig(**trial.user_attrs[schema.ATTR_CONFIG])
    validate(config)
    weights, notes = None, [choice_note] if choice_note else []
    if schema.ATTR_WEIGHTS in trial.user_attrs:
        store = open_artifact_store(settings.artifact_location, create=False)
        weights = download_weights(trial, storage, store)
        superseded = trial.number != study.best_trial.number
        if weights is None and superseded:
            notes.append(f"trial {trial.number}'s weights were removed when a better trial "
                         "superseded them; training from scratch")
        elif weights is None:
            notes.append(f"trial {trial.number} kept weights, but the artifact store "
                         f"{settings.artifact_location} does not have them (give the search's "
                         "store with --artifacts); training from scratch")
        else:
            try:
                build_model(config).load_state_dict(weights)
            except RuntimeError as error:
                raise ValueError(f"the kept weights of trial {trial.number} do not fit its "
                                 f"config: {error}") from None
    train_settings = dict(trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS, {}))
    search = study.user_attrs.get(schema.STUDY_ATTR_SETTINGS, {})
    return StartingPoint(
        study=study.study_name,
        run=f"trial_{trial.number}" if study.study_name == study_name
        else f"{study.study_name.removeprefix(study_name + '-')}_trial_{trial.number}",
        trial_number=trial.number,
        config=config,
        train_settings=train_settings,
        weights=weights,
        validation_size=int(search.get("validation_size", 5000)),
        split_seed=int(search.get("seed", train_settings.get("seed", 0))),
        notes=tuple(notes),
        data=(trial.user_attrs.get(schema.ATTR_FIDELITY) or {}).get("data"),
    )


def other_data_note(start: StartingPoint, data_dir: Path | None) -> str | None:
    """A note when this finetune's data are not those the study measured the trial on."""
    if start.data is None or start.data == data_fingerprint(data_dir):
        return None
    searched = "the shipped MNIST" if start.data == "shipped" else f"other files ({start.data})"
    return (f"the study measured trial {start.trial_number} on {searched}; this finetune trains "
            f"and tests on {describe_data(data_dir)}, so its test accuracy is not of the data "
            "the trial was chosen on")


def finetune_train_settings(start: StartingPoint, settings: FinetuneSettings, seed: int) -> TrainSettings:
    """The trial's batch size and weight decay; the finetune's epochs, rate and schedule."""
    base = start.train_settings
    learning_rate = settings.learning_rate
    if learning_rate is None:
        factor = FINETUNE_LR_FACTOR if start.weights is not None else 1.0
        learning_rate = float(base.get("learning_rate", TrainSettings.learning_rate)) * factor
    return TrainSettings(
        epochs=settings.epochs,
        batch_size=int(base.get("batch_size", TrainSettings.batch_size)),
        learning_rate=learning_rate,
        weight_decay=float(base.get("weight_decay", TrainSettings.weight_decay)),
        seed=seed,
        evaluations_per_epoch=1,
        lr_schedule=settings.schedule,
        augment=settings.augment,
        precision=settings.precision,
    )


class EarlyStopping:
    """Stops after `patience` epochs without a better validation accuracy and keeps the best
    weights, on disk too, so that a resumed run still knows them."""

    def __init__(self, patience: int, best_path: Path, done: list[EpochRecord]) -> None:
        self.patience = patience
        self.best_path = Path(best_path)
        self.best_accuracy = -1.0
        self.best_epoch = 0.0
        self.best_weights: dict[str, torch.Tensor] | None = None
        for record in done:  # replay what a resumed run already did
            if record.validation_accuracy > self.best_accuracy:
                self.best_accuracy, self.best_epoch = record.validation_accuracy, record.epoch
        if done and self.best_path.exists():
            self.best_weights = read_checkpoint(self.best_path)

    def __call__(self, record: EpochRecord, model: torch.nn.Module) -> None:
        if record.validation_accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = record.validation_accuracy, record.epoch
            self.best_weights = _cpu_state(model)
            _atomic_save(self.best_weights, self.best_path)
        elif record.epoch - self.best_epoch >= self.patience:
            raise StopTraining


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def _atomic_save(obj: object, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _train_plus_validation(split: TrainValidationSplit) -> TrainValidationSplit:
    both = ImageSet(torch.cat([split.train.images, split.validation.images]),
                    torch.cat([split.train.labels, split.validation.labels]))
    return TrainValidationSplit(train=both, validation=split.validation, seed=split.seed)


def train_repeat(start: StartingPoint, settings: FinetuneSettings, split: TrainValidationSplit,
                 seed: int, run_dir: Path, device: torch.device) -> RepeatResult:
    """One seed: train with early stopping, then the final pass; each stage resumes or is skipped
    when its checkpoint says it is done."""
    done_path = layout.finetune_checkpoint(run_dir, seed, "done")
    if done_path.exists():
        return RepeatResult.load(done_path)
    trained_path = layout.finetune_checkpoint(run_dir, seed, "trained")
    if trained_path.exists():
        repeat = RepeatResult.load(trained_path)
    else:
        repeat = _train_with_early_stopping(start, settings, split, seed, run_dir, device)
    if settings.final_pass:
        repeat.save(trained_path)
        repeat = _final_pass(start, split, repeat, run_dir, device)
    repeat.save(done_path)
    return repeat


def _train_with_early_stopping(start: StartingPoint, settings: FinetuneSettings,
                               split: TrainValidationSplit, seed: int, run_dir: Path,
                               device: torch.device) -> RepeatResult:
    train_settings = finetune_train_settings(start, settings, seed)
    last_path = layout.finetune_checkpoint(run_dir, seed, "last")
    done = checkpoint_history(last_path)
    stopper = EarlyStopping(settings.patience, layout.finetune_checkpoint(run_dir, seed, "best"), done)
    steps = math.ceil(len(split.train) / train_settings.batch_size)  # batches an epoch
    with progress_bar(total=train_settings.epochs * steps, initial=len(done) * steps,
                      desc=f"finetune seed {seed}", unit="batch") as bar:

        def on_evaluation(record: EpochRecord, model: torch.nn.Module) -> None:
            bar.set_postfix(epoch=f"{record.epoch:g}", val_acc=f"{record.validation_accuracy:.4f}",
                            loss=f"{record.train_loss:.4f}")
            stopper(record, model)

        result = train(start.config, train_settings, split, device, on_evaluation=on_evaluation,
                       initial_weights=start.weights, checkpoint_path=last_path,
                       on_step=lambda: bar.update(1))
    return RepeatResult(
        seed=seed,
        weights=stopper.best_weights or _cpu_state(result.model),
        history=result.history_dicts(),
        best_validation_accuracy=max(stopper.best_accuracy, 0.0),
        best_epoch=stopper.best_epoch,
        stopped_early=result.stopped_early,
        train_settings=asdict(train_settings),
    )


def _final_pass(start: StartingPoint, split: TrainValidationSplit, repeat: RepeatResult,
                run_dir: Path, device: torch.device) -> RepeatResult:
    """A short pass over train+validation at a low rate; validation selects nothing after it."""
    trained = TrainSettings(**repeat.train_settings)
    settings = replace(trained, epochs=FINAL_PASS_EPOCHS,
                       learning_rate=trained.learning_rate * FINAL_PASS_LR_FACTOR)
    both = _train_plus_validation(split)
    steps = math.ceil(len(both.train) / settings.batch_size)
    with progress_bar(total=FINAL_PASS_EPOCHS * steps, desc=f"final pass seed {repeat.seed}",
                      unit="batch") as bar:
        final = train(start.config, settings, both, device, initial_weights=repeat.weights,
                      checkpoint_path=layout.finetune_checkpoint(run_dir, repeat.seed, "final"),
                      on_step=lambda: bar.update(1))
    return replace(repeat, weights=_cpu_state(final.model), final_pass_history=final.history_dicts())


def _prepare_run_dir(run_dir: Path, settings: FinetuneSettings) -> None:
    """A new run needs an unused folder; --resume needs the same training settings."""
    settings_path = run_dir / layout.FINETUNE_SETTINGS
    if settings_path.exists():
        if not settings.resume:
            raise ValueError(f"{run_dir} already holds a finetune run: pass --resume to continue "
                             "it, or --run NAME for a new one")
        saved = json.loads(settings_path.read_text())
        given = settings.to_json()
        differ = [f"{k} (run: {saved.get(k)!r}, given: {given[k]!r})"
                  for k in given if k not in RUN_IDENTITY and saved.get(k) != given[k]]
        if differ:
            raise ValueError(f"--resume with other settings than {run_dir}'s: {', '.join(differ)}")
    layout.make_folder(run_dir)
    settings_path.write_text(json.dumps(settings.to_json(), indent=2))


def run_finetune(settings: FinetuneSettings) -> tuple[dict, Path]:
    """Finetune `settings.repeats` seeds, score them once on the test set, write the run folder."""
    started = time.perf_counter()
    study_name = settings.source.choose(settings.study)
    start = load_starting_point(settings, study_name)
    note = other_data_note(start, settings.data_dir)
    if note:
        start = replace(start, notes=(*start.notes, note))
    device = pick_device(settings.device)
    split = load_split(  # bad sizes fail before the run folder is made
        settings.data_dir, settings.validation_size or start.validation_size, start.split_seed,
        settings.train_size)
    require_test_files(settings.data_dir)  # missing ones fail before any training
    run_dir = layout.finetune_dir(settings.results_dir, study_name,
                                  settings.run or start.run)
    _prepare_run_dir(run_dir, settings)
    use_available_cores()
    repeats = [train_repeat(start, settings, split, settings.seed + i, run_dir, device)
               for i in range(settings.repeats)]

    # All selection is done; only now are the test files read, once.
    test = load_test_set(settings.data_dir)
    models = [_model(start.config, r.weights, device) for r in repeats]
    evaluations = [score(model, test, device, settings.precision) for model in models]
    chosen = max(range(len(repeats)), key=lambda i: repeats[i].best_validation_accuracy)
    save_weights(models[chosen], start.config, run_dir)
    export_model(models[chosen], run_dir / layout.FINETUNE_EXPORT)
    metrics = _metrics(start, settings, repeats, evaluations, chosen, models[chosen], device)
    metrics["seconds"] = time.perf_counter() - started
    path = run_dir / layout.FINETUNE_METRICS
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, path)
    return metrics, run_dir


def _model(config: CNNConfig, weights: dict[str, torch.Tensor], device: torch.device) -> torch.nn.Module:
    model = build_model(config)
    model.load_state_dict(weights)
    return prepare_model(model, device).eval()


def _metrics(start: StartingPoint, settings: FinetuneSettings, repeats: list[RepeatResult],
             evaluations: list[TestEvaluation], chosen: int, model: torch.nn.Module,
             device: torch.device) -> dict:
    accuracies = [e.accuracy for e in evaluations]
    return {
        "study": start.study,
        "trial_number": start.trial_number,
        "config": {**asdict(start.config), "channels": list(start.config.channels)},
        "train_settings": repeats[chosen].train_settings,
        "finetune_settings": settings.to_json(),
        "started_from": "trial weights" if start.weights is not None else "scratch",
        "notes": list(start.notes),
        "device": str(device),
        "test_images": evaluations[chosen].images,
        "test_data": describe_data(settings.data_dir),
        "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "test_accuracy_min": min(accuracies),
        "test_accuracy_max": max(accuracies),
        "exported_seed": repeats[chosen].seed,
        "repeats": [
            {
                "seed": r.seed,
                "test_accuracy": e.accuracy,
                "test_loss": e.loss,
                "epochs_trained": r.epochs_trained,
                "best_validation_accuracy": r.best_validation_accuracy,
                "best_epoch": r.best_epoch,
                "stopped_early": r.stopped_early,
                "training_seconds": sum(h["seconds"] for h in r.history + r.final_pass_history),
                "history": r.history,
                "final_pass_history": r.final_pass_history,
            }
            for r, e in zip(repeats, evaluations)
        ],
        "test_loss": evaluations[chosen].loss,
        "per_class_accuracy": evaluations[chosen].per_class_accuracy,
        "confusion_matrix": evaluations[chosen].confusion_matrix,
        **asdict(measure_model(model, precision=settings.precision)),
        "files": {"weights": layout.FINETUNE_WEIGHTS, "config": layout.FINETUNE_CONFIG,
                  "export": layout.FINETUNE_EXPORT},
    }


def render(metrics: dict, run_dir: Path) -> str:
    """The run's result in a few lines."""
    repeats = metrics["repeats"]
    spread = f" ± {metrics['test_accuracy_std']:.2%} over {len(repeats)} seeds" if len(repeats) > 1 else ""
    notes = "".join(f"note: {note}\n" for note in metrics.get("notes", []))
    latency = describe_latency(*(metrics[key] for key in ("latency_ms_batch1", "latency_ms_batch1_q1",
                                                         "latency_ms_batch1_q3", "latency_calls")))
    return notes + (
        f"trial {metrics['trial_number']} of {metrics['study']} (from {metrics['started_from']}): "
        f"test accuracy {metrics['test_accuracy_mean']:.2%}{spread} on "
        f"{metrics['test_images']:,} test images of {metrics['test_data']}, "
        f"{metrics['parameters']:,} params, {latency}, "
        f"{metrics['seconds']:.0f} s\nwrote {run_dir}"
    )
