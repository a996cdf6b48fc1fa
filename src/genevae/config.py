"""Frozen, validated configuration: one dataclass per concern.

The resolved :class:`RunConfig` is written as ``config.toml`` beside every
checkpoint, so a run can be reproduced with ``genevae train --config config.toml``.
Configs are TOML (or JSON); never pickle.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from genevae.errors import GenevaeError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "TrainConfig",
    "RunConfig",
    "PRESETS",
    "LIKELIHOODS",
    "KL_SCHEDULES",
    "DEVICES",
    "PRECISIONS",
    "MAX_EVAL_TRAIN_CELLS",
    "load_config",
    "config_to_toml",
    "apply_preset",
]

LIKELIHOODS = ("gaussian", "nb", "zinb")
KL_SCHEDULES = ("constant", "linear", "cyclical", "sigmoid")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Largest default subsample of training cells evaluated each epoch (``n_eval_train_cells``).
MAX_EVAL_TRAIN_CELLS = 5000
#: Precision of the training-mode matrix products (:mod:`genevae.train.precision`).
PRECISIONS = ("auto", "fp32", "bf16")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise GenevaeError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where the expression matrix comes from and how it is prepared.

    Attributes
    ----------
    path
        ``.h5ad``, ``.csv``/``.tsv`` or a 10x ``matrix.mtx`` folder.
    layer
        ``.layers`` key to model instead of ``X`` (e.g. ``"counts"``).
    transpose
        Flip the orientation detected for a CSV/TSV matrix.
    sample_sheet
        CSV with one row per sample/cell holding condition and label columns,
        for plain matrices.
    condition_keys
        Categorical ``.obs`` columns the VAE conditions on (tissue, batch, ...).
    label_key
        ``.obs`` column used to stratify the split and to probe the latent space.
    n_top_genes
        Keep the most variable genes (None: keep all).
    val_fraction
        Share of cells held out for validation.
    strict
        Turn data warnings (non-integer counts, empty cells) into errors.
    backed
        Stream an ``.h5ad`` whose matrix is CSR from disk instead of loading it.
    chunk_size
        With ``backed``: cells read from disk at once; sets the peak memory.
    """

    path: str = ""
    layer: str | None = None
    transpose: bool = False
    sample_sheet: str | None = None
    condition_keys: tuple[str, ...] = ()
    label_key: str | None = None
    n_top_genes: int | None = None
    val_fraction: float = 0.1
    strict: bool = False
    backed: bool = False
    chunk_size: int = 10_000

    def __post_init__(self) -> None:
        _check(self.chunk_size >= 1, f"chunk_size={self.chunk_size}: read at least 1 cell at a time, e.g. --chunk-size 10000.")
        _check(0.0 < self.val_fraction < 1.0, f"val_fraction={self.val_fraction}: use a share between 0 and 1, e.g. 0.1.")
        _check(self.n_top_genes is None or self.n_top_genes > 0, f"n_top_genes={self.n_top_genes}: must be a positive number of genes.")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the conditional VAE.

    Attributes
    ----------
    likelihood
        ``"gaussian"``, ``"nb"`` (negative binomial), ``"zinb"`` (zero-inflated NB), or
        ``"auto"``: NB for integer counts, Gaussian otherwise (resolved before training).
    n_latent, n_hidden, n_layers
        Latent dimensions; width and depth of the encoder and decoder MLPs.
    dropout
        Dropout rate in hidden layers (active in training only).
    decoder_dropout
        Dropout rate in the decoder's hidden layers; None (default): ``dropout``.
        scvi-tools' decoder has none (the ``scvi`` preset sets 0).
    batch_norm
        Batch normalisation in hidden layers.
    gaussian_variance
        ``"learned"`` per-gene variance, or ``"fixed"``: the reference's MSE.
    condition_encoding
        ``"onehot"`` or ``"embedding"`` for the categorical conditions.
    """

    likelihood: str = "auto"
    n_latent: int = 10
    n_hidden: int = 128
    n_layers: int = 1
    dropout: float = 0.1
    decoder_dropout: float | None = None
    batch_norm: bool = False
    gaussian_variance: str = "learned"
    condition_encoding: str = "onehot"

    def __post_init__(self) -> None:
        _check(self.likelihood in (*LIKELIHOODS, "auto"), f"likelihood={self.likelihood!r}: choose one of {', '.join(LIKELIHOODS)} or auto.")
        _check(self.n_latent >= 1, f"n_latent={self.n_latent}: the latent space needs at least 1 dimension, e.g. --n-latent 10.")
        _check(self.n_hidden >= 1, f"n_hidden={self.n_hidden}: hidden layers need at least 1 unit, e.g. --n-hidden 128.")
        _check(self.n_layers >= 1, f"n_layers={self.n_layers}: use at least 1 hidden layer.")
        _check(0.0 <= self.dropout < 1.0, f"dropout={self.dropout}: use a rate in [0, 1), e.g. 0.1.")
        _check(self.decoder_dropout is None or 0.0 <= self.decoder_dropout < 1.0, f"decoder_dropout={self.decoder_dropout}: use a rate in [0, 1), e.g. 0 (none) or 0.1.")
        _check(self.gaussian_variance in ("learned", "fixed"), f"gaussian_variance={self.gaussian_variance!r}: choose 'learned' or 'fixed'.")
        _check(self.condition_encoding in ("onehot", "embedding"), f"condition_encoding={self.condition_encoding!r}: choose 'onehot' or 'embedding'.")


@dataclass(frozen=True)
class ObjectiveConfig:
    """The β-ELBO: KL weight, its schedule, free bits and the loss convention.

    Attributes
    ----------
    beta
        Maximum KL weight β.
    kl_schedule
        ``"constant"``, ``"linear"`` (warm-up), ``"cyclical"`` (Fu et al. 2019) or ``"sigmoid"``.
    warmup_epochs
        Length of the linear or sigmoid warm-up.
    n_cycles, cycle_ramp
        Cyclical schedule: number of cycles M and the ramp proportion R of each cycle.
    free_bits
        Minimum KL per latent dimension (nats, batch-averaged) before it is penalised.
    loss_reduction
        ``"sum"``: the true per-cell ELBO (nats per cell). ``"mean"``: the reference
        convention, reconstruction averaged over genes and KL over latent dimensions.
    kl_target
        With a value, β is set every step by a PI controller (ControlVAE, Shao et al.
        2020) that holds the KL per latent dimension at this many nats, starting from
        ``beta``; the schedule is then not used. None (default): the schedule sets β.
    """

    beta: float = 1.0
    kl_schedule: str = "constant"
    warmup_epochs: int = 10
    n_cycles: int = 4
    cycle_ramp: float = 0.5
    free_bits: float = 0.0
    loss_reduction: str = "sum"
    kl_target: float | None = None

    def __post_init__(self) -> None:
        _check(math.isfinite(self.beta) and self.beta >= 0, f"beta={self.beta}: β must be a finite number ≥ 0, e.g. --beta 1.")
        _check(self.kl_schedule in KL_SCHEDULES, f"kl_schedule={self.kl_schedule!r}: choose one of {', '.join(KL_SCHEDULES)}.")
        _check(self.warmup_epochs >= 0, f"warmup_epochs={self.warmup_epochs}: must be ≥ 0.")
        _check(self.n_cycles >= 1, f"n_cycles={self.n_cycles}: must be ≥ 1.")
        _check(0.0 < self.cycle_ramp <= 1.0, f"cycle_ramp={self.cycle_ramp}: use a proportion in (0, 1], e.g. 0.5.")
        _check(self.free_bits >= 0, f"free_bits={self.free_bits}: must be ≥ 0 nats per dimension.")
        _check(self.loss_reduction in ("sum", "mean"), f"loss_reduction={self.loss_reduction!r}: choose 'sum' or 'mean'.")
        _check(self.kl_target is None or (math.isfinite(self.kl_target) and self.kl_target > 0),
               f"kl_target={self.kl_target}: give a KL per latent dimension > 0 nats, e.g. --kl-target 0.5.")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping.

    Attributes
    ----------
    epochs
        Number of epochs; 0 means a size-based default (scvi-tools' heuristic:
        ``min(400, round(20000 / n_cells * 400))``).
    batch_size, lr, weight_decay
        AdamW settings.
    grad_clip
        Maximum gradient norm (0 disables clipping).
    seed
        Seeds the split, the batch order, dropout and sampling.
    early_stopping_patience
        Stop after this many epochs without a better validation loss (0 disables).
    n_eval_train_cells
        Training cells evaluated in eval mode each epoch (a fixed subsample; 0: all).
        None (default): as many as the validation cells, at most
        :data:`MAX_EVAL_TRAIN_CELLS` (5000 when there is no validation split), so that the
        train and validation averages the diagnosis compares are equally precise.
    device
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    precision
        Training-mode products of the large layers (genes x hidden): ``"bf16"``
        (bfloat16 with float32 accumulation; weights, optimiser, evaluation and
        embeddings stay float32), ``"fp32"``, or ``"auto"``: bf16 where the hardware
        multiplies bfloat16 natively (AVX512-BF16 or AMX CPUs, CUDA GPUs), else fp32.
        A run records the resolved value.
    """

    epochs: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    grad_clip: float = 10.0
    seed: int = 0
    early_stopping_patience: int = 0
    n_eval_train_cells: int | None = None
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        _check(self.device in DEVICES, f"device={self.device!r}: choose one of {', '.join(DEVICES)}.")
        _check(self.precision in PRECISIONS, f"precision={self.precision!r}: choose one of {', '.join(PRECISIONS)}.")
        _check(self.epochs >= 0, f"epochs={self.epochs}: must be ≥ 0 (0 picks a default from the data size).")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size}: must be ≥ 1, e.g. 128.")
        _check(math.isfinite(self.lr) and self.lr > 0, f"lr={self.lr}: the learning rate must be > 0, e.g. 1e-3.")
        _check(self.weight_decay >= 0, f"weight_decay={self.weight_decay}: must be ≥ 0.")
        _check(self.grad_clip >= 0, f"grad_clip={self.grad_clip}: must be ≥ 0 (0 disables clipping).")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience must be ≥ 0.")
        _check(self.n_eval_train_cells is None or self.n_eval_train_cells >= 0,
               "n_eval_train_cells must be ≥ 0 (0: all training cells).")


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to reproduce a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "train": TrainConfig,
}

