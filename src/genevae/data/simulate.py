"""Seeded synthetic expression data with a known answer.

:func:`simulate_bulk` reproduces the design of the reference run (5,000 bulk samples x
2,000 genes, 20 true factors, tissue / disease / batch effects, Gaussian noise, each
gene z-scored), and a negative-binomial counts version of the same samples.
:func:`simulate_sc` draws single-cell UMI counts with cell types, a continuous
program, batch effects and realistic library sizes and sparsity.

Both return :class:`anndata.AnnData` with the generating latent variables in
``obsm["true_latent"]`` and the parameters in ``uns["simulation"]``; neither writes files.

Why the bulk variance shares (reference README, "Facts about that example run"): the
reference preset minimises per-element MSE + 0.5 x KL averaged over 64 latent
dimensions, i.e. summed squared error + β' x summed KL with β' = 0.5 x 2000 / 64 ≈ 15.6.
That is a standard VAE with Gaussian noise variance σ² = β' / 2 ≈ 7.8 on the
summed scale. For a linear-Gaussian model (probabilistic PCA) a direction whose
covariance eigenvalue λ exceeds σ² stays active and carries KL = ½ ln(λ / σ²) nats.
With a latent share of 0.58 spread over 20 factors, λ ≈ 0.58 x 2000 / 20 ≈ 58, so
each factor carries ≈ ½ ln(58 / 7.8) ≈ 1.0 nat and all 20 are active; the shrunken
reconstruction leaves 20 x 7.8 / 2000 ≈ 0.08 of MSE per gene on top of the noise
share 0.17, so the MSE falls toward ≈ 0.25 (the conditions are given to the cVAE,
which removes their 0.25 share).
"""

from __future__ import annotations

import copy
import math

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from genevae.errors import GenevaeError

__all__ = [
    "simulate_bulk",
    "simulate_sc",
    "BULK_VARIANCE_SHARES",
    "FACTOR_STRENGTH_RANGE",
]

#: Share of each gene's variance on the continuous scale (before z-scoring, which
#: leaves them unchanged up to sampling error). See the module docstring.
BULK_VARIANCE_SHARES = {
    "latent": 0.58,
    "tissue": 0.14,
    "disease": 0.05,
    "batch": 0.06,
    "noise": 0.17,
}
#: Relative variance carried by the weakest and strongest true factor (evenly spaced).
FACTOR_STRENGTH_RANGE = (0.6, 1.4)

# Bulk counts: log-mean = baseline + COUNT_LOG_EFFECT_SCALE * linear predictor + log library.
COUNT_LOG_EFFECT_SCALE = 0.5  # predictor sd ≈ 0.9 -> typical fold changes ≈ 1.6x
COUNT_BASELINE_MEDIAN = 200.0  # counts; log-sd 1.2 puts 95% of genes in ≈ 20-2,000
COUNT_BASELINE_LOG_SD = 1.2
BULK_LIBRARY_LOG_SD = 0.3
BULK_DISPERSION_MEDIAN = 10.0  # NB θ (inverse overdispersion), log-sd 0.5
BULK_DISPERSION_LOG_SD = 0.5

# Single cell: median library = SC_UMIS_PER_GENE x n_genes (3,000 for 2,000 genes).
SC_UMIS_PER_GENE = 1.5
SC_LIBRARY_LOG_SD = 0.5
SC_ABUNDANCE_LOG_SD = 2.2  # spread of baseline gene abundance; sets the zero fraction
SC_DISPERSION_MEDIAN = 0.7
SC_DISPERSION_LOG_SD = 0.7
SC_MARKER_SHARE = 0.05  # genes carrying each cell type's profile
SC_MARKER_LFC = (2.0, 0.5)  # mean and sd of |log fold change|
SC_MARKER_UP_PROBABILITY = 0.8
SC_PROGRAM_SHARE = 0.05  # genes in the continuous program's module
SC_PROGRAM_LOADING = (1.0, 0.25)  # mean and sd of the module's log-rate per program unit
SC_BATCH_LOG_SHIFT_SD = 0.2
SC_TYPE_CONCENTRATION = 3.0  # Dirichlet concentration of cell-type proportions
_SC_CHUNK_CELLS = 2048  # cells drawn at once (bounds memory)


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise GenevaeError(f"{name}={value}: must be at least 1.")


