"""Does this machine reproduce the reference? A fresh measurement of a config that a shipped
reference table holds (results/reference/*.jsonl), set against the table's seeds of it.

A seed the reference also measured is compared curve for curve (identical, or by how much it
differs); other seeds are compared with a 95% prediction interval for their mean: the reference
mean of this config, with the seed-to-seed sd pooled over the 20 configs of the table nearest in
accuracy at the same fidelity (40 degrees of freedom, where one config's 3 seeds would give 2;
near in accuracy, because noise need not be the same at 98.8% and at 17%). A study's configs
are judged as one family: each config's p-value (the smallest of its tests, Bonferroni over
them) is Holm-adjusted over the configs checked, so a machine that does reproduce the table is
told otherwise in at most 5% of confirms, however many configs it checks. A run at
another fidelity (another device kind, epochs, split...) is told which fields differ, so a GPU
user learns that the reference is a CPU table rather than reading a CPU number as a target.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from scipy import stats

from bench.evidence.decisions import floored_sd, holm
from bench.store import layout, schema
from bench.store.curves import curve_value
from bench.store.identity import (KNOBS, canonical, config_key, measurement_keys, normalized_config,
                                  trial_seed)
from bench.store.reference import ReferenceTableError, read_reference

CONFIDENCE = 0.95
# How many configs, nearest in mean accuracy, a config's seed noise is pooled over.
NEIGHBOURS = 20


@dataclass(frozen=True)
class Measured:
    """One fresh measurement: its seed and its curve (EpochRecord fields as dicts or records)."""

    seed: int
    curve: tuple[dict[str, Any], ...]

    @property
    def value(self) -> float:
        return curve_value(self.curve)


@dataclass(frozen=True)
class ReproductionCheck:
    """The reference's seeds of one config set against a fresh run's; `sentence` says it."""

    source: str  # the reference file's name
    reference: dict[int, float]  # seed -> value, at the run's fidelity ({} at another one)
    measured: dict[int, float]  # the run's seeds -> value
    identical: tuple[int, ...] = ()  # seeds of both whose curves are the same, record for record
    differing: tuple[int, ...] = ()  # seeds of both whose curves differ
    interval: tuple[float, float] | None = None  # prediction interval of the new seeds' mean
    pooled_sd: float | None = None
    pooled_configs: int = 0
    other_fidelity: str | None = None  # "device_kind cuda (reference cpu)", when nothing matched
    pooled_df: int = 0  # the pooled sd's degrees of freedom
    adjusted_p: float | None = None  # `p_value` Holm-adjusted over a study's configs
    family: int = 1  # the configs it was adjusted over

    @property
    def new_seeds(self) -> list[int]:
        return sorted(set(self.measured) - set(self.reference))

    @property
    def inside(self) -> bool | None:
        """Whether the new seeds' mean is inside the prediction interval (None: not tested)."""
        if self.interval is None or not self.new_seeds:
            return None
        mean = float(np.mean([self.measured[s] for s in self.new_seeds]))
        return bool(self.interval[0] <= mean <= self.interval[1])

    @property
    def differing_beyond_noise(self) -> tuple[int, ...]:
        """Seeds of both whose values differ by more than two independent seeds would in 95% of
        cases (other rounding soon makes a seed's run an independent draw); () without an sd."""
        if self.pooled_sd is None:
            return ()
        allowed = stats.norm.ppf(0.5 + CONFIDENCE / 2) * math.sqrt(2) * self.pooled_sd
        return tuple(s for s in self.differing
                     if abs(self.measured[s] - self.reference[s]) > allowed)

    @property
    def p_value(self) -> float | None:
        """Two-sided p that this run's seeds come from the reference's distribution: the
        smallest over its tests (each differing seed against its reference seed, the new seeds'
        mean against the reference mean), Bonferroni over them; None when none was tested."""
        if self.pooled_sd is None:
            return None
        tests = [float(2 * stats.norm.sf(abs(self.measured[s] - self.reference[s])
                                         / (math.sqrt(2) * self.pooled_sd)))
                 for s in self.differing]
        if self.interval is not None and self.new_seeds:
            mean = float(np.mean([self.measured[s] for s in self.new_seeds]))
            se = self.pooled_sd * math.sqrt(1 / len(self.new_seeds) + 1 / len(self.reference))
            reference = float(np.mean(list(self.reference.values())))
            tests.append(float(2 * stats.t.sf(abs(mean - reference) / se, self.pooled_df)))
        return min(1.0, len(tests) * min(tests)) if tests else None

    @property
    def reproduced(self) -> bool | None:
        """False when what this run measured is further from the reference than seed noise
        allows (p under 5%, Holm-adjusted over a study's configs where `adjusted_p` is set);
        True when something was checked and it is not; None when nothing could be checked."""
        if self.other_fidelity is not None:
            return None
        p = self.adjusted_p if self.adjusted_p is not None else self.p_value
        if p is not None and p < 1 - CONFIDENCE:
            return False
        return True if self.identical or p is not None else None

    def verdict(self) -> str:
        return {True: ("this machine reproduces the reference bitwise"
                       if self.identical and not self.differing
                       else "this machine reproduces the reference within seed noise"),
                False: ("this machine does NOT reproduce the reference (check the torch version, "
                        "the data and the settings)"),
                None: "reproduction not tested"}[self.reproduced]

    def sentence(self) -> str:
        measured = ", ".join(f"seed {s} {v:.2%}" for s, v in sorted(self.measured.items()))
        if self.other_fidelity is not None:
            return (f"reference {self.source}: this config is held there at another fidelity "
                    f"({self.other_fidelity}), so this run ({measured}) is not checked against it")
        values = list(self.reference.values())
        spread = (f"{min(values):.2%} to {max(values):.2%} over {len(values)} seeds"
                  if len(values) > 1 else f"{values[0]:.2%} (1 seed)")
        parts = [f"reference {self.source}: {spread}; this run {measured}"]
        if self.identical:
            parts.append(f"seed{'s' if len(self.identical) > 1 else ''} "
                         f"{', '.join(map(str, self.identical))} identical to the reference's, "
                         "evaluation for evaluation")
        for seed in self.differing:
            gap = self.measured[seed] - self.reference[seed]
            judged = ("more than seed noise allows" if seed in self.differing_beyond_noise
                      else "within seed noise" if self.pooled_sd is not None
                      else "no seed noise measured yet to judge it")
            parts.append(f"seed {seed} differs from the reference's by {gap * 100:+.2f} pp "
                         f"({judged}; rounding differs across CPUs, thread counts and libraries)")
        if self.new_seeds:
            mean = float(np.mean([self.measured[s] for s in self.new_seeds]))
            label = (f"seed {self.new_seeds[0]}" if len(self.new_seeds) == 1
                     else f"the mean of seeds {', '.join(map(str, self.new_seeds))}")
            if self.interval is None:
                parts.append(f"{label} ({mean:.2%}) not tested: the reference has no spread "
                             "of seeds yet")
            else:
                low, high = self.interval
                parts.append(f"{label} ({mean:.2%}) {'inside' if self.inside else 'OUTSIDE'} "
                             f"the {CONFIDENCE:.0%} prediction interval {low:.2%} to {high:.2%} "
                             f"(seed sd {self.pooled_sd * 100:.2f} pp, pooled over the "
                             f"{self.pooled_configs} configs nearest in accuracy)")
        if self.adjusted_p is not None and self.family > 1:
            parts.append(f"p {self.adjusted_p:.3f} Holm-adjusted over the {self.family} configs "
                         "checked")
        return "; ".join(parts) + f": {self.verdict()}"


