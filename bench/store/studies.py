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

from bench.store import layout, schema
from bench.store.damage import DamagedFile, error_line
from bench.store.storage import hidden_url, open_journal, open_storage, storage_url

LISTED = 6  # names a message lists before "and N more"


class StudyNotFound(ValueError):
    """The storage or the name points at no study: bad input."""


class StudyUnreadable(DamagedFile):
    """A study file that is there but cannot be read (not Optuna's): bad input."""


def short_list(names: list[str]) -> str:
    """Names for a one-line message: the first few, then how many more."""
    if not names:
        return "none"
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")


def root_cause(error: BaseException) -> str:
    """The first line of the error at the bottom of `error`'s chain: Optuna wraps a damaged
    database's "database disk image is malformed" in a guess about too long values."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error_line(error)


def _searched(storage: optuna.storages.BaseStorage) -> list[str]:
    """The studies of `storage` that are neither a compare group's nor a confirm study."""
    return sorted(study.study_name for study in storage.get_all_studies()
                  if schema.STUDY_ATTR_COMPARE not in study.user_attrs
                  and schema.STUDY_ATTR_CONFIRM not in study.user_attrs)


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

    def location(self, study_name: str) -> str:
        """Where `study_name` is read from, for messages: its file, or the storage URL."""
        if self.storage is None:
            return str(layout.study_file(self.results_dir, study_name))
        return hidden_url(self.url(study_name))

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

    def searches(self) -> list[str]:
        """The studies a search made: what `confirm` and `finetune` may take by default. A
        compare group (a journal.log folder, or studies with the "compare" attr) and a confirm
        study are not."""
        if self.storage is None:  # a folder named after the study it holds
            return [name for name in self.names()
                    if layout.study_file(self.results_dir, name).name == "study.db"
                    and name in _searched(self.open(name))]
        return _searched(self.open(""))

    def choose(self, study_name: str | None) -> str:
        """`study_name`, checked; or the only study a search made."""
        if study_name is None:
            searches = self.searches()
            if len(searches) == 1:
                return searches[0]
            if not searches:
                others = self.names()
                besides = (f" (it holds {short_list(others)}: compare groups, not searches)"
                           if others else "")
                raise StudyNotFound(f"no study of `mnist-bench search` in {self.where}{besides}; "
                                    "run `mnist-bench search` first")
            raise StudyNotFound(f"{self.where} holds {len(searches)} searched studies, pick one "
                                f"with --study: {short_list(searches)}")
        names = self.names()
        if study_name not in names:
            raise StudyNotFound(f"no study {study_name!r} in {self.where} (studies: "
                                f"{short_list(names)})")
        return study_name

    def load(self, study_name: str) -> optuna.Study:
        """The named study (checked to exist: `optuna.load_study` on a bad name is a traceback)."""
        return self.load_with_storage(study_name)[0]

    def load_with_storage(self, study_name: str) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
        """The named study and its storage (which artifact lookups of its frozen trials need)."""
        storage = self.open(study_name)
        names = optuna.get_all_study_names(storage)
        if study_name not in names:
            group = (" is a compare group, not a study a search made" if names and all(
                name.startswith(study_name + "-") for name in names) else "")
            raise StudyNotFound(f"{study_name!r}{group or ' is not a study'}: "
                                f"{self.location(study_name)} holds {len(names)} "
                                f"stud{'y' if len(names) == 1 else 'ies'} "
                                f"({short_list(sorted(names))})")
        return optuna.load_study(study_name=study_name, storage=storage), storage

    def load_related(self, study_name: str | None) -> list[tuple[Path, optuna.Study]]:
        """Studies with the folder their local outputs go to, oldest name first.

        From a results folder: every study in every study.db or journal.log (or the named
        folder's). From a storage: every study, or the named one with those whose names extend
        it by "-..." (its confirm study; a compare group's studies).
        """
        if self.storage is None:
            if not Path(self.results_dir).is_dir():
                raise StudyNotFound(f"results folder {self.results_dir} "
                                    + ("is a file, not a folder" if Path(self.results_dir).exists()
                                       else "does not exist"))
            folders = [self.choose(study_name)] if study_name else self.names()
            if not folders:
                raise StudyNotFound(f"no studies under {self.results_dir} (looked for "
                                    f"{self.results_dir}/*/study.db and journal.log); run "
                                    "`mnist-bench search` first")
            studies = []
            for folder in folders:
                try:
                    storage = self.open(folder)
                    loaded = [optuna.load_study(study_name=name, storage=storage)
                              for name in sorted(optuna.get_all_study_names(storage))]
                    for study in loaded:  # read it all now: damage anywhere shows here
                        study.user_attrs, study.get_trials(deepcopy=False)
                except DamagedFile:  # names the file and what to do already
                    raise
                except Exception as error:  # a damaged or foreign file: say which, in one line
                    raise StudyUnreadable(f"cannot read {layout.study_file(self.results_dir, folder)}: "
                                        f"{root_cause(error)} (move it aside to report the "
                                        "others)") from None
                studies += [(layout.study_dir(self.results_dir, folder), study) for study in loaded]
            if not studies:
                raise StudyNotFound(f"the study files under {self.results_dir} hold no studies")
            return studies
        storage = self.open("")
        # a shared storage may hold other people's studies under names no folder can take:
        # those are not reported here, rather than failing every report of the storage
        names = sorted(name for name in optuna.get_all_study_names(storage)
                       if layout.is_plain_name(name))
        if study_name is not None:
            names = [n for n in names if n == study_name or n.startswith(study_name + "-")]
            if not names:
                self.choose(study_name)  # raises, listing the studies there are
        if not names:
            raise StudyNotFound(f"no studies in {self.where}; run `mnist-bench search` first")
        return [(layout.study_dir(self.results_dir, name),
                 optuna.load_study(study_name=name, storage=storage)) for name in names]