def _names(prefix: str, n: int) -> list[str]:
    width = max(4, len(str(n - 1)))
    return [f"{prefix}_{i:0{width}d}" for i in range(n)]


def _categorical(prefix: str, codes: np.ndarray, n_levels: int) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=[f"{prefix}_{i}" for i in range(n_levels)])


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """NB(mean μ, inverse dispersion θ) as a Gamma-Poisson mixture: var = μ + μ²/θ."""
    rate = rng.gamma(shape=theta, scale=mean / theta)
    return rng.poisson(rate)


def _centred_effects(
    rng: np.random.Generator, n_levels: int, n_genes: int, share: float
) -> np.ndarray:
    """(n_levels, n_genes) effects whose variance over equally likely levels is ``share``.

    A single level carries no variance (all zeros).
    """
    effects = rng.standard_normal((n_levels, n_genes))
    effects -= effects.mean(axis=0)
    if n_levels == 1:
        return effects
    return effects * np.sqrt(share / effects.var(axis=0))


def simulate_bulk(
    n_samples: int = 5000,
    n_genes: int = 2000,
    n_factors: int = 20,
    n_tissues: int = 6,
    n_diseases: int = 3,
    n_batches: int = 10,
    seed: int = 0,
) -> tuple[ad.AnnData, ad.AnnData]:
    """Synthetic bulk RNA-seq: a continuous and a counts version of one design.

    Design, per sample i and gene g::

        z_i ~ N(0, I_K)                                  true latent, K = n_factors
        η_ig = z_i · W[:, g] + tissue[t_i, g] + disease[d_i, g] + batch[b_i, g]
        continuous: y_ig = η_ig + ε_ig,  ε ~ N(0, 0.17), then each gene z-scored
        counts:     c_ig ~ NB(μ_ig, θ_g),
                    log μ_ig = log baseline_g + 0.5 η_ig + log s_i

    Each gene's loadings are scaled so that its latent variance is exactly 0.58, and
    its tissue / disease / batch effects (centred, over equally likely levels) 0.14 /
    0.05 / 0.06: shares 0.58 latent, 0.25 conditions, 0.17 noise
    (:data:`BULK_VARIANCE_SHARES`). Factor k's loadings carry relative variance
    ``strength_k``, evenly spaced over :data:`FACTOR_STRENGTH_RANGE`. Levels are
    drawn uniformly and independently per sample. For counts, baseline_g is
    log-normal (median 200, log-sd 1.2), the size factor s_i log-normal (log-sd 0.3)
    and θ_g log-normal (median 10, log-sd 0.5).

    Returns
    -------
    continuous, counts
        Two AnnData of shape (n_samples, n_genes), dense float32 X (z-scores;
        integer counts), the same ``obs`` (categorical ``tissue``, ``disease``,
        ``batch``: ``"tissue_0"``, ...), ``obsm["true_latent"]`` = z (n_samples,
        n_factors) and ``uns["simulation"]`` with the parameters.
    """
    _check_positive(
        n_samples=n_samples,
        n_genes=n_genes,
        n_factors=n_factors,
        n_tissues=n_tissues,
        n_diseases=n_diseases,
        n_batches=n_batches,
    )
    if n_samples < 2:
        raise GenevaeError(f"n_samples={n_samples}: z-scoring genes needs at least 2 samples.")
    rng = np.random.default_rng(seed)
    shares = BULK_VARIANCE_SHARES
    strengths = np.linspace(*FACTOR_STRENGTH_RANGE, n_factors) if n_factors > 1 else np.ones(1)

    z = rng.standard_normal((n_samples, n_factors))
    loadings = rng.standard_normal((n_factors, n_genes)) * np.sqrt(strengths)[:, None]
    loadings *= np.sqrt(shares["latent"] / (loadings**2).sum(axis=0))  # (K, n_genes)
    predictor = z @ loadings  # (n_samples, n_genes)
    obs = pd.DataFrame(index=_names("sample", n_samples))
    for key, n_levels in (("tissue", n_tissues), ("disease", n_diseases), ("batch", n_batches)):
        codes = rng.integers(n_levels, size=n_samples)
        predictor += _centred_effects(rng, n_levels, n_genes, shares[key])[codes]
        obs[key] = _categorical(key, codes, n_levels)

    noisy = predictor + math.sqrt(shares["noise"]) * rng.standard_normal(predictor.shape)
    continuous = (noisy - noisy.mean(axis=0)) / noisy.std(axis=0)

    baseline = COUNT_BASELINE_MEDIAN * np.exp(COUNT_BASELINE_LOG_SD * rng.standard_normal(n_genes))
    size_factor = np.exp(BULK_LIBRARY_LOG_SD * rng.standard_normal(n_samples))
    theta = BULK_DISPERSION_MEDIAN * np.exp(BULK_DISPERSION_LOG_SD * rng.standard_normal(n_genes))
    mean = baseline * np.exp(COUNT_LOG_EFFECT_SCALE * predictor) * size_factor[:, None]
    counts = _negative_binomial(rng, mean, theta)

    parameters = {
        "kind": "bulk",
        "n_samples": n_samples,
        "n_genes": n_genes,
        "n_factors": n_factors,
        "n_tissues": n_tissues,
        "n_diseases": n_diseases,
        "n_batches": n_batches,
        "seed": seed,
        "variance_shares": dict(shares),
        "factor_strengths": [float(s) for s in strengths],
        "count_log_effect_scale": COUNT_LOG_EFFECT_SCALE,
        "count_baseline_median": COUNT_BASELINE_MEDIAN,
        "library_log_sd": BULK_LIBRARY_LOG_SD,
        "dispersion_median": BULK_DISPERSION_MEDIAN,
    }
    var_names = _names("gene", n_genes)

    def build(X: np.ndarray) -> ad.AnnData:
        adata = ad.AnnData(X.astype(np.float32), obs=obs.copy(), var=pd.DataFrame(index=var_names))
        adata.obsm["true_latent"] = z.astype(np.float32)
        adata.uns["simulation"] = copy.deepcopy(parameters)
        return adata

    return build(continuous), build(counts)


