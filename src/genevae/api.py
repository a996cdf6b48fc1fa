"""Python API in the scverse style.

>>> import genevae
>>> adata = genevae.read("pbmc.h5ad")
>>> model = genevae.GeneVAE(likelihood="nb", n_latent=10, epochs=100)
>>> history = model.fit(adata, condition_keys=["batch"], label_key="cell_type")
>>> adata.obsm["X_genevae"] = model.get_latent(adata)
>>> model.save("model.pt"); model = genevae.GeneVAE.load("model.pt")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np

from genevae.config import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    TrainConfig,
    apply_preset,
    build_config,
)
from genevae.diagnosis.findings import Diagnosis
from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.services.fitted import FittedModel, encode, load_fitted, save_fitted
from genevae.services.fitting import fit
from genevae.services.runfiles import finish_run, prepare_run_folder

__all__ = ["GeneVAE"]

_SECTIONS = {"model": ModelConfig, "objective": ObjectiveConfig, "train": TrainConfig}


class GeneVAE:
    """A conditional VAE for expression data.

    Parameters
    ----------
    preset
        Start from named settings (``"reference"``, ``"scvi"``).
    **settings
        Any field of :class:`~genevae.config.ModelConfig`,
        :class:`~genevae.config.ObjectiveConfig` or :class:`~genevae.config.TrainConfig`
        by name, e.g. ``likelihood="nb"``, ``n_latent=10``, ``beta=0.5``, ``epochs=50``.
    """

    def __init__(self, preset: str | None = None, **settings: Any) -> None:
        self._sections: dict[str, dict[str, Any]] = apply_preset(preset) if preset else {}
        for key, value in settings.items():
            section = next((n for n, c in _SECTIONS.items()
                            if key in {f.name for f in dataclasses.fields(c)}), None)
            if section is None:
                raise GenevaeError(f"GeneVAE: unknown setting {key!r}.")
            self._sections.setdefault(section, {})[key] = value
        build_config(self._sections, where="GeneVAE")  # validate now, not at fit time
        self.fitted: FittedModel | None = None
        self.history: History | None = None
        self.diagnosis: Diagnosis | None = None

    def fit(
        self,
        adata: ad.AnnData,
        condition_keys: Sequence[str] = (),
        label_key: str | None = None,
        layer: str | None = None,
        out: str | Path | None = None,
        overwrite: bool = False,
    ) -> History:
        """Train on ``adata`` (cells x genes) and return the per-epoch history.

        ``layer`` models ``adata.layers[layer]`` instead of ``X``. With ``out``,
        a full run folder (checkpoints, history, curves, diagnosis) is written.
        The diagnosis is kept in ``self.diagnosis``.
        """
        if layer is not None:
            if layer not in adata.layers:
                raise GenevaeError(f"layer {layer!r} not in adata.layers ({', '.join(adata.layers)}).")
            adata = ad.AnnData(X=adata.layers[layer], obs=adata.obs, var=adata.var)
        sections = {name: dict(values) for name, values in self._sections.items()}
        data = DataConfig(condition_keys=tuple(condition_keys), label_key=label_key)
        sections["data"] = {k: v for k, v in dataclasses.asdict(data).items() if v is not None}
        config = build_config(sections, where="GeneVAE.fit")
        run = prepare_run_folder(Path(out), overwrite) if out is not None else None
        self.fitted, training = fit(adata, config, run, echo=print)
        self.history = training.history
        self.diagnosis = finish_run(run, training.history, echo=print)
        return self.history

    def _require_fitted(self) -> FittedModel:
        if self.fitted is None:
            raise GenevaeError("the model is not trained yet: call fit(adata) or GeneVAE.load(path).")
        return self.fitted

    def get_latent(self, adata: ad.AnnData, give_logvar: bool = False) -> np.ndarray | tuple:
        """Posterior means (n_cells, n_latent); with ``give_logvar`` also the log-variances."""
        qz_mean, qz_logvar = encode(self._require_fitted(), adata)
        return (qz_mean, qz_logvar) if give_logvar else qz_mean

    def save(self, path: str | Path) -> None:
        """Write the model to a checkpoint file (loads with ``weights_only=True``)."""
        save_fitted(self._require_fitted(), path)

    @classmethod
    def load(cls, path: str | Path) -> GeneVAE:
        """Load a model saved by :meth:`save`, or the best checkpoint of a run folder."""
        model = cls()
        model.fitted = load_fitted(path)
        return model
