"""Size, FLOPs and speed of a model."""

from mnist_cnn.metrics import count_parameters, flops_per_image, measure_model, model_size
from mnist_cnn.model import CNNConfig, build_model


def test_tutorial_network_size_and_flops():
    model = build_model(CNNConfig())
    assert count_parameters(model) == 421_642
    # 2 FLOPs per multiply-add: conv1 28*28*32*9, conv2 14*14*64*32*9, fc 3136*128 + 128*10
    expected = 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10)
    assert flops_per_image(model) == expected
    assert flops_per_image(model, training=True) > 2 * expected


def test_bigger_kernels_cost_more_flops():
    assert flops_per_image(build_model(CNNConfig(kernel_size=5))) > flops_per_image(build_model(CNNConfig()))


def test_measure_model_reports_positive_speeds():
    metrics = measure_model(build_model(CNNConfig(channels=(8, 16), fc_width=32)), repeats=5)
    assert metrics.parameters == count_parameters(build_model(CNNConfig(channels=(8, 16), fc_width=32)))
    assert metrics.latency_ms_batch1 > 0
    assert metrics.inference_images_per_second > 0
    # a median over the calls, with their quartiles: a spread, and how many calls it is of
    assert metrics.latency_calls == 5
    assert 0 < metrics.latency_ms_batch1_q1 <= metrics.latency_ms_batch1 <= metrics.latency_ms_batch1_q3
    assert metrics.latency_text().startswith(f"latency {metrics.latency_ms_batch1:.2f} ms (median "
                                             "of 5 calls, quartiles ")


def test_model_size_is_what_measure_model_reports_of_size():
    """A pruned trial's size (model_size) and a timed one's (measure_model) are one count."""
    model = build_model(CNNConfig(channels=(8, 16), fc_width=32))
    metrics = measure_model(model, repeats=3)
    assert model_size(model) == {"parameters": metrics.parameters,
                                 "flops_per_image": metrics.flops_per_image}
    assert model_size(model)["flops_per_image"] == flops_per_image(model) > 0
