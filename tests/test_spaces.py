"""bench.search.spaces: shipped spaces load, bad files are rejected in one line, trials sample configs."""

from __future__ import annotations

import optuna
import pytest

from bench.search.spaces import SpaceError, TrialPlan, load_space, parse_space, shipped_space_names

ONE_EPOCH = TrialPlan(epochs=1, seed=0, evaluations_per_epoch=1)
from mnist_cnn.model import CNNConfig, InvalidConfig

GOOD = """
[params.kernel_size]
type = "categorical"
choices = [3, 5]

[params.learning_rate]
type = "float"
low = 0.001
high = 0.01
log = true

[fixed]
channels = [4, 8]
batch_size = 32
"""


def test_shipped_spaces_load_and_grid():
    assert {"faq", "training", "full"} <= set(shipped_space_names())
    faq = load_space("faq")
    assert [p.name for p in faq.params] == ["kernel_size", "stride", "pool_size", "pool_stride",
                                            "fc_width"]
    assert faq.grid()["pool_stride"] == [1, 2, 3] and faq.max_mflops_per_image == 46
    assert faq.grid()["kernel_size"] == [3, 5, 7]
    assert faq.grid()["fc_width"] == [32, 64, 128, 256, 512]
    assert {p.name for p in load_space("full").params} == (
        {p.name for p in faq.params} | {p.name for p in load_space("training").params}
    )


def test_flop_budget_makes_costly_networks_invalid_before_training():
    faq = load_space("faq")
    cheap, _ = faq.build({"kernel_size": 3, "stride": 2, "pool_size": 1, "pool_stride": 1,
                          "fc_width": 128}, ONE_EPOCH)
    faq.check(cheap)  # no pooling after a stride-2 conv: 3.5 MFLOP, within the budget
    costly, _ = faq.build({"kernel_size": 7, "stride": 1, "pool_size": 1, "pool_stride": 1,
                           "fc_width": 128}, ONE_EPOCH)
    with pytest.raises(InvalidConfig, match="over the space's budget of 46"):
        faq.check(costly)
    with pytest.raises(SpaceError, match="max_mflops_per_image: must be a positive number"):
        parse_space("max_mflops_per_image = -1\n" + GOOD, "bad", "bad.toml")


def test_space_from_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    space = load_space(path)
    assert space.name == "mine" and space.fixed["channels"] == (4, 8)


