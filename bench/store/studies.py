"""Where finished studies are read from: an Optuna storage URL, or the results folder.

Every command that reads a study (report, finetune, confirm) finds it through `StudySource`, so
a study on a shared PostgreSQL reads the same as one in results/<study>/study.db (or a compare
group's results/<group>/journal.log), and a wrong URL
or name is one line of bad input. Reading never creates a SQLite file or a study.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from sqlalchemy.engine import make_url

from bench.store import layout
from bench.store.storage import hidden_url, open_journal, open_storage, storage_url


class StudyNotFound(ValueError):
    """The storage or the name points at no study: bad input."""


@dataclass(frozen=True)
class StudySource:
    """An Optuna storage URL when given, else one SQLite file per study under `results_dir`."""

    results_dir: Path = Path("results")
    storage: str | None = None

    @property
    def where(self) -> str:
        return hidden_url(self.storage) if self.storage else f"{self.results_dir}"

    def url(self, study_name: str) -> str:
        return storage_url(self.storage, self.results_dir, study_name)

    def open(self, study_name: str) -> optuna.storages.BaseStorage:
        """The storage holding `study_name` (for SQLite: that file, which must exist; a folder
        with only a journal: the journal)."""
        if self.storage is None and study_name:
            path = layout.study_file(self.results_dir, study_name)
            if path == layout.study_journal(self.results_dir, study_name):
                return open_journal(path)
        url = self.url(study_name)
        if url.startswith("sqlite"):
            path = make_url(url).database
            if not path or not Path(path).is_file():
                raise StudyNotFound(f"no study database {path or url}")
        return open_storage(url)

    def names(self) -> list[str]:
        """The studies there are: every study in the storage, or every study folder."""
        if self.storage is None:
            return layout.study_names(self.results_dir)
        storage = self.open("")
        return sorted(optuna.get_all_study_names(storage))

    def choose(self, study_name: str | None) -> str:
        """`study_name`, checked; or the only study there is."""
        names = self.names()
        listed = ", ".join(names) or "none"
        if study_name is None:
            if len(names) == 1:
                return names[0]
            if not names:
                raise StudyNotFound(f"no study in {self.where}; run `mnist-bench search` first")
            raise StudyNotFound(f"{self.where} holds {len(names)} studies, pick one with "
                                f"--study: {listed}")
        if study_name not in names:
            raise StudyNotFound(f"no study {study_name!r} in {self.where} (studies: {listed})")
        return study_name

    def load(self, study_name: str) -> optuna.Study:
        """The named study (checked to exist: `optuna.load_study` on a bad name is a traceback)."""
        return self.load_with_storage(study_name)[0]

    def load_with_storage(self, study_name: str) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
        """The named study and its storage (which artifact lookups of its frozen trials need)."""
        storage = self.open(study_name)
        names = optuna.get_all_study_names(storage)
        if study_name not in names:
            raise StudyNotFound(f"no study {study_name!r} in {hidden_url(self.url(study_name))} "
                                f"(studies: {', '.join(sorted(names)) or 'none'})")
        return optuna.load_study(study_name=study_name, storage=storage), storage

    def load_related(self, study_name: str | None) -> list[tuple[Path, optuna.Study]]:
        """Studies with the folder their local outputs go to, oldest name first.

        From a results folder: every study in every study.db or journal.log (or the named
        folder's). From a storage: every study, or the named one with those whose names extend
        it by "-..." (its confirm study; a compare group's studies).
        """
        if self.storage is None:
            if not Path(self.results_dir).is_dir():
                raise StudyNotFound(f"results folder {self.results_dir} does not exist")
            folders = [self.choose(study_name)] if study_name else self.names()
            if not folders:
                raise StudyNotFound(f"no studies under {self.results_dir} (looked for "
                                    f"{self.results_dir}/*/study.db and journal.log); run "
                                    "`mnist-bench search` first")
            studies = []
            for folder in folders:
                try:
                    storage = self.open(folder)
                    names = optuna.get_all_study_names(storage)
                except Exception as error:  # a damaged or foreign file: say which, in one line
                    raise StudyNotFound(f"cannot read {layout.study_file(self.results_dir, folder)}: "
                                        f"{str(error).splitlines()[0]}") from None
                studies += [(layout.study_dir(self.results_dir, folder),
                             optuna.load_study(study_name=name, storage=storage))
                            for name in sorted(names)]
            if not studies:
                raise StudyNotFound(f"the study files under {self.results_dir} hold no studies")
            return studies
        storage = self.open("")
        names = sorted(optuna.get_all_study_names(storage))
        if study_name is not None:
            names = [n for n in names if n == study_name or n.startswith(study_name + "-")]
            if not names:
                self.choose(study_name)  # raises, listing the studies there are
        if not names:
            raise StudyNotFound(f"no studies in {self.where}; run `mnist-bench search` first")
        return [(layout.study_dir(self.results_dir, name),
                 optuna.load_study(study_name=name, storage=storage)) for name in names]
