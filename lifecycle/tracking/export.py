"""A registered version as plain files: fetched once through MLflow, then served without MLflow.

:func:`export_served_model` resolves a registry URI to one version (in the caller, which usually has
MLflow imported already) and writes ``workspace/served-models/<name>-v<version>-<run id>/``: the model
folder as MLflow stored it, the training window ``history.csv``, and ``manifest.json`` (name, version,
URI, run id, threshold, the model file's sha256, library versions). The folder appears whole or not at
all (written beside it, then renamed), and is reused while the registry still maps that version to
that run. :func:`load_exported_model` reads it back as a :class:`~lifecycle.tracking.registry.ServedModel`
importing neither MLflow nor anything of it: a model server's start then costs scikit-learn and the
server, not MLflow's 3 s of imports and its registry round trips (benchmarks/README.md, *Services*).

Used by :func:`lifecycle.serving.start_server` and ``lifecycle serve`` (notebooks/05_serving.ipynb).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError
from lifecycle.tracking.registry import ServedModel

EXPORTS_FOLDER = "served-models"  # under the workspace
MANIFEST = "manifest.json"
HISTORY_FILE = "history.csv"
MODEL_FOLDER = "model"  # the logged model's artifacts, as MLflow stored them
FORMAT = 1  # the manifest's layout; a folder of another layout is re-exported
LIBRARIES = ("scikit-learn", "numpy", "pandas", "cloudpickle", "mlflow")
PICKLE_FORMATS = ("cloudpickle", "pickle")  # MLflow's sklearn formats a server reads without MLflow


def export_served_model(uri: str | None = None, settings: Settings | None = None) -> Path:
    """The local export of the version ``uri`` names, written now unless a valid one exists.

    Args:
        uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``
            (default: ``models:/<settings.registered_model>@champion``).
        settings: which store, and whose workspace holds the export.

    Returns:
        The export's folder (``workspace/served-models/<name>-v<version>-<run id>``), for
        :func:`load_exported_model`. A folder left broken (an interrupted copy, edited files) is
        replaced; one written for another run of that version has another name, so it is never used.

    Raises:
        ConfigError: the URI is not a registry URI, or names no version (see
            :func:`~lifecycle.tracking.registry.load_served_model`).
    """
    import mlflow

    from lifecycle.tracking.registry import resolve_version, version_details
    from lifecycle.tracking.runs import HISTORY_ARTIFACT, mlflow_client

    settings = settings or load_settings()
    name, version, uri = resolve_version(uri, settings)
    threshold, run_id = version_details(name, version, settings)
    folder = settings.workspace / EXPORTS_FOLDER / _folder_name(name, version, run_id)
    if folder.is_dir():
        try:
            load_manifest(folder)
            return folder
        except ConfigError:
            shutil.rmtree(folder)  # the registry still has the version: write it again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        client = mlflow_client(settings)
        model_dir = Path(mlflow.artifacts.download_artifacts(client.get_model_version_download_uri(name, version),
                                                             dst_path=str(staging / MODEL_FOLDER),
                                                             tracking_uri=settings.mlflow_tracking_uri))
        flavor = mlflow.models.Model.load(str(model_dir)).flavors["sklearn"]
        model_file = model_dir / flavor["pickled_model"]
        serialization = flavor.get("serialization_format", "pickle")
        if serialization not in PICKLE_FORMATS:  # e.g. skops: re-pickled here, once, from what MLflow loads
            import cloudpickle

            model_file = model_dir / "served-model.pkl"
            model_file.write_bytes(cloudpickle.dumps(mlflow.sklearn.load_model(str(model_dir))))
            serialization = "cloudpickle"
        history = client.download_artifacts(run_id, HISTORY_ARTIFACT, str(staging))
        Path(history).rename(staging / HISTORY_FILE)
        manifest = {"format": FORMAT, "name": name, "version": version, "uri": uri, "run_id": run_id,
                    "threshold": threshold, "model_file": str(model_file.relative_to(staging)),
                    "serialization_format": serialization, "model_sha256": _sha256(model_file),
                    "python": sys.version.split()[0],
                    "libraries": {package: metadata.version(package) for package in LIBRARIES}}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            staging.rename(folder)
        except OSError:  # another process exported the same version meanwhile: use theirs
            shutil.rmtree(staging)
            load_manifest(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def load_exported_model(folder: str | Path, uri: str) -> ServedModel:
    """The served model of an export (see :func:`export_served_model`), without importing MLflow.

    Args:
        folder: the export's folder.
        uri: the URI the server was asked for, which it reports (``/metadata``, its first line); the
            export of a version serves its alias and its number alike.

    Raises:
        ConfigError: the folder is missing, incomplete or altered (its files do not match its
            manifest), was written for another run than its name says, or holds another model or
            version than ``uri`` names; the message names the folder.
    """
    import pickle

    from lifecycle.data import read_transactions

    folder = Path(folder)
    manifest = load_manifest(folder)
    named, exported = uri.removeprefix("models:/").split("@")[0], f"{manifest['name']}/{manifest['version']}"
    if named not in (manifest["name"], exported):
        raise ConfigError(f"model export {folder} holds models:/{exported}, not {uri}: serve it as models:/{exported}, "
                          f"or export {uri} with lifecycle.tracking.export_served_model (start_server does)")
    try:
        with open(folder / manifest["model_file"], "rb") as stream:
            model = pickle.load(stream)  # cloudpickle's files are pickles that need cloudpickle importable
    except Exception as err:  # unpickling can raise nearly anything: say which export, and the fix
        raise _broken(folder, f"its model cannot be loaded ({type(err).__name__}: {err})") from err
    history = read_transactions(folder / HISTORY_FILE)
    return ServedModel(model, float(manifest["threshold"]), manifest["name"], str(manifest["version"]),
                       uri, history)


def served_uri(uri: str | None = None, settings: Settings | None = None) -> str:
    """``uri``, or by default the champion's: ``models:/<settings.registered_model>@champion``."""
    from lifecycle.tracking.registry import CHAMPION

    return uri or f"models:/{(settings or load_settings()).registered_model}@{CHAMPION}"


def load_manifest(folder: Path) -> dict:
    """An export's manifest, once its files are checked against it (a stale or broken folder raises)."""
    if not folder.is_dir():
        raise ConfigError(f"no model export at {folder}: export one with "
                          "lifecycle.tracking.export_served_model(uri) (start_server does), or serve with "
                          "--model URI alone")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        keys = (manifest["format"], manifest["name"], manifest["version"], manifest["run_id"],
                manifest["model_file"], manifest["model_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _broken(folder, f"its {MANIFEST} is missing or unreadable ({type(err).__name__}: {err})") from err
    if keys[0] != FORMAT:
        raise _broken(folder, f"its manifest has format {keys[0]!r}, this kit reads {FORMAT}")
    if folder.name != _folder_name(*keys[1:4]):
        raise _broken(folder, f"it holds version {keys[2]} of run {keys[3]}, not what its name says (stale)")
    model_file = folder / keys[4]
    if not (folder / HISTORY_FILE).is_file() or not model_file.is_file() or _sha256(model_file) != keys[5]:
        raise _broken(folder, "its model or history file is missing or differs from its manifest")
    return manifest


def _broken(folder: Path, why: str) -> ConfigError:
    return ConfigError(f"model export {folder} cannot be served: {why}; delete the folder and start the server "
                       "again (start_server and 'lifecycle serve --model URI' export it anew from the registry)")


def _folder_name(name: str, version: str, run_id: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', str(name))}-v{version}-{run_id}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