def test_sample_builds_config_and_settings():
    space = parse_space(GOOD, name="good", source="good.toml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    config, settings = space.sample(trial, TrialPlan(epochs=3, seed=7, evaluations_per_epoch=2))
    assert config.channels == (4, 8) and config.conv_blocks == 2
    assert config.kernel_size in (3, 5) and config.stride == CNNConfig.stride
    assert 0.001 <= settings.learning_rate <= 0.01
    assert (settings.epochs, settings.seed, settings.evaluations_per_epoch, settings.batch_size) == (3, 7, 2, 32)
    assert trial.params["kernel_size"] == config.kernel_size


@pytest.mark.parametrize("text, key", [
    ('bogus = 1\n[params.stride]\ntype = "categorical"\nchoices = [1]', "bogus"),
    ('[params.kernel]\ntype = "categorical"\nchoices = [3]', "params.kernel"),
    ('[params.stride]\ntype = "categorical"\nchoices = [1]\nlow = 1', "params.stride.low"),
    ('[params.stride]\ntype = "integer"\nlow = 1\nhigh = 2', "params.stride.type"),
    ('[params.fc_width]\ntype = "int"\nlow = 64\nhigh = 64', "params.fc_width"),
    ('[params.fc_width]\ntype = "int"\nlow = 64.5\nhigh = 128', "params.fc_width.low"),
    ('[params.fc_width]\ntype = "float"\nlow = 1\nhigh = 2', "params.fc_width.type"),
    ('[params.stride]\ntype = "categorical"\nchoices = []', "params.stride.choices"),
    ('[params.stride]\ntype = "categorical"\nchoices = ["2"]', "params.stride.choices"),
    ('[params.learning_rate]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nlog = true', "params.learning_rate.low"),
    ('[params.epochs]\ntype = "int"\nlow = 1\nhigh = 3', "params.epochs"),
    ('[params.stride]\ntype = "categorical"\nchoices = [1, 2]\n[fixed]\nstride = 1', "stride"),
    ('[params.stride]\ntype = "categorical"\nchoices = [1]\n[fixed]\nchannels = [32, "x"]', "fixed.channels"),
    ('[params.stride]\ntype = "categorical"\nchoices = [1]\n[fixed]\nlr_schedule = "step"', "fixed.lr_schedule"),
    ('[params.dropout]\ntype = "float"\nlow = 0.0\nhigh = 1.5', "params.dropout"),
    ('[params.stride]\ntype = "categorical"\nchoices = [1]\n[fixed]\nbatch_size = 0', "fixed.batch_size"),
    ('[fixed]\nbatch_size = 64', "params"),
    ('[params.stride\n', "TOML"),
])
def test_bad_space_is_one_line_naming_file_and_key(text, key):
    with pytest.raises(SpaceError) as error:
        parse_space(text, name="bad", source="bad.toml")
    message = str(error.value)
    assert message.startswith("bad.toml: ") and key in message and "\n" not in message


def test_unknown_space_name_lists_shipped_ones():
    with pytest.raises(SpaceError, match="faq"):
        load_space("nonesuch")


def test_grid_needs_discrete_values():
    space = parse_space('[params.learning_rate]\ntype = "float"\nlow = 0.001\nhigh = 0.01\n',
                        name="lr", source="lr.toml")
    with pytest.raises(SpaceError, match="params.learning_rate.*grid"):
        space.grid()
    stepped = parse_space('[params.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\nstep = 0.25\n',
                          name="d", source="d.toml")
    assert stepped.grid() == {"dropout": [0.0, 0.25, 0.5]}


POINTS = """
points = [{kernel_size = 3, fc_width = 64}, {kernel_size = 5, fc_width = 32}]

[params.kernel_size]
type = "categorical"
choices = [3, 5]

[params.fc_width]
type = "categorical"
choices = [32, 64]

[fixed]
channels = [4, 8]
"""


def test_designed_points_are_the_only_configs_of_the_grid_that_train():
    from bench.benchmark.grid import valid_grid
    from bench.search.settings import SearchSettings

    space = parse_space(POINTS, name="designed", source="designed.toml")
    assert len(space.grid_points()) == 4  # GridSampler still walks the product
    space.check(CNNConfig(channels=(4, 8), kernel_size=5, fc_width=32))
    with pytest.raises(InvalidConfig, match="not one of the space's 2 designed points"):
        space.check(CNNConfig(channels=(4, 8), kernel_size=5, fc_width=64))
    assert space.describe()["points"] == [{"kernel_size": 3, "fc_width": 64},
                                          {"kernel_size": 5, "fc_width": 32}]
    assert len(valid_grid(space, SearchSettings())) == 2


@pytest.mark.parametrize("points, message", [
    ("[{kernel_size = 3}]", r"points\[1\]: must give exactly kernel_size, fc_width"),
    ("[{kernel_size = 7, fc_width = 64}]", r"points\[1\].kernel_size: 7 is not one of"),
    ("[{kernel_size = 3, fc_width = 64}, {fc_width = 64, kernel_size = 3}]", r"listed twice"),
    ("[]", "non-empty list"),
])
def test_bad_points_are_one_line(points, message):
    text = POINTS.replace(POINTS.splitlines()[1], f"points = {points}")
    with pytest.raises(SpaceError, match=message):
        parse_space(text, name="designed", source="designed.toml")


def test_points_search_network_knobs_only():
    text = POINTS.replace("[params.fc_width]\ntype = \"categorical\"\nchoices = [32, 64]",
                          "[params.fc_width]\ntype = \"categorical\"\nchoices = [32, 64]\n\n"
                          "[params.batch_size]\ntype = \"categorical\"\nchoices = [32]")
    with pytest.raises(SpaceError, match="batch_size is a training setting"):
        parse_space(text, name="designed", source="designed.toml")


def test_the_ten_epoch_slice_covers_every_knob_step_at_three_bases():
    """search_spaces/faq-tutorial.toml: the tutorial's network, each neighbouring step of each knob
    as a matched pair (equal but for that knob) at 3+ bases, and the FC axis at 3+ bases."""
    from bench.store.identity import KNOBS

    space = load_space("faq-tutorial")
    faq = load_space("faq")
    for point in space.points:
        faq.check(CNNConfig(**point))  # valid in the faq space
    assert len(space.points) >= 40
    assert {"kernel_size": 3, "stride": 1, "pool_size": 2, "pool_stride": 2,
            "fc_width": 128} in space.points
    assert space.fixed["learning_rate"] == 0.001 and space.fixed["lr_schedule"] == "constant"
    keyed = {tuple(point[k] for k in KNOBS) for point in space.points}
    grid = faq.grid()
    for index, knob in enumerate(KNOBS):
        values = grid[knob]
        for low, high in zip(values, values[1:]):
            bases = {key[:index] + key[index + 1:] for key in keyed if key[index] == low
                     and key[:index] + (high,) + key[index + 1:] in keyed}
            assert len(bases) >= 3, (knob, low, high, bases)
    fc = KNOBS.index("fc_width")
    axis = {key[:fc] for key in keyed
            if all(key[:fc] + (width,) in keyed for width in grid["fc_width"])}
    assert len(axis) >= 3
