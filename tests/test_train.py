"""Training learns, is repeatable, reports every evaluation, stops and resumes."""

import importlib

import pytest
import torch

from mnist_cnn.data import load_train_validation
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import (EpochRecord, StopTraining, TrainSettings, best_validation_accuracy,
                             evaluate, resolve_precision, train)

SMALL = CNNConfig(channels=(8, 16), fc_width=32)


@pytest.fixture(scope="module")
def split(tiny_mnist):
    return load_train_validation(tiny_mnist, validation_size=200, seed=0)


def test_short_run_beats_chance_clearly(split):
    result = train(SMALL, TrainSettings(epochs=2, batch_size=32), split)
    assert result.history[-1].validation_accuracy > 0.8
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert evaluate(result.model, split.validation, torch.device("cpu")).accuracy == pytest.approx(
        result.history[-1].validation_accuracy
    )


def test_same_seed_same_numbers_other_seed_other_numbers(split):
    settings = TrainSettings(epochs=1, batch_size=32, seed=7, evaluations_per_epoch=2)
    a = train(SMALL, settings, split).history
    b = train(SMALL, settings, split).history
    c = train(SMALL, TrainSettings(epochs=1, batch_size=32, seed=8, evaluations_per_epoch=2), split).history
    assert [(r.train_loss, r.validation_loss) for r in a] == [(r.train_loss, r.validation_loss) for r in b]
    assert [r.train_loss for r in a] != [r.train_loss for r in c]


def test_callback_sees_every_evaluation_with_fractional_epochs(split):
    seen = []
    result = train(SMALL, TrainSettings(epochs=2, batch_size=64, evaluations_per_epoch=3), split,
                   on_evaluation=lambda record, model: seen.append(record.epoch))
    assert seen == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert [r.epoch for r in result.history] == seen
    assert all(r.images_per_second > 0 and r.seconds > 0 for r in result.history)


def test_interim_evaluations_score_a_subset_and_change_nothing_learned(split):
    """Evaluations before an epoch's end score the split's first 50 images; the last scores all
    200. Training is bitwise the same either way, and only whole-split scores make the value."""
    plain = TrainSettings(epochs=2, batch_size=32, evaluations_per_epoch=3)
    subset = TrainSettings(epochs=2, batch_size=32, evaluations_per_epoch=3,
                           interim_validation_size=50)
    full, interim = train(SMALL, plain, split), train(SMALL, subset, split)
    assert [r.interim for r in interim.history] == [True, True, False] * 2
    assert not any(r.interim for r in full.history)
    assert [r.train_loss for r in interim.history] == [r.train_loss for r in full.history]
    for a, b in zip(full.history, interim.history):
        if not b.interim:
            assert (a.validation_accuracy, a.validation_loss) == (b.validation_accuracy, b.validation_loss)
    # an interim score is the subset's: a multiple of 1/50
    assert all(round(r.validation_accuracy * 50, 4).is_integer()
               for r in interim.history if r.interim)
    assert interim.best_validation_accuracy == max(interim.history[2].validation_accuracy,
                                                   interim.history[5].validation_accuracy)
    subset_first = TrainSettings(epochs=1, batch_size=32, evaluations_per_epoch=2,
                                 interim_validation_size=50, seed=3)
    first = []
    train(SMALL, subset_first, split, on_evaluation=lambda record, model: first.append(
        evaluate(model, split.validation.subset(torch.arange(50)), torch.device("cpu")).accuracy))
    assert first[0] == train(SMALL, subset_first, split).history[0].validation_accuracy


def test_bf16_precision_trains_and_scores_in_bf16_and_the_cpu_default_is_fp32(split):
    from dataclasses import replace

    cpu = torch.device("cpu")
    default = TrainSettings(epochs=2, batch_size=32)
    bf16 = train(SMALL, replace(default, precision="bf16"), split)
    assert bf16.history[-1].validation_accuracy > 0.8
    fp32 = train(SMALL, default, split)
    assert [r.train_loss for r in bf16.history] != [r.train_loss for r in fp32.history]
    named = train(SMALL, replace(default, precision="fp32"), split)
    assert [r.train_loss for r in named.history] == [r.train_loss for r in fp32.history]
    # its validation scores were taken in bf16 too: evaluating so reproduces them, fp32 does not
    last = bf16.history[-1]
    assert evaluate(bf16.model, split.validation, cpu, precision="bf16").loss == pytest.approx(
        last.validation_loss, rel=1e-6)
    assert evaluate(bf16.model, split.validation, cpu).loss != pytest.approx(
        last.validation_loss, rel=1e-6)
    assert resolve_precision(cpu) == "fp32" and resolve_precision(torch.device("cuda")) == "bf16"
    assert resolve_precision(cpu, "bf16") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        TrainSettings(precision="fp16")


def test_evaluation_batch_size_changes_no_prediction(split):
    """The batch is chosen for speed alone: every prediction, hence the accuracy, is the same."""
    model = train(SMALL, TrainSettings(epochs=1, batch_size=32), split).model
    cpu = torch.device("cpu")
    for precision in ("fp32", "bf16"):
        whole = evaluate(model, split.validation, cpu, batch_size=len(split.validation),
                         precision=precision)
        batched = evaluate(model, split.validation, cpu, batch_size=30, precision=precision)
        assert torch.equal(whole.predictions, batched.predictions)
        assert batched.loss == pytest.approx(whole.loss, rel=1e-5)


