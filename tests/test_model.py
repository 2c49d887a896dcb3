"""CNNConfig is the one place a network's shape is decided; bad shapes fail before weights."""

import pytest
import torch

from mnist_cnn.metrics import count_parameters
from mnist_cnn.model import CNNConfig, InvalidConfig, build_model, feature_map_sizes


def test_defaults_are_the_tutorial_network():
    model = build_model(CNNConfig())
    assert count_parameters(model) == 421_642
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert (linears[0].in_features, linears[0].out_features) == (3136, 128)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    "config, sizes",
    [
        (CNNConfig(kernel_size=5), [14, 7]),
        (CNNConfig(kernel_size=5, padding="valid"), [12, 4]),
        (CNNConfig(stride=2), [7, 2]),
        (CNNConfig(pool_size=3), [9, 3]),
        (CNNConfig(pool_size=3, pool_stride=1), [26, 24]),
        (CNNConfig(pool_size=1), [28, 28]),
        (CNNConfig(conv_blocks=3, channels=(8, 16, 32)), [14, 7, 3]),
    ],
)
def test_feature_map_sizes_match_the_built_network(config, sizes):
    assert feature_map_sizes(config) == sizes
    model = build_model(config)
    features = model[:-4] if config.dropout == 0 else model[:-5]  # up to Flatten
    out = features(torch.zeros(1, 1, 28, 28))
    assert out.shape[-1] == sizes[-1]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(
    "config, message",
    [
        (CNNConfig(stride=2, pool_size=3), "block 2"),
        (CNNConfig(kernel_size=7, stride=3, pool_size=3, padding="valid"), "block 2"),
        (CNNConfig(conv_blocks=3, channels=(8, 8, 8), kernel_size=9, padding="valid"), "block 3"),
        (CNNConfig(kernel_size=29, padding="valid"), "block 1"),
    ],
)
def test_collapsing_configs_raise_before_any_weight(config, message, monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("built weights"))
    with pytest.raises(InvalidConfig, match=message):
        build_model(config)


@pytest.mark.parametrize(
    "config, field",
    [
        (CNNConfig(channels=(32,)), "channels"),
        (CNNConfig(kernel_size=0), "kernel_size"),
        (CNNConfig(pool_type="median"), "pool_type"),
        (CNNConfig(padding="full"), "padding"),
        (CNNConfig(dropout=1.0), "dropout"),
    ],
)
def test_bad_fields_are_named(config, field):
    with pytest.raises(InvalidConfig, match=field):
        build_model(config)


def test_max_pool_before_relu_is_the_same_function():
    torch.manual_seed(0)
    model = build_model(CNNConfig())
    x = torch.randn(4, 1, 28, 28)
    conv1, pool1, relu1 = model[0], model[1], model[2]
    expected = torch.nn.functional.max_pool2d(torch.relu(conv1(x)), 2)
    assert torch.allclose(relu1(pool1(conv1(x))), expected)
