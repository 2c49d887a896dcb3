"""Search spaces as data: read a TOML space file, check it, and sample a trial's config from it.

A space file names each searched parameter (a field of `CNNConfig` or `TrainSettings`) with its
type and its choices or range, and fixes the other fields:

    [params.kernel_size]
    type = "categorical"
    choices = [3, 5, 7]

    [params.fc_width]
    type = "int"
    low = 32
    high = 512
    log = true
    grid = [32, 64, 128, 256, 512]   # the points `--sampler grid` visits (optional)

    [fixed]
    channels = [32, 64]
    learning_rate = 0.003

A top-level `max_mflops_per_image` caps the forward cost of the networks a space trains: those
over it end like collapsed ones, as invalid configs, before any training. A top-level `points`,
a list of inline tables that each give every searched network knob a value, makes a designed
subset of the grid: every other point ends the same way, so `grid` trains just the listed ones.

`epochs`, `seed`, `evaluations_per_epoch`, `interim_validation_size` and `precision` belong to the
search (its `TrialPlan`), not the space.
"""

from __future__ import annotations

import functools
import itertools
import sys
import typing
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import optuna

from mnist_cnn.metrics import flops_per_image
from mnist_cnn.model import (
    PADDING_MODES, POOL_TYPES, CNNConfig, InvalidConfig, build_model, validate,
)
from mnist_cnn.train import LR_SCHEDULES, TrainSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PARAM_TYPES = ("int", "float", "categorical")
PARAM_KEYS = ("type", "choices", "low", "high", "log", "step", "grid")
TOP_LEVEL_KEYS = ("description", "max_mflops_per_image", "points", "params", "fixed")
FIXED_ONLY = ("channels", "conv_blocks")  # tuples and their length cannot be sampled as one value
MAX_GRID_POINTS = 10_000
ENUMS = {"padding": PADDING_MODES, "pool_type": POOL_TYPES, "lr_schedule": LR_SCHEDULES}


@dataclass(frozen=True)
class TrialPlan:
    """What the search, not the space, decides about every trial's training."""

    epochs: int
    seed: int
    evaluations_per_epoch: int
    interim_validation_size: int | None = None
    precision: str | None = None


SEARCH_OWNED = tuple(f.name for f in fields(TrialPlan))  # set by the search's own options


