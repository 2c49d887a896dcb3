"""What changes between two budgets of the same networks: the FAQ at one epoch beside the FAQ at
ten, by one method, and whether the short budget ranks what the long one finds.

Both reference tables are read through bench.evidence.whole_space, and the short one is first
restricted to the networks the long one measured, so each step is answered over the same pairs at
both budgets (like with like; the whole-space answer at the short budget is a different population
and is shown beside it only as context). Per step:
- each budget's effect among its working networks (bench.evidence.working_effects) and its
  direction (working_effects.step_direction);
- the change of the effect, long minus short, over the pairs that work at both budgets: the
  Hodges-Lehmann estimate of the per-pair change with the same cluster bootstrap interval;
- the answer: SAME direction (SMALLER or LARGER where the change's interval excludes zero and
  the change is at least one seed sd, SEED_SD: the effect holds but shrinks or grows), CHANGES (the directions differ and the change's interval
  excludes zero), or NOT_SHOWN (the directions differ, but the change is within its interval of
  zero: with a handful of clusters a direction can flip on noise).
Over every network in both tables: Kendall's tau of the two budgets' means with a permutation
p-value and a bootstrap interval over networks and seeds (bench.evidence.budgets), and the held-out
regret at the long budget of the short budget's best, cross-fitted over seeds: for each seed of the
long table, both the short budget's pick and the long budget's best are chosen on the other seeds
and scored on that one, so nothing is selected and scored on the same runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.evidence import decisions
from bench.evidence import whole_space as ws
from bench.evidence.budgets import kendall_agreement
from bench.evidence.working_effects import (RANDOM_SEED, cluster_interval, cluster_keys,
                                            hodges_lehmann, step_direction, working)
from bench.store.curves import curve_value
from bench.store.identity import config_key

__all__ = ["CHANGES", "CHANGE_METHOD", "LARGER", "NOT_SHOWN", "REGRET_METHOD", "SAME", "SMALLER",
           "BudgetChange",
           "budget_change", "network_key", "network_seeds", "pick_regret", "restricted",
           "step_changes", "transfer_regret"]

STEP = ["knob", "low_value", "high_value"]
SAME, CHANGES, NOT_SHOWN = "same", "changes", "differs, change not shown"
SMALLER, LARGER = "same, smaller", "same, larger"
# The seed sd the decision margin assumes (about 0.11 pp): a change of an effect that keeps its
# direction is named (SMALLER, LARGER) only from this size on, however narrow its interval.
SEED_SD = decisions.MARGIN / decisions.RETRAINING_RANGE
CHANGE_METHOD = ("the change of a step's effect from the short budget to the long one: "
                 "Hodges-Lehmann estimate of the per-pair change (long-budget difference minus "
                 "short-budget difference) over the pairs whose two networks work at both budgets, "
                 "with the same cluster bootstrap interval as the effects; an answer changes when "
                 "its direction (more accurate, less accurate, no clear difference) differs and "
                 "the change's interval excludes zero; an answer that keeps its direction is "
                 "named smaller or larger when the change's interval excludes zero and the "
                 f"change is at least one seed sd ({SEED_SD * 100:.2f} pp)")
REGRET_METHOD = ("held-out regret at the long budget of the short budget's best, cross-fitted over "
                 "the long table's seeds: for each seed, the short budget's best (its mean over "
                 "the other seeds) and the long budget's best (likewise) are both scored on that "
                 "seed alone; regret is the long best's score minus the pick's, in pp; the estimate "
                 "is the mean over the seeds, shown with its range; a pick made elsewhere (the "
                 "long table manifest's picks, such as the default search's) is scored the same "
                 "way; the long best is chosen among the measured networks only, so each regret "
                 "is a lower bound of the regret against the whole space")


@dataclass(frozen=True)
class BudgetChange:
    """The FAQ at two budgets over the same networks, and how far the short one ranks the long."""

    short: ws.WholeSpace  # the short table restricted to the long table's networks
    long: ws.WholeSpace
    steps: pd.DataFrame  # per step: both effects, directions, answer, change_pp and interval
    agreement: dict[str, float]  # kendall_agreement of the two budgets' means
    regret: pd.DataFrame  # per held-out seed: the pick, the long best, their scores, regret_pp
    picks: pd.DataFrame  # the same for each named pick (pick_regret), by its label
    short_networks: int  # networks the short table measured (the long one's and others)


def network_seeds(rows: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Per network (its config_key) its value (curve_value) at each seed, from one fidelity's
    rows."""
    kept, _ = ws.one_fidelity(rows)
    values: dict[str, dict[int, float]] = {}
    for row in kept:
        values.setdefault(config_key(row["config"]), {})[int(row["seed"])] = curve_value(row["curve"])
    return values


