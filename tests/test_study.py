"""bench.search.study: samplers and pruners by name, storages, and the checks that guard a resume."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

from bench.search.settings import PRUNERS, SAMPLERS, SearchSettings
from bench.search.spaces import TrialPlan, load_space
from bench.search.study import make_pruner, make_sampler, open_study, sampler_seed
from bench.store.storage import StorageError, open_storage


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_samples_the_faq_space(name):
    space = load_space("faq")
    study = optuna.create_study(direction="maximize", sampler=make_sampler(name, space, seed=3))
    for _ in range(4):
        trial = study.ask()
        config, _ = space.sample(trial, TrialPlan(epochs=1, seed=0, evaluations_per_epoch=1))
        study.tell(trial, config.fc_width / 512)  # any deterministic value
    assert all(t.params["kernel_size"] in (3, 5, 7) and 32 <= t.params["fc_width"] <= 512
               for t in study.trials)
    if name == "grid":
        assert all(t.params["fc_width"] in (32, 64, 128, 256, 512) for t in study.trials)


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_builds(name):
    assert isinstance(make_pruner(name, steps_per_trial=4), optuna.pruners.BasePruner)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="unknown sampler 'bogus'"):
        SearchSettings(sampler="bogus")
    with pytest.raises(ValueError, match="trials must be at least 1"):
        SearchSettings(trials=0)


def test_sampler_seeds_differ_per_worker_and_resume():
    settings = SearchSettings()
    seeds = {sampler_seed(settings, w, n) for w in range(3) for n in (0, 10)}
    assert len(seeds) == 6
    assert sampler_seed(settings, 1, 10) == sampler_seed(settings, 1, 10)


def test_storage_error_hides_password():
    with pytest.raises(StorageError) as error:
        open_storage("postgresql://me:secret@127.0.0.1:1/none")
    assert "secret" not in str(error.value) and "127.0.0.1" in str(error.value)
    with pytest.raises(StorageError, match="cannot open storage"):
        open_storage("nosuchdb://x")


def test_a_process_that_loses_the_race_to_create_sqlite_tables_opens_them_on_retry(
        tmp_path, monkeypatch):
    """Two grids started together on a new study: SQLite tells the loser "table studies already
    exists" (seen 2026-12-07); it retries and opens the tables the winner made. Any other
    operational error is refused at once."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import bench.store.storage as storage

    real, calls = storage._rdb_storage, []

    def racing(*args, message="table studies already exists"):
        calls.append(args[0])
        if len(calls) == 1:
            optuna.storages.RDBStorage(args[0])  # the winner makes the tables meanwhile
            raise OperationalError("CREATE TABLE studies", {}, sqlite3.OperationalError(message))
        return real(*args)

    url = f"sqlite:///{tmp_path / 'study.db'}"
    monkeypatch.setattr(storage, "_rdb_storage", racing)
    assert isinstance(open_storage(url), optuna.storages.RDBStorage) and len(calls) == 2

    calls.clear()
    monkeypatch.setattr(storage, "_rdb_storage", lambda *args: racing(
        *args, message="unable to open database file"))
    with pytest.raises(StorageError, match="unable to open database file"):
        open_storage(f"sqlite:///{tmp_path / 'other.db'}")
    assert len(calls) == 1


def test_open_study_stores_settings_and_refuses_other_settings(tmp_path):
    settings = SearchSettings(results_dir=tmp_path, epochs=2)
    space = load_space("faq")
    study = open_study(settings, space)
    assert study.study_name == "faq-tpe-hyperband"
    assert (tmp_path / "faq-tpe-hyperband" / "study.db").exists()
    stored = optuna.load_study(study_name=study.study_name,
                               storage=settings.storage_url(study.study_name)).user_attrs
    assert stored["search_settings"]["epochs"] == 2
    assert stored["search_space"]["params"]["fc_width"]["choices"] == [32, 64, 128, 256, 512]
    open_study(replace(settings, trials=80, workers=2), space)  # budget and workers may change
    with pytest.raises(ValueError, match="epochs=2.*epochs=3"):
        open_study(replace(settings, epochs=3), space)
    with pytest.raises(ValueError, match="interim_validation_size=None.*interim_validation_size=1000"):
        open_study(replace(settings, interim_validation_size=1000), space)
    open_study(replace(settings, interim_validation_size=5000), space)  # the whole split: no subset
    with pytest.raises(ValueError, match="precision=None.*precision='bf16'"):
        open_study(replace(settings, precision="bf16"), space)