def simulate_sc(
    n_cells: int = 10000,
    n_genes: int = 2000,
    n_cell_types: int = 8,
    n_batches: int = 2,
    seed: int = 0,
) -> ad.AnnData:
    """Synthetic single-cell UMI counts (negative binomial).

    Design, per cell i and gene g::

        log r_ig = a_g + type_lfc[t_i, g] + program_i · module_g + batch_shift[b_i, g]
        μ_ig = L_i · r_ig / Σ_g' r_ig'            so E[library] = L_i
        c_ig ~ NB(μ_ig, θ_g)

    - a_g: baseline log-abundance, N(0, 2.2²): a few genes dominate, most are rare.
    - cell types t_i: proportions from Dirichlet(3, ..., 3); each type up- (80%) or
      down-regulates its own random 5% of genes by |LFC| ~ N(2, 0.5²) (natural log).
    - program_i ~ N(0, 1): a continuous state (e.g. activation) driving a module of
      5% of genes with loadings N(1, 0.25²) per unit.
    - batch_shift: per-batch, per-gene log shifts N(0, 0.2²); batches uniform.
    - L_i: log-normal, median 1.5 UMIs per gene (3,000 for 2,000 genes), log-sd 0.5.
    - θ_g: log-normal, median 0.7, log-sd 0.7 (strong overdispersion).

    About 72-78% of entries are zero for 60 to 2,000 genes (the median library scales
    with it).

    Returns
    -------
    anndata.AnnData
        (n_cells, n_genes); X scipy CSR float32 of integer counts, also in
        ``layers["counts"]``; ``obs``: ``cell_type`` and ``batch`` (categorical),
        ``program`` (float); ``obsm["true_latent"]`` (n_cells, 2): column 0 the
        program, column 1 log L_i (the library-size latent), as listed in
        ``uns["simulation"]["true_latent_columns"]``.
    """
    _check_positive(
        n_cells=n_cells, n_genes=n_genes, n_cell_types=n_cell_types, n_batches=n_batches
    )
    rng = np.random.default_rng(seed)
    log_abundance = SC_ABUNDANCE_LOG_SD * rng.standard_normal(n_genes)
    theta = SC_DISPERSION_MEDIAN * np.exp(SC_DISPERSION_LOG_SD * rng.standard_normal(n_genes))

    n_markers = max(1, round(SC_MARKER_SHARE * n_genes))
    type_lfc = np.zeros((n_cell_types, n_genes))
    for t in range(n_cell_types):
        genes = rng.choice(n_genes, size=n_markers, replace=False)
        sign = np.where(rng.random(n_markers) < SC_MARKER_UP_PROBABILITY, 1.0, -1.0)
        type_lfc[t, genes] = sign * np.abs(rng.normal(*SC_MARKER_LFC, size=n_markers))
    module = np.zeros(n_genes)
    module_genes = rng.choice(
        n_genes, size=max(1, round(SC_PROGRAM_SHARE * n_genes)), replace=False
    )
    module[module_genes] = rng.normal(*SC_PROGRAM_LOADING, size=len(module_genes))
    batch_shift = SC_BATCH_LOG_SHIFT_SD * rng.standard_normal((n_batches, n_genes))

    proportions = rng.dirichlet(np.full(n_cell_types, SC_TYPE_CONCENTRATION))
    cell_type = rng.choice(n_cell_types, size=n_cells, p=proportions)
    batch = rng.integers(n_batches, size=n_cells)
    program = rng.standard_normal(n_cells)
    log_library = math.log(SC_UMIS_PER_GENE * n_genes) + SC_LIBRARY_LOG_SD * rng.standard_normal(
        n_cells
    )

    blocks = []
    for start in range(0, n_cells, _SC_CHUNK_CELLS):
        rows = slice(start, start + _SC_CHUNK_CELLS)
        log_rate = (
            log_abundance
            + type_lfc[cell_type[rows]]
            + program[rows, None] * module
            + batch_shift[batch[rows]]
        )  # (chunk, n_genes)
        log_rate -= log_rate.max(axis=1, keepdims=True)
        rate = np.exp(log_rate)
        mean = np.exp(log_library[rows])[:, None] * rate / rate.sum(axis=1, keepdims=True)
        blocks.append(sp.csr_matrix(_negative_binomial(rng, mean, theta).astype(np.float32)))
    X = sp.vstack(blocks, format="csr")

    obs = pd.DataFrame(
        {
            "cell_type": _categorical("type", cell_type, n_cell_types),
            "batch": _categorical("batch", batch, n_batches),
            "program": program.astype(np.float32),
        },
        index=_names("cell", n_cells),
    )
    adata = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=_names("gene", n_genes)))
    adata.layers["counts"] = X.copy()
    adata.obsm["true_latent"] = np.column_stack([program, log_library]).astype(np.float32)
    adata.uns["simulation"] = {
        "kind": "single_cell",
        "n_cells": n_cells,
        "n_genes": n_genes,
        "n_cell_types": n_cell_types,
        "n_batches": n_batches,
        "seed": seed,
        "true_latent_columns": ["program", "log_library"],
        "cell_type_proportions": [float(p) for p in proportions],
        "umis_per_gene": SC_UMIS_PER_GENE,
        "library_log_sd": SC_LIBRARY_LOG_SD,
        "abundance_log_sd": SC_ABUNDANCE_LOG_SD,
        "dispersion_median": SC_DISPERSION_MEDIAN,
        "marker_share": SC_MARKER_SHARE,
        "program_share": SC_PROGRAM_SHARE,
        "batch_log_shift_sd": SC_BATCH_LOG_SHIFT_SD,
    }
    return adata