def restricted(rows: list[dict[str, Any]], networks: set[str]) -> list[dict[str, Any]]:
    """The rows of those networks only."""
    return [row for row in rows if config_key(row["config"]) in networks]


def network_key(key: str) -> str:
    """The network's key of a config key: the budgets train differently, so their configs
    (network and training knobs) differ while the networks are the same."""
    config = json.loads(key)
    config.pop("training", None)
    return config_key(config)


def step_changes(short: ws.WholeSpace, long: ws.WholeSpace,
                 rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Per step of the long table: both budgets' effects and directions, whether the answer
    changed (SAME, SMALLER, LARGER, CHANGES, NOT_SHOWN), and the change of the effect over the pairs working at both budgets (pp)."""
    rng = rng or np.random.default_rng(RANDOM_SEED)
    works, pairs = {}, {}
    for side, space in (("short", short), ("long", long)):
        networks = space.configs["config_key"].map(network_key)
        works[side] = dict(zip(networks, working(space.configs)))
        pairs[side] = space.pairs.assign(low_network=space.pairs["low_config"].map(network_key),
                                         high_network=space.pairs["high_config"].map(network_key))
    pair_key = STEP + ["low_network", "high_network"]
    both = pairs["long"].merge(pairs["short"][pair_key + ["difference"]], on=pair_key,
                               suffixes=("_long", "_short"))
    both = both[[works["short"][low] and works["short"][high]
                 and works["long"][low] and works["long"][high]
                 for low, high in zip(both["low_network"], both["high_network"])]]
    effects = long.working.effects.merge(short.working.effects, on=STEP, how="left",
                                         suffixes=("_long", "_short"))
    rows = []
    for _, effect in effects.iterrows():
        step = both[(both["knob"] == effect["knob"]) & (both["low_value"] == effect["low_value"])
                    & (both["high_value"] == effect["high_value"])]
        change = (step["difference_long"] - step["difference_short"]).to_numpy()
        low, high = cluster_interval(change, cluster_keys(step, effect["knob"]), rng)
        directions = {}
        for side in ("short", "long"):
            side_effect = {name: effect[f"{name}_{side}"] for name in
                           ("ci_low_pp", "ci_high_pp", "wins", "losses", "working_pairs")}
            measured = pd.notna(side_effect["working_pairs"]) and side_effect["working_pairs"] > 0
            directions[side] = step_direction(side_effect) if measured else 0
        rows.append({
            **{name: effect[name] for name in STEP},
            **{f"{name}_{side}": effect[f"{name}_{side}"] for side in ("short", "long")
               for name in ("effect_pp", "ci_low_pp", "ci_high_pp", "working_pairs")},
            "direction_short": directions["short"], "direction_long": directions["long"],
            "answer": _answer(directions["short"], directions["long"], low, high,
                              float(hodges_lehmann(change)) if len(change) else np.nan),
            "pairs_both": len(change),
            "change_pp": float(hodges_lehmann(change)) * 100 if len(change) else np.nan,
            "change_ci_low_pp": low * 100, "change_ci_high_pp": high * 100})
    return pd.DataFrame(rows)


def _answer(short: int, long: int, change_low: float, change_high: float,
            change: float) -> str:
    shown = change_low > 0 or change_high < 0
    if short == long:
        if short == 0 or not shown or not abs(change) >= SEED_SD:
            return SAME
        return SMALLER if (change_low > 0) != (short > 0) else LARGER
    return CHANGES if shown else NOT_SHOWN


def transfer_regret(short: dict[str, dict[int, float]],
                    long: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Per seed of the long table measured by every network in both: the short budget's best and
    the long budget's best chosen on the other seeds, both scored on this one (regret in pp).
    `whole_best` is the short budget's best over every network it measured, chosen alike: where
    it is the pick, the pick is also the best of the whole short table."""
    networks = sorted(set(short) & set(long))
    rows = []
    for held in _held_out_seeds(networks, long):
        row = _held_out_regret(_chosen(short, networks, held), networks, long, held)
        rows.append({**row, "whole_best": _chosen(short, sorted(short), held)})
    return pd.DataFrame(rows, columns=[*REGRET_COLUMNS, "whole_best"])


def pick_regret(picks: dict[str, str], long: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Per named pick (label -> network key, chosen elsewhere, e.g. by a one-epoch search) and per
    seed of the long table: the long budget's best chosen on the other seeds, both scored on this
    one. A pick the long table did not measure at every seed gets no rows."""
    networks = sorted(long)
    rows = []
    for label, pick in picks.items():
        if pick not in long:
            continue
        for held in _held_out_seeds(networks, long):
            if held in long[pick]:
                rows.append({"label": label, **_held_out_regret(pick, networks, long, held)})
    return pd.DataFrame(rows, columns=["label", *REGRET_COLUMNS])


REGRET_COLUMNS = ["held_out_seed", "pick", "long_best", "pick_score", "long_best_score",
                  "regret_pp"]


def _held_out_seeds(networks: list[str], long: dict[str, dict[int, float]]) -> list[int]:
    """The long table's seeds every one of `networks` has."""
    return sorted(set.intersection(*(set(long[n]) for n in networks))) if networks else []


def _chosen(table: dict[str, dict[int, float]], networks: list[str], held: int) -> str:
    """The network with the highest mean over the seeds but `held`."""
    means = {n: np.mean([v for s, v in table[n].items() if s != held] or [np.nan])
             for n in networks}
    return max((n for n in networks if not np.isnan(means[n])), key=means.get)


def _held_out_regret(pick: str, networks: list[str], long: dict[str, dict[int, float]],
                     held: int) -> dict[str, Any]:
    """The pick scored on the held-out seed against the long best chosen on the other seeds."""
    best = _chosen(long, networks, held)
    return {"held_out_seed": held, "pick": pick, "long_best": best,
            "pick_score": long[pick][held], "long_best_score": long[best][held],
            "regret_pp": (long[best][held] - long[pick][held]) * 100}


def budget_change(short_rows: list[dict[str, Any]], long_rows: list[dict[str, Any]],
                  space: str = "faq", long: ws.WholeSpace | None = None,
                  picks: dict[str, dict[str, Any]] | None = None) -> BudgetChange:
    """The FAQ at both budgets over the long table's networks, and the short budget's ranking of
    them (tau and held-out regret, also of each named pick: label -> network); `long`, when the
    caller has it, is the long table's whole_space, not computed again."""
    long_seeds = network_seeds(long_rows)
    networks = set(long_seeds)
    short_kept = restricted(short_rows, networks)
    short_all = network_seeds(short_rows)
    short_seeds = {n: short_all[n] for n in networks if n in short_all}
    long = long or ws.whole_space(long_rows, space=space)
    short = ws.whole_space(short_kept, space=space)
    as_arrays = {name: {n: np.array(list(v.values())) for n, v in table.items()}
                 for name, table in (("short", short_seeds), ("long", long_seeds))}
    return BudgetChange(short=short, long=long, steps=step_changes(short, long),
                        agreement=kendall_agreement(as_arrays["short"], as_arrays["long"]),
                        regret=transfer_regret(short_all, long_seeds),
                        picks=pick_regret({label: config_key(network) for label, network
                                           in (picks or {}).items()}, long_seeds),
                        short_networks=len(short_all))