def test_best_validation_accuracy_ignores_interim_scores():
    def record(accuracy, interim):
        return EpochRecord(epoch=1.0, train_loss=1.0, validation_loss=1.0,
                           validation_accuracy=accuracy, seconds=1.0, images_per_second=1.0,
                           interim=interim)

    assert best_validation_accuracy([record(0.99, True), record(0.97, False)]) == 0.97
    assert best_validation_accuracy([record(0.99, True)]) == 0.0


def test_callback_can_stop_training_early(split):
    def stop_after_first(record, model):
        raise StopTraining

    result = train(SMALL, TrainSettings(epochs=3, batch_size=64), split, on_evaluation=stop_after_first)
    assert result.stopped_early and len(result.history) == 1


def test_checkpoint_resume_continues_where_it_stopped(split, tmp_path):
    settings = TrainSettings(epochs=3, batch_size=64, lr_schedule="cosine", augment=True)
    straight = train(SMALL, settings, split).history
    checkpoint = tmp_path / "state.pt"

    class Interrupted(Exception):
        pass

    def interrupt_in_epoch_two(record, model):
        if record.epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(SMALL, settings, split, on_evaluation=interrupt_in_epoch_two, checkpoint_path=checkpoint)
    assert torch.load(checkpoint, weights_only=False)["epochs_done"] == 1
    resumed = train(SMALL, settings, split, checkpoint_path=checkpoint).history
    assert [r.epoch for r in resumed] == [1, 2, 3]
    assert [r.validation_loss for r in resumed] == pytest.approx([r.validation_loss for r in straight])


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(learning_rate=0),
                                 dict(lr_schedule="step"), dict(weight_decay=-1)])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        TrainSettings(**bad)


def test_foreach_adam_is_bitwise_the_per_parameter_loop():
    """train() uses foreach Adam for speed; curves recorded before stay the same measurement."""
    from mnist_cnn.model import build_model

    inputs, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    weights = []
    for foreach in (False, True):
        torch.manual_seed(0)
        model = build_model(CNNConfig(channels=(4, 8), fc_width=16))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, foreach=foreach)
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*weights)


def test_a_training_subset_is_scored_at_every_evaluation_as_validation_is(split):
    """The first 200 training images (as many as validation), the first 50 at interim
    evaluations: what the model scores there, in eval mode, is what the record holds."""
    cpu = torch.device("cpu")
    settings = TrainSettings(epochs=2, batch_size=32, evaluations_per_epoch=3,
                             interim_validation_size=50)
    scored = []

    def score_subsets(record, model):
        size = 50 if record.interim else 200
        subset = evaluate(model, split.train.subset(torch.arange(size)), cpu)
        scored.append((subset.loss, subset.accuracy))

    result = train(SMALL, settings, split, on_evaluation=score_subsets)
    assert [r.interim for r in result.history] == [True, True, False] * 2
    assert [(r.train_subset_loss, r.train_subset_accuracy) for r in result.history] == scored
    assert all(round(r.train_subset_accuracy * (50 if r.interim else 200), 4).is_integer()
               for r in result.history)
    last = result.history[-1]
    assert last.train_subset_loss < last.validation_loss  # it was trained on these images


def test_scoring_the_training_subset_changes_nothing_learned(split, monkeypatch):
    """Curves recorded before the training subset was scored stay the same measurement: with
    dropout, augmentation, a schedule and interim scores, every loss, score and weight is
    bitwise what it is when the subset is empty (no forward pass on it at all)."""
    train_module = importlib.import_module("mnist_cnn.train")  # the package re-exports `train`

    config = CNNConfig(channels=(8, 16), fc_width=32, dropout=0.3)
    settings = TrainSettings(epochs=2, batch_size=32, evaluations_per_epoch=2, augment=True,
                             lr_schedule="cosine", interim_validation_size=50, seed=5)
    scored = train(config, settings, split)
    monkeypatch.setattr(train_module, "training_subset",
                        lambda images, size: images.subset(torch.arange(0)))
    unscored = train(config, settings, split)
    assert all(r.train_subset_loss > 0 for r in scored.history)
    assert all(r.train_subset_loss == 0.0 for r in unscored.history)  # the patch took effect

    def learned(history):
        return [(r.epoch, r.train_loss, r.validation_loss, r.validation_accuracy, r.interim)
                for r in history]

    assert learned(scored.history) == learned(unscored.history)
    after, before = scored.model.state_dict(), unscored.model.state_dict()
    assert all(torch.equal(after[name], before[name]) for name in before)


def test_a_record_stored_before_the_training_subset_was_scored_still_loads():
    old = dict(epoch=1.0, train_loss=0.2, validation_loss=0.1, validation_accuracy=0.97,
               seconds=3.0, images_per_second=900.0, interim=False)
    record = EpochRecord(**old)
    assert record.train_subset_loss is None and record.train_subset_accuracy is None


def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path):
    """A checkpoint cut short on disk (a --resume after a crash) is bad input that says which
    file and what to do, not torch's traceback; a whole one reads back."""
    from mnist_cnn.train import CheckpointError, read_checkpoint

    path = tmp_path / "seed_0_done.pt"
    torch.save({"weights": torch.arange(1000.0)}, path)
    assert torch.equal(read_checkpoint(path)["weights"], torch.arange(1000.0))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="seed_0_done.pt is damaged .*delete it") as raised:
        read_checkpoint(path)
    assert "\n" not in str(raised.value)