class Reference:
    """The rows of reference tables, by network, with the seed noise of each fidelity."""

    def __init__(self, rows: list[dict[str, Any]], source: str,
                 unreadable: tuple[str, ...] = ()) -> None:
        self.source = source
        self.unreadable = unreadable  # one line per reference file that could not be read
        # by the network alone (its config key without training): a row of the network at other
        # training settings is reported as held at another fidelity, not as absent
        self.by_network: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row.get("complete"):
                self.by_network[config_key(row["config"])].append(row)
        self._values: dict[str, list[list[float]]] = {}  # by fidelity: see `_groups`

    @classmethod
    def shipped(cls, results_dir: Path) -> "Reference | None":
        """The reference tables under `results_dir`/reference, or None when there are none; a
        file that cannot be read is named in `unreadable` (a check is never worth a run)."""
        paths = layout.reference_tables(results_dir)
        if not paths:
            return None
        rows, read, unreadable = [], [], []
        for path in paths:
            try:
                rows += read_reference(path)
                read.append(path.name)
            except ReferenceTableError as error:
                unreadable.append(f"note: {error}; not checked against it")
        return cls(rows, ", ".join(read), tuple(unreadable))

    def check(self, config: dict[str, Any], fidelity: dict[str, Any],
              measured: list[Measured]) -> ReproductionCheck | None:
        """The run's seeds of `config` at `fidelity` against the reference's; None when the
        reference does not hold this network at all."""
        rows = self.by_network.get(config_key(config))
        if not rows or not measured:
            return None
        fidelity = canonical(fidelity)
        values = {m.seed: m.value for m in measured}
        same = {row["seed"]: row for row in rows if row["fidelity"] == fidelity}
        if not same:
            return ReproductionCheck(self.source, {}, values,
                                     other_fidelity=fidelity_difference(fidelity, rows[0]["fidelity"]))
        reference = {seed: curve_value(row["curve"]) for seed, row in same.items()}
        identical, differing = [], []
        for m in measured:
            if m.seed in same:
                (identical if same_curve(m.curve, same[m.seed]["curve"]) else differing).append(m.seed)
        mean = float(np.mean(list(reference.values())))
        sd, configs, degrees = self.noise(fidelity, around=mean)
        new = [s for s in values if s not in reference]
        interval = None
        if configs and new:
            half = (stats.t.ppf(0.5 + CONFIDENCE / 2, degrees) * sd
                    * math.sqrt(1 / len(new) + 1 / len(reference)))
            interval = (float(mean - half), float(mean + half))
        return ReproductionCheck(self.source, reference, values, tuple(identical), tuple(differing),
                                 interval, sd if configs else None, configs, pooled_df=degrees)

    def noise(self, fidelity: dict[str, Any], around: float) -> tuple[float, int, int]:
        """The seed sd pooled over the `NEIGHBOURS` configs with 2+ seeds at `fidelity` whose
        mean is nearest `around` (each config's sd at least one validation image): seed noise
        need not be the same at 98.8% and at 17% (the faq space has both), so a 98.8% config is
        judged by configs near 98.8%. Returns (sd, configs, degrees of
        freedom); (nan, 0, 0) when no config has two seeds."""
        groups = sorted(self._groups(fidelity), key=lambda v: abs(float(np.mean(v)) - around))
        near = [v for v in groups if len(v) > 1][:NEIGHBOURS]
        if not near:
            return math.nan, 0, 0
        resolution = 1 / int(fidelity["validation_size"])
        squares = sum((len(v) - 1) * floored_sd(np.array(v), resolution) ** 2 for v in near)
        degrees = sum(len(v) - 1 for v in near)
        return math.sqrt(squares / degrees), len(near), degrees

    def _groups(self, fidelity: dict[str, Any]) -> list[list[float]]:
        """Each network's values at `fidelity`, one list per network that has any."""
        key = json.dumps(fidelity, sort_keys=True)
        if key not in self._values:
            values = [[curve_value(r["curve"]) for r in rows if r["fidelity"] == fidelity]
                      for rows in self.by_network.values()]
            self._values[key] = [v for v in values if v]
        return self._values[key]


