"""The report's tables, built from the trials frames of load.py, and the one-line answers to the FAQ."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.load import (
    STATE_COMPLETE, STATE_FAILED, STATE_INVALID, STATE_PRUNED, STATE_RUNNING, StudyData,
)

FAQ_PARAMS = {"kernel_size": "kernel size", "stride": "stride", "pool_size": "pool size",
              "fc_width": "FC width"}
# A parameter with more distinct values than this (e.g. a log-int FC width) is grouped by the
# nearest power of two, so each row still holds several trials.
MAX_EXACT_VALUES = 8
# Two values whose best validation accuracies differ by no more than this are called a match.
MATCH_TOLERANCE_PP = 0.1
CONFIG_COLUMNS = ["channels", "kernel_size", "stride", "padding", "pool_size", "pool_type",
                  "fc_width", "dropout", "learning_rate", "batch_size"]


def _with_study(study: StudyData, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(study=study.name)


def top_trials(studies: list[StudyData], limit: int = 10) -> pd.DataFrame:
    """The trials with the highest validation accuracy over all studies (completed or pruned)."""
    frames = [_with_study(s, s.trials[s.trials["state"].isin([STATE_COMPLETE, STATE_PRUNED])])
              for s in studies]
    trials = pd.concat(frames, ignore_index=True)
    trials = trials[trials["validation_accuracy"].notna()]
    trials = trials.sort_values(["validation_accuracy", "study", "trial"],
                                ascending=[False, True, True], kind="stable")
    return trials.head(limit).reset_index(drop=True)


def latest_final_models(studies: list[StudyData]) -> pd.DataFrame:
    """Every finetune run (metrics.json), newest first: the models that saw the test set."""
    rows = [{"study": s.name, **run} for s in studies for run in s.finetune]
    columns = ["study", "run", "trial_number", "test_accuracy_mean", "test_accuracy_std",
               "repeats", "parameters", "flops_per_image", "latency_ms_batch1",
               "inference_images_per_second", "written"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame["repeats"] = frame["repeats"].map(lambda r: len(r) if isinstance(r, list) else 0)
    frame = frame.reindex(columns=columns)
    return frame.sort_values("written", ascending=False, kind="stable").reset_index(drop=True)


def final_models_table(studies: list[StudyData]) -> pd.DataFrame:
    """Finetuned models with their test accuracy (mean and std over repeats), size and speed."""
    return latest_final_models(studies).drop(columns="written")


def accuracy_table(studies: list[StudyData], limit: int = 10) -> pd.DataFrame:
    """Top trials: config, validation accuracy, epochs, state; test accuracy where finetuned.

    Test accuracy comes from the newest finetune run of that trial; other trials have none,
    because only final evaluation reads the test set.
    """
    top = top_trials(studies, limit)
    finals = latest_final_models(studies).drop_duplicates(["study", "trial_number"])
    finals = finals[["study", "trial_number", "test_accuracy_mean", "test_accuracy_std"]]
    top = top.merge(finals, how="left", left_on=["study", "trial"],
                    right_on=["study", "trial_number"]).drop(columns="trial_number")
    columns = ["study", "trial", "state", "validation_accuracy", "epochs_trained", "replayed",
               "test_accuracy_mean", "test_accuracy_std", *CONFIG_COLUMNS]
    return top[columns]


def size_table(studies: list[StudyData], limit: int = 10) -> pd.DataFrame:
    """Parameter count and FLOPs per image of the top trials (replayed ones: measured at source)."""
    columns = ["study", "trial", "validation_accuracy", "replayed", "parameters", "flops_per_image"]
    return top_trials(studies, limit)[columns]


def speed_table(studies: list[StudyData], limit: int = 10) -> pd.DataFrame:
    """Training throughput, latency at batch 1 and throughput at batch 256 of the top trials."""
    columns = ["study", "trial", "validation_accuracy", "replayed", "train_images_per_second",
               "latency_ms_batch1", "inference_images_per_second"]
    return top_trials(studies, limit)[columns]


def pruning_table(studies: list[StudyData]) -> pd.DataFrame:
    """Per study: trials by state (and how many were replayed), where pruned trials stopped, and
    epochs saved by pruning.

    Epochs saved sums (planned epochs - epochs trained) over trials that trained (completed or
    pruned); invalid configs never train and failed trials stopped for other reasons.
    """
    rows = []
    for s in studies:
        trials = s.trials
        counts = trials["state"].value_counts()
        pruned = trials[trials["state"] == STATE_PRUNED]
        stops = pruned["pruned_at_epoch"].dropna().value_counts().sort_index()
        trained = trials[trials["state"].isin([STATE_COMPLETE, STATE_PRUNED])]
        trained = trained[trained["planned_epochs"].notna()]
        planned = float(trained["planned_epochs"].sum())
        done = float(trained["epochs_trained"].sum())
        rows.append({
            "study": s.name,
            "trials": len(trials),
            "completed": int(counts.get(STATE_COMPLETE, 0)),
            "pruned": int(counts.get(STATE_PRUNED, 0)),
            "invalid": int(counts.get(STATE_INVALID, 0)),
            "failed": int(counts.get(STATE_FAILED, 0)),
            "running": int(counts.get(STATE_RUNNING, 0)),
            "replayed": int(trials["replayed"].sum()),
            "pruned_at_epoch": ", ".join(f"epoch {e:g}: {n}" for e, n in stops.items()) or "-",
            "epochs_planned": planned,
            "epochs_trained": done,
            "epochs_saved": planned - done,
            "epochs_saved_fraction": (planned - done) / planned if planned else 0.0,
        })
    return pd.DataFrame(rows)


def faq_table(study: StudyData) -> pd.DataFrame:
    """For each FAQ parameter and value: completed trials, best and median accuracy, size, speed."""
    done = study.completed
    frames = []
    for param in FAQ_PARAMS:
        if param not in done or done[param].isna().all():
            continue
        values = done[param].astype(float)
        binned = values.nunique() > MAX_EXACT_VALUES
        key = np.exp2(np.round(np.log2(values))).astype(int) if binned else done[param]
        grouped = done.assign(value=key).groupby("value").agg(
            lowest=(param, "min"),
            highest=(param, "max"),
            trials=("trial", "size"),
            best_validation_accuracy=("validation_accuracy", "max"),
            median_validation_accuracy=("validation_accuracy", "median"),
            median_parameters=("parameters", "median"),
            median_flops_per_image=("flops_per_image", "median"),
            median_latency_ms_batch1=("latency_ms_batch1", "median"),
            median_inference_images_per_second=("inference_images_per_second", "median"),
        )
        grouped = grouped.reset_index()
        grouped.insert(1, "values_seen", [f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
                                          for lo, hi in zip(grouped.pop("lowest"),
                                                            grouped.pop("highest"))])
        frames.append(grouped.assign(study=study.name, parameter=param, binned=binned))
    if not frames:
        return pd.DataFrame(columns=["study", "parameter", "value", "trials"])
    table = pd.concat(frames, ignore_index=True)
    first = ["study", "parameter", "value"]
    return table[first + [c for c in table.columns if c not in first]]


def faq_answer(table: pd.DataFrame, parameter: str) -> str:
    """One line from the data: the most accurate value, and the cheapest one that matched it."""
    label = FAQ_PARAMS[parameter]
    rows = table[table["parameter"] == parameter]
    if len(rows) and rows["binned"].iloc[0]:
        rows = rows.assign(value=[f"~{v}" for v in rows["value"]])
    if rows.empty:
        return f"{label}: no completed trial records it."
    if len(rows) == 1:
        only = rows.iloc[0]
        return (f"{label}: only {label} {only['value']} was tried (n={only['trials']} completed, "
                f"best {_pct(only['best_validation_accuracy'])}); nothing to compare.")
    rows = rows.sort_values(["best_validation_accuracy", "median_flops_per_image"],
                            ascending=[False, True], kind="stable")
    best = rows.iloc[0]
    tolerance = MATCH_TOLERANCE_PP / 100
    close = rows[rows["best_validation_accuracy"] >= best["best_validation_accuracy"] - tolerance]
    cheapest = close.sort_values("median_flops_per_image", kind="stable").iloc[0]
    if cheapest["value"] != best["value"] and pd.notna(cheapest["median_flops_per_image"]):
        gap = (best["best_validation_accuracy"] - cheapest["best_validation_accuracy"]) * 100
        ratio = best["median_flops_per_image"] / cheapest["median_flops_per_image"]
        return (f"{label} {cheapest['value']} matched {label} {best['value']} within {gap:.2f} pp "
                f"(best {_pct(cheapest['best_validation_accuracy'])} vs "
                f"{_pct(best['best_validation_accuracy'])}) at {ratio:.1f}x fewer FLOPs per image "
                f"(n={cheapest['trials']} vs n={best['trials']} completed trials).")
    runner_up = rows.iloc[1]
    gap = (best["best_validation_accuracy"] - runner_up["best_validation_accuracy"]) * 100
    head = (f"{label} {best['value']} was the most accurate (best "
            f"{_pct(best['best_validation_accuracy'])}, n={best['trials']} completed)")
    if len(close) > 1:  # others matched it, but none was cheaper
        return (f"{head} and no value within {MATCH_TOLERANCE_PP:g} pp of it was cheaper; "
                f"{label} {runner_up['value']} came within {gap:.2f} pp.")
    cheapest_overall = best["median_flops_per_image"] == rows["median_flops_per_image"].min()
    cheaper = ", and it was also the cheapest in FLOPs" if cheapest_overall else ""
    return f"{head}, {gap:.2f} pp ahead of {label} {runner_up['value']}{cheaper}."


def faq_answers(study: StudyData, table: pd.DataFrame | None = None) -> list[str]:
    table = faq_table(study) if table is None else table
    return [faq_answer(table, parameter) for parameter in FAQ_PARAMS]


def progress_table(study: StudyData) -> pd.DataFrame:
    """Best-so-far validation accuracy after each finished trial, against trials and trial seconds."""
    trials = study.trials[study.trials["state"] != STATE_RUNNING].sort_values("trial")
    value = trials["validation_accuracy"].where(trials["state"] == STATE_COMPLETE)
    return pd.DataFrame({
        "study": study.name,
        "trial": trials["trial"].to_numpy(),
        "trials_finished": np.arange(1, len(trials) + 1),
        "cumulative_seconds": trials["seconds"].astype(float).fillna(0.0).cumsum().to_numpy(),
        "best_validation_accuracy": value.cummax().ffill().to_numpy(),
    })


def pareto_front(cost: pd.Series, accuracy: pd.Series) -> pd.Series:
    """True where no other point is at least as cheap and as accurate, and better in one."""
    points = list(zip(cost.to_numpy(float), accuracy.to_numpy(float)))
    front = [not any(c2 <= c and a2 >= a and (c2 < c or a2 > a) for c2, a2 in points)
             for c, a in points]
    return pd.Series(front, index=cost.index)


def best_trial(studies: list[StudyData]) -> pd.Series:
    """The completed trial with the highest validation accuracy over all studies."""
    done = pd.concat([_with_study(s, s.completed) for s in studies], ignore_index=True)
    return done.sort_values(["validation_accuracy", "study", "trial"],
                            ascending=[False, True, True], kind="stable").iloc[0]


def summary_lines(studies: list[StudyData]) -> list[str]:
    """The page's top lines: the best config, its accuracy, size and speed, and its test accuracy."""
    best = best_trial(studies)
    config = ", ".join(f"{c}={best[c]}" for c in CONFIG_COLUMNS if pd.notna(best.get(c)))
    lines = [
        f"Best config: study {best['study']}, trial {best['trial']}: {config}.",
        f"Validation accuracy {_pct(best['validation_accuracy'])} after "
        f"{best['epochs_trained']:g} epoch{'' if best['epochs_trained'] == 1 else 's'}; "
        f"{_count(best['parameters'])} parameters, "
        f"{_count(best['flops_per_image'])} FLOPs per image; inference "
        f"{_number(best['latency_ms_batch1'], '.3g')} ms at batch 1, "
        f"{_count(best['inference_images_per_second'])} images/s at batch 256; training "
        f"{_count(best['train_images_per_second'])} images/s.",
    ]
    finals = latest_final_models(studies)
    finals = finals[(finals["study"] == best["study"]) & (finals["trial_number"] == best["trial"])]
    if len(finals):
        final = finals.iloc[0]
        lines.append(f"Test accuracy (finetune run {final['run']}, {final['repeats']} repeats): "
                     f"{_pct(final['test_accuracy_mean'])} ± {final['test_accuracy_std'] * 100:.2f} pp.")
    else:
        lines.append("Test accuracy: not measured yet (run `mnist-bench finetune --best`).")
    total = sum(len(s.trials) for s in studies)
    lines.append(f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}, {total} trials.")
    return lines


def _pct(fraction) -> str:
    return "n/a" if pd.isna(fraction) else f"{fraction * 100:.2f}%"


def _count(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:,.0f}"


def _number(value, spec: str) -> str:
    return "n/a" if value is None or pd.isna(value) else format(value, spec)