class SpaceError(ValueError):
    """A space file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Param:
    """One searched parameter: `choices` for categoricals, `low`..`high` for ranges."""

    name: str
    type: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    grid: tuple | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_points(self, source: str) -> list:
        """The values `--sampler grid` visits; SpaceError where a range has no finite grid."""
        if self.grid is not None:
            return list(self.grid)
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.type == "float" and self.step is not None:
            count = int(round((self.high - self.low) / self.step)) + 1
            return [self.low + i * self.step for i in range(count)]
        raise SpaceError(
            f"{source}: params.{self.name}: a {'log ' if self.log else ''}{self.type} range has no "
            f"grid; add `grid = [...]`{' or `step`' if self.type == 'float' else ''} to search it "
            f"with --sampler grid"
        )


@dataclass(frozen=True)
class SearchSpace:
    name: str
    source: str
    description: str
    params: tuple[Param, ...]
    fixed: dict[str, Any]
    # Networks over this forward cost are not trained: the space's FLOP limit.
    max_mflops_per_image: float | None = None
    # A designed subset: the only param values (network knobs) that are trained; None: all.
    points: tuple[dict[str, Any], ...] | None = None

    def check(self, config: CNNConfig) -> None:
        """Raise InvalidConfig unless `config` makes a network within the space's FLOP limit
        and, in a space of designed points, is one of them."""
        validate(config)
        if self.points is not None and not any(
                all(getattr(config, name) == value for name, value in point.items())
                for point in self.points):
            raise InvalidConfig(f"not one of the space's {len(self.points)} designed points")
        if self.max_mflops_per_image is not None:
            mflops = forward_flops(config) / 1e6
            if mflops > self.max_mflops_per_image:
                # the message keeps its words ("budget": this limit), as stored trials have it
                raise InvalidConfig(f"{mflops:.1f} MFLOP per image is over the space's budget of "
                                    f"{self.max_mflops_per_image:g} (max_mflops_per_image)")

    def designed(self, params: dict[str, Any]) -> bool:
        """Whether sampled param values are one of the space's designed points (any values are,
        in a space without them)."""
        return self.points is None or dict(params) in self.points

    def sample(self, trial: optuna.Trial, plan: TrialPlan) -> tuple[CNNConfig, TrainSettings]:
        """The trial's network and training settings: sampled params over the fixed values."""
        return self.build({param.name: param.suggest(trial) for param in self.params}, plan)

    def grid(self) -> dict[str, list]:
        """The full grid for optuna's GridSampler."""
        grid = {param.name: param.grid_points(self.source) for param in self.params}
        size = 1
        for points in grid.values():
            size *= len(points)
        if size > MAX_GRID_POINTS:
            raise SpaceError(f"{self.source}: the grid has {size:,} points (more than "
                             f"{MAX_GRID_POINTS:,}); give the ranges a coarser `grid` or `step`")
        return grid

    def grid_points(self) -> list[dict[str, Any]]:
        """Every point of the grid, as the params `sample` would have drawn."""
        grid = self.grid()
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]

    def build(self, params: dict[str, Any], plan: TrialPlan) -> tuple[CNNConfig, TrainSettings]:
        """The network and training settings of given param values over the fixed values."""
        return _build({**self.fixed, **params}, plan)

    def describe(self) -> dict[str, Any]:
        """JSON-ready content, stored with the study so a resumed study can be checked against it."""
        described = {
            "name": self.name,
            "params": {p.name: {k: v for k, v in vars(p).items() if k != "name" and v is not None}
                       for p in self.params},
            "fixed": {k: list(v) if isinstance(v, tuple) else v for k, v in self.fixed.items()},
        }
        if self.max_mflops_per_image is not None:  # absent before limits: old studies still match
            described["max_mflops_per_image"] = self.max_mflops_per_image
        if self.points is not None:
            described["points"] = [dict(point) for point in self.points]
        return described


@functools.lru_cache(maxsize=4096)
def forward_flops(config: CNNConfig) -> int:
    """FLOPs of one image's forward pass, counted once per config (a CPU model, no training)."""
    return flops_per_image(build_model(config))


def _field_types() -> dict[str, Any]:
    types = {}
    for cls in (CNNConfig, TrainSettings):
        hints = typing.get_type_hints(cls)
        types.update({f.name: hints[f.name] for f in fields(cls)})
    return types


FIELD_TYPES = _field_types()


