"""The report's tables: per distinct config from the evidence (bench.evidence), per study from
the trials frames of load.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.evidence.answers import CLAIMS, claim_verdict
from bench.store.identity import KNOBS
from bench.report.load import (
    STATE_COMPLETE, STATE_FAILED, STATE_INVALID, STATE_PRUNED, STATE_RUNNING, StudyData,
)

KNOB_COLUMNS = list(KNOBS)
# The evidence's names -> the tables' (which also tell bench.report.formatting these are accuracies).
ACCURACY_NAMES = {"mean": "validation_accuracy_mean", "ci_low": "validation_accuracy_ci_low",
                  "ci_high": "validation_accuracy_ci_high", "sd": "validation_accuracy_std",
                  "training_label": "training"}


def config_columns(ranked: pd.DataFrame) -> list[str]:
    """The FAQ knobs, and the training settings where the configs differ in them."""
    varies = "training_label" in ranked and ranked["training_label"].astype(bool).any()
    return [*KNOB_COLUMNS, "training_label"] if varies else KNOB_COLUMNS


def latest_final_models(studies: list[StudyData]) -> pd.DataFrame:
    """Every finetune run (metrics.json), newest first: the models that saw the test set."""
    rows = [{"study": s.name, **run} for s in studies for run in s.finetune]
    columns = ["study", "run", "trial_number", "test_accuracy_mean", "test_accuracy_std",
               "repeats", "test_images", "test_data", "parameters", "flops_per_image", "latency_ms_batch1",
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


def final_models_by_config(studies: list[StudyData]) -> pd.DataFrame:
    """The newest finetune run of each config (config_key), with its test accuracy."""
    finals = latest_final_models(studies)
    ids = pd.concat([s.trials[["trial", "config_key"]].assign(study=s.name) for s in studies],
                    ignore_index=True)
    finals = finals.merge(ids, how="inner", left_on=["study", "trial_number"],
                          right_on=["study", "trial"])
    return finals.drop_duplicates("config_key")[["config_key", "run", "test_accuracy_mean",
                                                "test_accuracy_std", "repeats", "test_images",
                                                "test_data"]]


def on_test_images(final: pd.Series) -> str:
    """' on N test images of DATA' for a finetune run's test accuracy ("" in a run recorded
    before it said so)."""
    if pd.isna(final.get("test_images")):
        return ""
    data = final.get("test_data")
    return (f" on {int(final['test_images']):,} test images"
            + (f" of {data}" if isinstance(data, str) else ""))


def accuracy_table(ranked: pd.DataFrame, finals: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """Distinct configs: the search's value (`selection_value`), the held-out seeds' count,
    mean and t interval, the decision against the best within +-margin with the difference and
    its interval, the trials that asked for each (replays folded in), the one to use, and test
    accuracy where the config was finetuned (only final evaluation reads the test set)."""
    table = ranked.head(limit).merge(finals, how="left", on="config_key")
    for column in ("difference", "diff_ci_low", "diff_ci_high", "margin"):  # differences in pp
        table[f"{column}_pp"] = table[column] * 100
    columns = [*config_columns(ranked), "selection_value", "heldout_seeds", "mean", "ci_low",
               "ci_high", "sd", "decision", "difference_pp", "diff_ci_low_pp", "diff_ci_high_pp",
               "more_seeds", "margin_pp", "recommended", "queries", "studies",
               "test_accuracy_mean", "test_accuracy_std"]
    return table.reindex(columns=columns).rename(
        columns={"sd": "validation_accuracy_std", "training_label": "training"})


def size_table(ranked: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """Parameters, FLOPs per image and training FLOPs per run of the top distinct configs."""
    return ranked.head(limit)[[*config_columns(ranked), "seeds", "mean", "parameters", "flops_per_image",
                               "training_flops"]].reset_index(drop=True).rename(columns=ACCURACY_NAMES)


def speed_table(ranked: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """Training throughput and latency at batch 1 of the top distinct configs (medians)."""
    return ranked.head(limit)[[*config_columns(ranked), "seeds", "mean", "train_images_per_second",
                               "latency_ms_batch1"]].reset_index(drop=True).rename(columns=ACCURACY_NAMES)


def faq_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every paired comparison behind the FAQ answers: the knob's two values, the knobs held
    fixed, the paired difference with its interval and verdict, and both configs' exact cost."""
    if pairs.empty:
        return pd.DataFrame(columns=["knob", "low_value", "high_value", "fixed", "pairs"])
    table = pairs.drop(columns=["low_config", "high_config", "fidelity_key", "confidence",
                                "effect"]).copy()
    # the claim's verdict per knob at each budget: pairs at other epochs never answer together
    verdicts = {(knob, fidelity): claim_verdict(list(group["decision"]), CLAIMS[knob].direction)
                for (knob, fidelity), group in pairs.groupby(["knob", "fidelity_key"])}
    table.insert(1, "claim_verdict", [verdicts[key] for key in zip(pairs["knob"],
                                                                   pairs["fidelity_key"])])
    table["fixed"] = table["fixed"].map(lambda d: ", ".join(f"{k}={v}" for k, v in d.items()))
    training = table.pop("training_label") if "training_label" in table else None
    if training is not None and training.astype(bool).any():  # the training held fixed too
        table["fixed"] = [f"{fixed}, {label}" if label else fixed
                          for fixed, label in zip(table["fixed"], training)]
    for column in ("difference", "ci_low", "ci_high"):  # accuracy differences in pp
        table[f"{column}_pp"] = table.pop(column) * 100
    table["margin"] = table["margin"] * 100  # in pp too, in its own place among the columns
    return table.rename(columns={"margin": "margin_pp", "low_mean": "low_validation_accuracy_mean",
                                 "high_mean": "high_validation_accuracy_mean"})


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
