"""From another tool's metric names to :class:`~genevae.history.history.History` columns.

Every reader hands the names it found (CSV columns, JSON keys, TensorBoard tags,
``key=value`` keys of a text log) to :func:`resolve_columns`, which decides which
name supplies which history column:

- the split comes from a ``train``/``training`` or ``val``/``valid``/``validation``/
  ``test``/``eval`` word anywhere in the name (``val_loss``, ``elbo_validation``,
  ``loss/val``); a name without one is training;
- the quantity from the other words, checked in this order: β (``beta``,
  ``kl_weight``, ``kl_w``), KL of one latent dimension (``kl_dim_3``), global KL
  (``kl_global``), KL (``kl``, ``kld``, ``kl_div``, ``kl_loss``, ``kl_local``),
  reconstruction (``recon``, ``reconstruction``, ``rec``, ``nll``, ``mse``), total
  loss (``loss``, ``total``, ``objective``, ``elbo``);
- when several names give the same column, the preferred one wins: a per-epoch
  aggregate (``train_loss_epoch``) over a plain name over a per-step one
  (``train_loss_step``); a plain name over genevae's convention variants
  (``_sum``, ``_mean``, ``running``); a loss or total over an ELBO (scvi-tools logs
  ``train_loss_epoch`` = recon + β·kl and ``elbo_train`` = recon + kl). Two names
  equally preferred are an ambiguity the user settles with ``--map``.

``column_map`` (from ``--map recon=my_col``) names the source of a column outright;
its keys are :data:`MAP_KEYS`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from genevae.errors import GenevaeError
from genevae.history.history import kl_dim_column

__all__ = [
    "MAP_KEYS",
    "SPLIT_WORDS",
    "name_split",
    "NameMatch",
    "classify_name",
    "epoch_column",
    "resolve_columns",
    "kl_global_column",
]

#: ``--map`` keys and the history column each one names.
MAP_KEYS: dict[str, str] = {
    "loss": "train_loss",
    "recon": "train_recon",
    "kl": "train_kl",
    "train_loss": "train_loss",
    "train_recon": "train_recon",
    "train_kl": "train_kl",
    "val_loss": "val_loss",
    "val_recon": "val_recon",
    "val_kl": "val_kl",
    "kl_weight": "kl_weight",
    "beta": "kl_weight",
    "epoch": "epoch",
}

#: Words that name a split, and the split.
SPLIT_WORDS = {
    "train": "train", "training": "train", "trn": "train",
    "val": "val", "valid": "val", "validation": "val", "test": "val", "testing": "val",
    "eval": "val", "evaluation": "val", "dev": "val",
}
_KL_WORDS = frozenset({"kl", "kld", "kldiv", "kldivergence", "klloss"})
_KL_WEIGHT_WORDS = frozenset({"beta", "klweight", "klw"})
_WEIGHT_WORDS = frozenset({"weight", "w", "coef", "coeff"})
_RECON_WORDS = frozenset(
    {"recon", "reconstruction", "reconst", "rec", "nll", "mse", "reconloss", "recloss"}
)
_LOSS_WORDS = {"loss": 0, "total": 0, "objective": 0, "elbo": 1, "nelbo": 1, "negelbo": 1}
#: Words that make a name about something else (learning rate, gradient norm, ...).
_OTHER_WORDS = frozenset(
    {"lr", "learning", "grad", "gradient", "norm", "best", "scale", "std", "min", "max",
     "time", "seconds", "acc", "accuracy", "active", "units"}
)
#: Preference among names for the same column, lower wins (see module docstring).
_KIND_RANK_EPOCH, _KIND_RANK_PLAIN, _KIND_RANK_STEP, _KIND_RANK_VARIANT = 0, 1, 2, 3
_STEP_WORDS = frozenset({"step", "steps", "iter", "iters", "iteration", "iterations", "batch"})
_VARIANT_WORDS = frozenset({"sum", "mean", "running", "avg"})

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_KL_DIM = re.compile(r"(?:^|_)kl_?dim_?([0-9]{1,6})(?:_|$)")
_TARGET_NAMES = {
    "loss": "loss", "recon": "reconstruction loss", "kl": "KL", "kl_weight": "KL weight (β)",
}


@dataclass(frozen=True)
class NameMatch:
    """The history column a source name would supply, and how strongly.

    Attributes
    ----------
    column
        History column (``train_recon``, ``val_kl_dim_003``, ``kl_weight``, ...);
        ``{split}_kl_global`` is added to ``{split}_kl`` by the caller.
    rank
        (kind, alias) preference, lower wins.
    """

    column: str
    rank: tuple[int, int]


def kl_global_column(split: str) -> str:
    """Column collecting scvi-tools' global KL, added to ``{split}_kl`` when non-zero."""
    return f"{split}_kl_global"


@functools.lru_cache(maxsize=4096)
def classify_name(name: str) -> NameMatch | None:
    """The history column ``name`` supplies by its words, or ``None``.

    >>> classify_name("reconstruction_loss_validation")
    NameMatch(column='val_recon', rank=(1, 0))
    """
    words = _words(name)
    if not words or _OTHER_WORDS.intersection(words):
        return None
    split = name_split(name) or "train"
    rank = _kind_rank(words)
    if _KL_WEIGHT_WORDS.intersection(words) or (
        _KL_WORDS.intersection(words) and _WEIGHT_WORDS.intersection(words)
    ):
        return NameMatch("kl_weight", (rank, 0))
    dim = _KL_DIM.search("_".join(words))
    if dim:
        return NameMatch(kl_dim_column(split, int(dim.group(1))), (rank, 0))
    if _KL_WORDS.intersection(words):
        column = kl_global_column(split) if "global" in words else f"{split}_kl"
        return NameMatch(column, (rank, 0))
    if _RECON_WORDS.intersection(words):
        return NameMatch(f"{split}_recon", (rank, 0))
    aliases = [_LOSS_WORDS[w] for w in words if w in _LOSS_WORDS]
    if aliases:
        return NameMatch(f"{split}_loss", (rank, min(aliases)))
    if all(w in SPLIT_WORDS for w in words):  # a bare "train: 0.5" or "val 0.6"
        return NameMatch(f"{split}_loss", (rank, 0))
    return None