def shipped_space_names() -> list[str]:
    folder = resources.files("search_spaces")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (`faq`, `training`, `full`) or a space file by path."""
    text_name = str(name_or_path)
    if text_name in shipped_space_names():
        source = f"search_spaces/{text_name}.toml"
        text = (resources.files("search_spaces") / f"{text_name}.toml").read_text()
        return parse_space(text, name=text_name, source=source)
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        raise SpaceError(f"unknown space {text_name!r}: use one of {shipped_space_names()} "
                         f"or the path of a .toml file")
    try:
        text = path.read_text()
    except OSError as error:
        raise SpaceError(f"cannot read space file {path}: {error.strerror}") from None
    return parse_space(text, name=path.stem, source=str(path))


def parse_space(text: str, name: str, source: str) -> SearchSpace:
    """Parse and check a space file's text; every problem is a one-line SpaceError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpaceError(f"{source}: not valid TOML: {error}") from None
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise SpaceError(f"{source}: unknown key {key!r} (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpaceError(f"{source}: description must be a string")
    raw_params = _table(data, "params", source)
    raw_fixed = _table(data, "fixed", source)
    if not raw_params:
        raise SpaceError(f"{source}: params: a space needs at least one searched parameter")
    params = tuple(_parse_param(key, spec, source) for key, spec in raw_params.items())
    fixed = {key: _parse_fixed(key, value, source) for key, value in raw_fixed.items()}
    for param in params:
        if param.name in fixed:
            raise SpaceError(f"{source}: {param.name} is both searched (params) and fixed")
    flop_limit = data.get("max_mflops_per_image")
    if flop_limit is not None and (not _is_number(flop_limit) or flop_limit <= 0):
        raise SpaceError(f"{source}: max_mflops_per_image: must be a positive number, "
                         f"got {flop_limit!r}")
    _check_builds(params, fixed, source)
    points = _parse_points(data["points"], params, source) if "points" in data else None
    return SearchSpace(name, source, description, params, fixed,
                       float(flop_limit) if flop_limit is not None else None, points)


def _parse_points(raw: Any, params: tuple[Param, ...], source: str) -> tuple[dict[str, Any], ...]:
    """The designed points: each names every searched param, a network knob, at a grid value."""
    config_names = {f.name for f in fields(CNNConfig)}
    for param in params:
        if param.name not in config_names:
            raise SpaceError(f"{source}: points: {param.name} is a training setting; a space of "
                             "designed points searches network knobs only")
    if not isinstance(raw, list) or not raw:
        raise SpaceError(f"{source}: points: must be a non-empty list of inline tables")
    grid = {param.name: param.grid_points(source) for param in params}
    points = []
    for number, point in enumerate(raw, start=1):
        if not isinstance(point, dict) or set(point) != set(grid):
            raise SpaceError(f"{source}: points[{number}]: must give exactly "
                             f"{', '.join(grid)}, got {point!r}")
        for name, value in point.items():
            if value not in grid[name]:
                raise SpaceError(f"{source}: points[{number}].{name}: {value!r} is not one of "
                                 f"the grid's values {grid[name]}")
        if point in points:
            raise SpaceError(f"{source}: points[{number}]: listed twice: {point!r}")
        points.append({name: point[name] for name in grid})
    return tuple(points)


def _table(data: dict, key: str, source: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpaceError(f"{source}: {key} must be a table")
    return value


def _check_name(key: str, where: str, source: str) -> None:
    if key in SEARCH_OWNED:
        raise SpaceError(f"{source}: {where}.{key}: set by the search's own options, not the space")
    if key not in FIELD_TYPES:
        raise SpaceError(f"{source}: {where}.{key}: unknown parameter (not a field of CNNConfig "
                         f"or TrainSettings)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_fits(field_type: Any, value: Any) -> bool:
    """Whether a TOML value can fill a field of `field_type`."""
    if field_type is bool:
        return isinstance(value, bool)
    if field_type is int or field_type == (int | None):
        return isinstance(value, int) and not isinstance(value, bool)
    if field_type is float:
        return _is_number(value)
    if field_type is str:
        return isinstance(value, str)
    return False


def _type_name(field_type: Any) -> str:
    return getattr(field_type, "__name__", str(field_type))


def _parse_param(key: str, spec: Any, source: str) -> Param:
    where = f"{source}: params.{key}"
    _check_name(key, "params", source)
    if key in FIXED_ONLY:
        raise SpaceError(f"{where}: can only be fixed, not searched")
    if not isinstance(spec, dict):
        raise SpaceError(f"{where}: must be a table with type and choices or low/high")
    for name in spec:
        if name not in PARAM_KEYS:
            raise SpaceError(f"{where}: unknown key {name!r} (allowed: {', '.join(PARAM_KEYS)})")
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise SpaceError(f"{where}.type: must be one of {', '.join(PARAM_TYPES)}, got {kind!r}")
    field_type = FIELD_TYPES[key]
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}.log: must be true or false, got {log!r}")
    if kind == "categorical":
        return _parse_categorical(key, spec, field_type, where)
    for name in ("choices",):
        if name in spec:
            raise SpaceError(f"{where}.{name}: only categorical parameters have choices")
    if kind == "int" and not (field_type is int or field_type == (int | None)):
        raise SpaceError(f"{where}.type: {key} is a {_type_name(field_type)} field, not int")
    if kind == "float" and field_type is not float:
        raise SpaceError(f"{where}.type: {key} is a {_type_name(field_type)} field, not float")
    bounds = {}
    for name in ("low", "high", "step"):
        value = spec.get(name)
        if value is None and name != "step":
            raise SpaceError(f"{where}.{name}: missing (a {kind} range needs low and high)")
        if value is not None and not (isinstance(value, int) if kind == "int" else _is_number(value)) \
                or isinstance(value, bool):
            raise SpaceError(f"{where}.{name}: must be {'an integer' if kind == 'int' else 'a number'}, "
                             f"got {value!r}")
        bounds[name] = value
    low, high, step = bounds["low"], bounds["high"], bounds["step"]
    if not low < high:
        raise SpaceError(f"{where}: empty range: low {low} must be less than high {high}")
    if log and low <= 0:
        raise SpaceError(f"{where}.low: a log range needs low > 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise SpaceError(f"{where}.step: must be positive and not combined with log, got {step}")
    grid = spec.get("grid")
    if grid is not None:
        if not isinstance(grid, list) or not grid or not all(
            _value_fits(field_type, v) and low <= v <= high for v in grid
        ):
            raise SpaceError(f"{where}.grid: must be a non-empty list of {kind} values within "
                             f"[{low}, {high}], got {grid!r}")
        grid = tuple(grid)
    if kind == "float":
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
    return Param(key, kind, low=low, high=high, log=log, step=step, grid=grid)


def _parse_categorical(key: str, spec: dict, field_type: Any, where: str) -> Param:
    for name in ("low", "high", "step", "log", "grid"):
        if name in spec:
            raise SpaceError(f"{where}.{name}: a categorical parameter has choices, not {name}")
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{where}.choices: must be a non-empty list, got {choices!r}")
    for value in choices:
        if not _value_fits(field_type, value):
            raise SpaceError(f"{where}.choices: {value!r} is not a valid {_type_name(field_type)} "
                             f"for {key}")
    if len(set(choices)) != len(choices):
        raise SpaceError(f"{where}.choices: duplicate values in {choices!r}")
    if field_type is float:
        choices = [float(v) for v in choices]
    return Param(key, "categorical", choices=tuple(choices))


def _parse_fixed(key: str, value: Any, source: str) -> Any:
    where = f"{source}: fixed.{key}"
    _check_name(key, "fixed", source)
    if key == "channels":
        if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise SpaceError(f"{where}: must be a non-empty list of positive integers, got {value!r}")
        return tuple(value)
    field_type = FIELD_TYPES[key]
    if not _value_fits(field_type, value):
        raise SpaceError(f"{where}: must be a {_type_name(field_type)}, got {value!r}")
    return float(value) if field_type is float else value


def _build(values: dict[str, Any], plan: TrialPlan) -> tuple[CNNConfig, TrainSettings]:
    config_names = {f.name for f in fields(CNNConfig)}
    config_values = {k: v for k, v in values.items() if k in config_names}
    if "channels" in config_values and "conv_blocks" not in config_values:
        config_values["conv_blocks"] = len(config_values["channels"])
    train_values = {k: v for k, v in values.items() if k not in config_names}
    settings = TrainSettings(**asdict(plan), **train_values)
    return CNNConfig(**config_values), settings


def _check_builds(params: tuple[Param, ...], fixed: dict[str, Any], source: str) -> None:
    """Every fixed value and every choice or bound must make valid settings on its own;
    a network that collapses is left to each trial, which records it as invalid."""
    channels = fixed.get("channels", CNNConfig.channels)
    if "conv_blocks" in fixed and fixed["conv_blocks"] != len(channels):
        raise SpaceError(f"{source}: fixed.conv_blocks: {fixed['conv_blocks']} does not match "
                         f"channels {list(channels)}")
    candidates = [("fixed", key, value) for key, value in fixed.items()]
    for param in params:
        values = param.choices if param.type == "categorical" else (param.low, param.high)
        candidates += [("params", param.name, value) for value in values]
    for where, key, value in candidates:
        allowed = ENUMS.get(key)
        if allowed is not None and value not in allowed:
            raise SpaceError(f"{source}: {where}.{key}: {value!r} is not one of {allowed}")
        if key == "dropout" and not 0.0 <= value < 1.0:
            raise SpaceError(f"{source}: {where}.dropout: must be in [0, 1), got {value}")
        if FIELD_TYPES[key] in (int, int | None) and key != "channels" and value < 1:
            raise SpaceError(f"{source}: {where}.{key}: must be at least 1, got {value}")
        try:
            _build({**fixed, key: value}, TrialPlan(epochs=1, seed=0, evaluations_per_epoch=1))
        except (ValueError, TypeError) as error:
            raise SpaceError(f"{source}: {where}.{key}: {error}") from None
