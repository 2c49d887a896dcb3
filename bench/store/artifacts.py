"""Kept weights as Optuna artifacts, so they travel with the study to any machine.

A trial that beats the study's best uploads its weights with `optuna.artifacts.upload_artifact`
to the artifact store named by --artifacts: a folder (by default results/artifacts; a shared
mount when workers run on several machines), or s3://bucket and gs://bucket where boto3 or
google-cloud-storage is installed. The storage records which trial owns which artifact, so
`finetune --best` anywhere finds them, and optuna-dashboard shows them when given the store.
Superseded weights are removed from the store after every finished trial.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import optuna
import torch
from optuna.artifacts import (FileSystemArtifactStore, download_artifact, get_all_artifact_meta,
                              upload_artifact)
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

from bench.store import schema

WEIGHTS_MIMETYPE = "application/x-pytorch-state-dict"


class ArtifactStoreError(ValueError):
    """The artifact store cannot be used: bad input."""


def weights_filename(trial_number: int) -> str:
    return f"trial_{trial_number}_weights.pt"


def open_artifact_store(location: str | Path, create: bool = True):
    """The store at `location`: s3://bucket, gs://bucket, or a folder (made when `create`; a
    file in its path is refused either way)."""
    text = str(location)
    if text.startswith(("s3://", "gs://")):
        scheme, bucket = text.split("://", 1)
        bucket = bucket.strip("/")
        if not bucket or "/" in bucket:
            raise ArtifactStoreError(f"artifact store {text}: give a bucket only, as {scheme}://name")
        try:
            if scheme == "s3":
                from optuna.artifacts import Boto3ArtifactStore

                return Boto3ArtifactStore(bucket)
            from optuna.artifacts import GCSArtifactStore

            return GCSArtifactStore(bucket)
        except ImportError:
            package = "boto3" if scheme == "s3" else "google-cloud-storage"
            raise ArtifactStoreError(f"artifact store {text} needs {package}: "
                                     f"pip install {package}") from None
    folder = Path(text)
    existing = next((path for path in (folder, *folder.absolute().parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():  # found before anything is made
        raise ArtifactStoreError(f"cannot create artifact folder {folder}: {existing} is not a "
                                 "folder")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ArtifactStoreError(f"cannot create artifact folder {folder}: "
                                     f"{error.strerror}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ArtifactStoreError(f"artifact folder {folder} is not writable")
    return FileSystemArtifactStore(folder)


def upload_weights(trial: optuna.Trial, state: dict[str, torch.Tensor], store) -> str:
    """Upload `state` as the trial's weights artifact; returns the artifact id."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / weights_filename(trial.number)
        torch.save(state, path)
        artifact_id = upload_artifact(artifact_store=store, file_path=str(path),
                                      study_or_trial=trial, mimetype=WEIGHTS_MIMETYPE)
    trial.set_user_attr(schema.ATTR_WEIGHTS, artifact_id)
    return artifact_id


def download_weights(trial: optuna.trial.FrozenTrial, storage: optuna.storages.BaseStorage,
                     store) -> dict[str, torch.Tensor] | None:
    """The trial's weights from the store; None when it kept none or the store lacks them."""
    artifact_id = trial.user_attrs.get(schema.ATTR_WEIGHTS)
    metas = [m for m in get_all_artifact_meta(trial, storage=storage)
             if m.artifact_id == artifact_id]
    if not metas:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / metas[0].filename
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except ArtifactNotFound:
            return None
        return torch.load(path, map_location="cpu", weights_only=True)


def remove_superseded_weights(study: optuna.Study, store) -> None:
    """Keep only the weights of the best trial that has some; running trials' are left alone."""
    finished = [t for t in study.get_trials(deepcopy=False)
                if t.state.is_finished() and schema.ATTR_WEIGHTS in t.user_attrs]
    kept = [t for t in finished if t.state == TrialState.COMPLETE]
    if not kept:
        return
    # The best trial with weights: a replayed trial that ties or beats it has none of its own.
    best = max(kept, key=lambda t: (t.value, -t.number)).number
    for trial in finished:
        if trial.number != best:
            try:
                store.remove(trial.user_attrs[schema.ATTR_WEIGHTS])
            except ArtifactNotFound:  # removed before, or kept in another machine's store
                pass