def same_curve(curve: Iterable[dict[str, Any]], reference: Iterable[dict[str, Any]]) -> bool:
    """Whether two curves scored the same at every evaluation (loss and accuracy, exactly):
    the same training, bitwise for all a user can see."""
    fields = ("validation_loss", "validation_accuracy", "train_loss")
    curve, reference = list(curve), list(reference)
    return len(curve) == len(reference) and all(
        float(a[name]) == float(b[name]) for a, b in zip(curve, reference) for name in fields)


def fidelity_difference(fidelity: dict[str, Any], reference: dict[str, Any]) -> str:
    """The fields where a run's fidelity differs from the reference's, e.g. "device_kind cuda
    (reference cpu)"."""
    def flat(record: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in record.items() if k != "train_settings"}
        return {**values, **(record.get("train_settings") or {})}

    mine, theirs = flat(fidelity), flat(reference)
    names = sorted(set(mine) | set(theirs), key=lambda name: (name != "device_kind", name))
    return ", ".join(f"{name} {mine.get(name)} (reference {theirs.get(name)})"
                     for name in names if mine.get(name) != theirs.get(name))


def study_checks(trials: Iterable[Any], reference: Reference) -> list[str]:
    """One line per config of a study's trained trials (optuna FrozenTrials; those answered from
    a curve table are not this machine's runs) that the reference holds at the same fidelity,
    and one line for all it holds only at another."""
    runs: dict[tuple[str, str], tuple[dict, dict, list[Measured]]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if attrs.get(schema.ATTR_REPLAYED) or schema.ATTR_LEARNING_CURVE not in attrs:
            continue
        key = measurement_keys(attrs[schema.ATTR_CONFIG], attrs[schema.ATTR_FIDELITY])
        config, fidelity, measured = runs.setdefault(
            key, (attrs[schema.ATTR_CONFIG], attrs[schema.ATTR_FIDELITY], []))
        measured.append(Measured(trial_seed(trial), tuple(attrs[schema.ATTR_LEARNING_CURVE])))
    checks, elsewhere = [], []
    for config, fidelity, measured in runs.values():
        check = reference.check(config, fidelity, measured)
        if check is None:
            continue
        if check.other_fidelity is not None:
            elsewhere.append(check)
            continue
        checks.append((config, check))
    adjusted = holm([np.nan if c.p_value is None else c.p_value for _, c in checks])
    tested = sum(not np.isnan(p) for p in adjusted)
    lines = []
    for (config, check), p in zip(checks, adjusted):
        if not np.isnan(p):
            check = replace(check, adjusted_p=p, family=tested)
        network = normalized_config(config)
        knobs = ", ".join(f"{knob} {network[knob]}" for knob in KNOBS)
        lines.append(f"{knobs}: {check.sentence()}")
    if elsewhere:
        lines.append(f"reference {reference.source} holds {len(elsewhere)} of these configs only "
                     f"at another fidelity ({elsewhere[0].other_fidelity}): not checked")
    return [*reference.unreadable, *lines]