@functools.lru_cache(maxsize=4096)
def name_split(name: str) -> str | None:
    """The split a name states (``elbo_validation`` -> ``"val"``), or ``None``."""
    return next((SPLIT_WORDS[w] for w in _words(name) if w in SPLIT_WORDS), None)


def epoch_column(
    names: Iterable[str], column_map: Mapping[str, str] | None, where: str
) -> str | None:
    """The column holding epoch numbers: ``--map epoch=...``, else ``epoch``/``epochs``."""
    names = list(names)
    if column_map and "epoch" in column_map:
        return _find_mapped(names, column_map["epoch"], "epoch", where)
    for wanted in ("epoch", "epochs"):
        found = [n for n in names if n.strip().lower() == wanted]
        if found:
            return found[0]
    return None


def resolve_columns(
    names: Iterable[str], column_map: Mapping[str, str] | None, where: str, *, strict: bool = True
) -> dict[str, str]:
    """Decide which source name supplies each history column.

    Parameters
    ----------
    names
        Metric names found in the source (without the epoch column).
    column_map
        ``--map`` overrides, keys in :data:`MAP_KEYS`, values source names. In text
        logs a name may also be given without its section, ``--map val_recon=rec``
        for ``val/rec``.
    where
        The file, for messages.
    strict
        Whether a ``--map`` name missing from ``names`` is an error. Text readers
        resolve each line's names on their own and check the map once, for the
        whole log; a mapped name missing from one line leaves that column empty.

    Returns
    -------
    dict
        History column -> source name.

    Raises
    ------
    GenevaeError
        For an unknown ``--map`` key, a mapped name that does not exist, or two
        equally preferred names for one column.
    """
    names = list(dict.fromkeys(names))
    chosen: dict[str, str] = {}
    reserved: set[str] = set()
    for key, source_name in (column_map or {}).items():
        if key not in MAP_KEYS:
            raise GenevaeError(
                f"--map {key}={source_name}: unknown key {key!r}; "
                f"use one of {', '.join(MAP_KEYS)}."
            )
        column = MAP_KEYS[key]
        if column == "epoch":
            continue
        reserved.add(column)
        split = column.split("_")[0] if column.startswith(("train_", "val_")) else ""
        found = _find_mapped(names, source_name, key, where, split, strict)
        if found is not None:
            chosen[column] = found
    taken = set(chosen.values())
    candidates: dict[str, list[tuple[tuple[int, int], str]]] = {}
    for name in names:
        match = classify_name(name)
        if name in taken or match is None or match.column in reserved:
            continue
        candidates.setdefault(match.column, []).append((match.rank, name))
    for column, ranked in candidates.items():
        best = min(rank for rank, _ in ranked)
        winners = [name for rank, name in ranked if rank == best]
        if len(winners) > 1:
            raise _ambiguity(column, winners, where)
        chosen[column] = winners[0]
    return chosen


def _words(name: str) -> tuple[str, ...]:
    spaced = _CAMEL.sub(r"\1_\2", name).lower()
    return tuple(w for w in _NON_ALNUM.split(spaced) if w)


def _kind_rank(words: tuple[str, ...]) -> int:
    if _VARIANT_WORDS.intersection(words):
        return _KIND_RANK_VARIANT
    if _STEP_WORDS.intersection(words):
        return _KIND_RANK_STEP
    if "epoch" in words or "epochs" in words:
        return _KIND_RANK_EPOCH
    return _KIND_RANK_PLAIN


def _find_mapped(
    names: list[str], wanted: str, key: str, where: str, split: str = "", strict: bool = True
) -> str | None:
    lowered = wanted.strip().lower()
    for accept in (
        lambda n: n == wanted,
        lambda n: n.lower() == lowered,
        lambda n: bool(split) and n.lower() == f"{split}/{lowered}",
    ):
        found = [n for n in names if accept(n)]
        if found:
            return found[0]
    if not strict:
        return None
    shown = ", ".join(repr(n) for n in names[:30]) or "none"
    raise GenevaeError(
        f"--map {key}={wanted}: {where} has no column or key {wanted!r}. Found: {shown}."
    )


def _ambiguity(column: str, names: list[str], where: str) -> GenevaeError:
    listed = ", ".join(repr(n) for n in names)
    key = next((k for k, c in MAP_KEYS.items() if c == column), None)
    if key is None:
        return GenevaeError(
            f"{where}: {len(names)} columns could be {column}: {listed}. "
            "Remove or rename all but one."
        )
    split, _, quantity = column.partition("_") if column != "kl_weight" else ("", "", column)
    what = _TARGET_NAMES[quantity]
    described = f"the {'validation' if split == 'val' else 'training'} {what}" if split else what
    return GenevaeError(
        f"{where}: {len(names)} columns could be {described}: {listed}. "
        f"Choose one with --map {key}=COLUMN, e.g. --map {key}={names[0]}."
    )