#: Named settings (``--preset``). ``reference`` is the reference document's example run.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "reference": {
        "model": {
            "likelihood": "gaussian",
            "gaussian_variance": "fixed",
            "n_latent": 64,
            "n_hidden": 512,
            # The reference's "2 layers" counts the Linear layers of each network
            # (input -> 512 -> latent): one hidden layer here. Two hidden layers of 512
            # under the same settings collapse to 1-2 active dimensions in 10 epochs.
            "n_layers": 1,
            "dropout": 0.1,
        },
        "objective": {"beta": 0.5, "kl_schedule": "constant", "loss_reduction": "mean"},
        "train": {"epochs": 30, "batch_size": 64, "lr": 1e-3},
    },
    "scvi": {
        "model": {"n_latent": 10, "n_hidden": 128, "n_layers": 1, "dropout": 0.1,
                  "decoder_dropout": 0.0, "batch_norm": True},
        "objective": {"beta": 1.0, "kl_schedule": "constant", "loss_reduction": "sum"},
        # scvi-tools clips no gradients (Lightning's gradient_clip_val is None). With the
        # per-cell sum, gradient norms are 40-700, so a bound of 10 would act on every step.
        "train": {"batch_size": 128, "lr": 1e-3, "grad_clip": 0.0},
    },
}


