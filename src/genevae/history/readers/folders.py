"""Log folders other tools write, and the latent size their saved settings give.

- Lightning: ``lightning_logs/version_N/`` holds ``metrics.csv`` (CSVLogger) and/or
  TensorBoard event files (TensorBoardLogger), and ``hparams.yaml`` with the
  module's ``save_hyperparameters()``. The parent ``lightning_logs/`` is read
  through its newest version, the highest N, and a note names it; version folders
  whose suffix is not a number leave "newest" undecided and are an error that lists
  them.
- MLflow: a run folder ``mlruns/<experiment_id>/<run_id>/`` with ``metrics/`` and
  ``params/`` (one file per parameter, holding its value), or its ``metrics/``
  folder itself.

The latent size is read from the first of :data:`LATENT_SIZE_NAMES` that the
settings hold, so that a summed KL can be put per dimension. ``hparams.yaml`` is
read line by line as ``key: value`` (nested keys by their own name), without
PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from genevae.errors import GenevaeError

__all__ = ["LogFolder", "resolve_log_folder", "resolve_log_file", "LATENT_SIZE_NAMES", "latent_size"]

#: Names under which tools save the number of latent dimensions.
LATENT_SIZE_NAMES = ("n_latent", "latent_dim", "n_latent_dims", "z_dim")
_HPARAMS_FILE = "hparams.yaml"
_MLFLOW_METRICS, _MLFLOW_PARAMS = "metrics", "params"
_VERSION = re.compile(r"version_(.*)")
_YAML_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w.-]*)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class LogFolder:
    """What to read for a given folder.

    Attributes
    ----------
    path
        The folder to read (a Lightning version or an MLflow ``metrics/`` folder).
    is_mlflow
        Whether ``path`` holds MLflow metric files.
    notes
        For ``HistoryMeta.notes`` (which Lightning version was chosen).
    n_latent
        From ``hparams.yaml`` or MLflow ``params/``, where found.
    """

    path: Path
    is_mlflow: bool = False
    notes: tuple[str, ...] = ()
    n_latent: int | None = None


def resolve_log_folder(folder: Path) -> LogFolder:
    """The version or metrics folder to read in ``folder``, and its settings.

    Raises
    ------
    GenevaeError
        For a ``lightning_logs`` folder whose versions have no order.
    """
    if folder.name == _MLFLOW_METRICS and not (folder / _MLFLOW_METRICS).is_dir():
        return LogFolder(folder, True, n_latent=_mlflow_latent(folder.parent))
    if (folder / _MLFLOW_METRICS).is_dir():
        return LogFolder(folder / _MLFLOW_METRICS, True, n_latent=_mlflow_latent(folder))
    versions = {child.name: _VERSION.fullmatch(child.name)[1] for child in folder.iterdir()
                if child.is_dir() and _VERSION.fullmatch(child.name)}
    notes: tuple[str, ...] = ()
    if versions:
        unnumbered = sorted(name for name, suffix in versions.items() if not suffix.isdigit())
        if unnumbered:
            raise GenevaeError(
                f"{folder} holds Lightning versions {', '.join(sorted(versions))}, and "
                f"{', '.join(unnumbered)} has no version number, so which is newest is unclear. "
                f"Give one version folder, e.g. {folder / sorted(versions)[-1]}."
            )
        newest = max(versions, key=lambda name: int(versions[name]))
        notes = (f"{folder.name} holds {len(versions)} Lightning versions "
                 f"({', '.join(sorted(versions, key=lambda n: int(versions[n])))}): read "
                 f"{newest}, the newest; give another version folder to read it.",)
        folder = folder / newest
    return LogFolder(folder, notes=notes, n_latent=_hparams_latent(folder / _HPARAMS_FILE))


def resolve_log_file(file: Path) -> LogFolder:
    """A log file, with the latent size of an ``hparams.yaml`` beside it (a Lightning
    version's ``metrics.csv`` or event file)."""
    return LogFolder(file, n_latent=_hparams_latent(file.parent / _HPARAMS_FILE))


def latent_size(settings: Mapping[str, str]) -> int | None:
    """The first of :data:`LATENT_SIZE_NAMES` in ``settings`` holding a whole number >= 1."""
    for name in LATENT_SIZE_NAMES:
        value = settings.get(name, "").strip().strip("'\"")
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None


def _hparams_latent(path: Path) -> int | None:
    if not path.is_file():
        return None
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _YAML_LINE.match(line)
        if match:
            settings.setdefault(match[1], match[2])
    return latent_size(settings)


def _mlflow_latent(run_folder: Path) -> int | None:
    params = run_folder / _MLFLOW_PARAMS
    if not params.is_dir():
        return None
    return latent_size({p.name: p.read_text(encoding="utf-8", errors="replace")
                        for p in params.iterdir() if p.is_file()})