def _field_names(section: type) -> list[str]:
    return [f.name for f in fields(section)]


def _coerce(section: type, key: str, value: Any, where: str) -> Any:
    """Convert a TOML/JSON value to the field's type (lists to tuples)."""
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    default = {f.name: f for f in fields(section)}[key].default
    if isinstance(default, bool) and not isinstance(value, bool):
        raise GenevaeError(f"{where}: {key} = {value!r} must be true or false.")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def build_config(sections: dict[str, dict[str, Any]], where: str = "config") -> RunConfig:
    """Build a validated :class:`RunConfig` from nested dicts, rejecting unknown keys.

    An unknown section or key raises :class:`GenevaeError` naming the key and the
    nearest valid one.
    """
    built = {}
    for name, values in sections.items():
        if name not in _SECTIONS:
            raise GenevaeError(_unknown(where, "section", name, list(_SECTIONS)))
        if not isinstance(values, dict):
            raise GenevaeError(f"{where}: [{name}] must be a table of settings.")
    for name, section in _SECTIONS.items():
        values = sections.get(name, {})
        valid = _field_names(section)
        kwargs = {}
        for key, value in values.items():
            if key not in valid:
                raise GenevaeError(_unknown(where, f"key in [{name}]", key, valid))
            kwargs[key] = _coerce(section, key, value, where)
        try:
            built[name] = section(**kwargs)
        except TypeError as exc:
            raise GenevaeError(f"{where}: [{name}] {exc}") from None
    return RunConfig(**built)


def _unknown(where: str, what: str, key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else f" Valid: {', '.join(valid)}."
    return f"{where}: unknown {what} {key!r}.{hint}"


def config_to_dict(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The config as nested plain dicts (tuples as lists, None values dropped)."""
    out: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        section = dataclasses.asdict(getattr(config, name))
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items() if v is not None}
    return out


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a TOML or JSON config file into nested dicts (validated by :func:`build_config`)."""
    path = Path(path)
    if not path.is_file():
        raise GenevaeError(f"config file {path} does not exist or is not a file.")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise GenevaeError(f"config file {path}: use a .toml or .json file.")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise GenevaeError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise GenevaeError(f"config file {path}: expected tables [data], [model], [objective], [train].")
    build_config(data, where=str(path))  # validate early, with the file name in messages
    return data


def apply_preset(name: str) -> dict[str, dict[str, Any]]:
    """The settings of preset ``name`` as nested dicts."""
    if name not in PRESETS:
        raise GenevaeError(_unknown("--preset", "preset", name, list(PRESETS)))
    return {section: dict(values) for section, values in PRESETS[name].items()}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def config_to_toml(config: RunConfig) -> str:
    """Render the resolved config as TOML (readable back with ``--config``)."""
    lines = ["# genevae run configuration: reproduce with `genevae train --config config.toml`"]
    for name, values in config_to_dict(config).items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
