"""The conditional VAE: shapes, the objective's conventions, free bits, IWAE, training, I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from genevae.config import ModelConfig
from genevae.model.likelihoods import FIXED_GAUSSIAN_VARIANCE
from genevae.model.networks import MLP, ConditionEncoder
from genevae.model.vae import VAE, LossOutput

N_GENES, N_LATENT, N_CELLS = 12, 3, 16
CATEGORIES_BY_KEYS = {0: [], 1: [3], 2: [4, 11]}  # 11 categories: embedding dim capped at 8


def _config(**overrides) -> ModelConfig:
    settings = {"n_latent": N_LATENT, "n_hidden": 16, "n_layers": 2, "dropout": 0.0}
    return ModelConfig(**(settings | overrides))


def _data(likelihood: str, n_categories: list[int], n_cells: int = N_CELLS, seed: int = 0):
    """x (n_cells, N_GENES), library (n_cells,), conditions (n_cells, n_keys)."""
    generator = torch.Generator().manual_seed(seed)
    if likelihood == "gaussian":
        x = torch.randn(n_cells, N_GENES, generator=generator)
    else:
        rates = torch.rand(n_cells, N_GENES, generator=generator) * 20
        x = torch.poisson(rates, generator=generator)
    conditions = (
        torch.stack(
            [torch.randint(0, n, (n_cells,), generator=generator) for n in n_categories], dim=1
        )
        if n_categories
        else torch.zeros(n_cells, 0, dtype=torch.long)
    )
    return x, x.sum(dim=1), conditions


def _model(
    likelihood: str = "nb", n_categories: list[int] | None = None, seed: int = 0, **overrides
) -> VAE:
    torch.manual_seed(seed)
    return VAE(N_GENES, n_categories or [], _config(likelihood=likelihood, **overrides))


# -- networks -------------------------------------------------------------------


def test_mlp_blocks() -> None:
    mlp = MLP(5, 7, n_layers=2, dropout=0.1, batch_norm=True)
    kinds = [type(m).__name__ for m in mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2
    assert mlp(torch.randn(4, 5)).shape == (4, 7)
    assert [type(m).__name__ for m in MLP(5, 7, 1, dropout=0.0, batch_norm=False)] == [
        "Linear",
        "ReLU",
    ]


def test_onehot_condition_features() -> None:
    encoder = ConditionEncoder([2, 3], "onehot")
    features = encoder(torch.tensor([[0, 2], [1, 0]]))
    expected = torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 1, 0, 0]])
    assert torch.equal(features, expected)
    assert encoder.n_output == 5


def test_embedding_condition_features() -> None:
    encoder = ConditionEncoder([3, 20], "embedding")
    assert [e.embedding_dim for e in encoder.embeddings] == [3, 8]
    assert encoder(torch.tensor([[0, 19], [2, 5]])).shape == (2, 11) == (2, encoder.n_output)


@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
def test_no_condition_keys_give_empty_features(encoding: str) -> None:
    encoder = ConditionEncoder([], encoding)
    assert encoder(torch.zeros(4, 0, dtype=torch.long)).shape == (4, 0)


def test_condition_codes_are_checked() -> None:
    encoder = ConditionEncoder([2, 3])
    with pytest.raises(ValueError, match="n_categories"):
        encoder(torch.tensor([[2, 0]]))  # key 0 has codes 0..1
    with pytest.raises(ValueError, match="shape"):
        encoder(torch.tensor([[0, 0, 0]]))


# -- shapes -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
@pytest.mark.parametrize("n_keys", [0, 1, 2])
@pytest.mark.parametrize("likelihood", ["nb", "zinb", "gaussian"])
def test_output_shapes(likelihood: str, n_keys: int, encoding: str) -> None:
    n_categories = CATEGORIES_BY_KEYS[n_keys]
    model = _model(
        likelihood, n_categories, condition_encoding=encoding, batch_norm=True, dropout=0.1
    )
    x, library, conditions = _data(likelihood, n_categories)
    out = model(x, library, conditions, kl_weight=1.0)
    assert isinstance(out, LossOutput)
    assert model.n_categories == tuple(n_categories) and model.n_genes == N_GENES
    assert out.objective.shape == ()
    assert out.reconstruction_loss.shape == (N_CELLS,)
    assert out.kl_local.shape == (N_CELLS,)
    assert out.kl_per_dim.shape == out.qz_mean.shape == out.qz_logvar.shape == (N_CELLS, N_LATENT)
    assert torch.isfinite(out.objective)
    model.eval()
    qz_mean, qz_logvar = model.encode(x, library, conditions)
    assert qz_mean.shape == qz_logvar.shape == (N_CELLS, N_LATENT)
    p_x = model.generative(qz_mean, library, conditions)
    assert p_x.batch_shape == (N_CELLS, N_GENES)
    assert model.decode_mean(qz_mean, library, conditions).shape == (N_CELLS, N_GENES)
    with torch.no_grad():
        iwae = model.importance_weighted_log_likelihood(x, library, conditions, n_importance=5)
    assert iwae.shape == (N_CELLS,) and torch.isfinite(iwae).all()


def test_count_mean_sums_to_library() -> None:
    model = _model("nb").eval()
    x, library, conditions = _data("nb", [])
    mean = model.decode_mean(torch.randn(N_CELLS, N_LATENT), library, conditions)
    torch.testing.assert_close(mean.sum(dim=1), library)


def test_empty_cell_gives_finite_loss() -> None:
    model = _model("zinb")
    x, library, conditions = _data("zinb", [])
    x[0], library[0] = 0.0, 0.0
    out = model(x, library, conditions, kl_weight=1.0)
    assert torch.isfinite(out.reconstruction_loss).all()
    out.objective.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# -- the objective ----------------------------------------------------------------


@pytest.mark.parametrize("free_bits", [0.0, 0.4])
@pytest.mark.parametrize("likelihood", ["nb", "zinb", "gaussian"])
def test_objective_formula(likelihood: str, free_bits: float) -> None:
    model = _model(likelihood, [3])
    x, library, conditions = _data(likelihood, [3])
    beta = 0.7
    for reduction in ("sum", "mean"):
        out = model.loss(x, library, conditions, beta, free_bits=free_bits, reduction=reduction)
        kl_floored = torch.clamp(out.kl_per_dim.mean(dim=0), min=free_bits)  # (n_latent,)
        if reduction == "sum":
            expected = out.reconstruction_loss.mean() + beta * kl_floored.sum()
        else:
            expected = out.reconstruction_loss.mean() / N_GENES + beta * kl_floored.sum() / N_LATENT
        torch.testing.assert_close(out.objective, expected)
        torch.testing.assert_close(out.kl_local, out.kl_per_dim.sum(dim=1))
        assert out.kl_weight == beta


def test_fixed_gaussian_reconstruction_is_squared_error_and_reference_convention() -> None:
    """recon = sum_g (x - mu)^2, the N(mu, 1/2) NLL less 1/2 log(pi) per gene; and the
    "mean" reduction reproduces the reference log: loss = MSE + 0.5 * mean KL."""
    model = _model("gaussian", [3], gaussian_variance="fixed").eval()
    x, library, conditions = _data("gaussian", [3])
    torch.manual_seed(3)
    out = model.loss(x, library, conditions, kl_weight=0.5, reduction="mean")
    torch.manual_seed(3)  # replay the same z
    qz_mean, qz_logvar = model.encode(x, library, conditions)
    z = qz_mean + torch.exp(0.5 * qz_logvar) * torch.randn_like(qz_mean)
    loc = model.decode_mean(z, library, conditions)  # (batch, n_genes)
    torch.testing.assert_close(out.reconstruction_loss, ((x - loc) ** 2).sum(dim=1))
    nll = -Normal(loc, math.sqrt(FIXED_GAUSSIAN_VARIANCE)).log_prob(x).sum(dim=1)
    torch.testing.assert_close(out.reconstruction_loss, nll - N_GENES * 0.5 * math.log(math.pi))
    mse = ((x - loc) ** 2).mean()
    torch.testing.assert_close(out.objective, mse + 0.5 * out.kl_per_dim.mean())


def test_learned_gaussian_reconstruction_is_exact_nll() -> None:
    model = _model("gaussian").eval()
    x, library, conditions = _data("gaussian", [])
    z = torch.randn(N_CELLS, N_LATENT)
    p_x = model.generative(z, library, conditions)
    expected = -Normal(p_x.mean, p_x.stddev).log_prob(x).sum(dim=1)
    torch.testing.assert_close(model.reconstruction_loss(p_x, x), expected)


def test_bad_reduction_and_free_bits_are_refused() -> None:
    model = _model("nb")
    x, library, conditions = _data("nb", [])
    with pytest.raises(ValueError, match="reduction"):
        model.loss(x, library, conditions, 1.0, reduction="median")
    with pytest.raises(ValueError, match="free_bits"):
        model.loss(x, library, conditions, 1.0, free_bits=-1.0)


# -- free bits --------------------------------------------------------------------


def _kl_gradient_on_heads(
    model: VAE, data, free_bits: float, beta: float = 2.0
) -> dict[str, torch.Tensor]:
    """Gradient of the objective's KL term on the posterior heads: grad(beta) - grad(0)."""

    def head_gradients(kl_weight: float) -> dict[str, torch.Tensor]:
        model.zero_grad()
        torch.manual_seed(11)  # the same z for both weights
        model.loss(*data, kl_weight=kl_weight, free_bits=free_bits).objective.backward()
        return {
            name: p.grad.clone()
            for name, p in model.named_parameters()
            if name.startswith(("qz_mean_head", "qz_logvar_head"))
        }

    with_kl, without_kl = head_gradients(beta), head_gradients(0.0)
    return {name: with_kl[name] - without_kl[name] for name in with_kl}


def test_free_bits_above_kl_removes_its_gradient() -> None:
    model = _model("nb", [3])
    data = _data("nb", [3])
    kl_per_dim = model.loss(*data, kl_weight=1.0).kl_per_dim.mean(dim=0)
    gradients = _kl_gradient_on_heads(model, data, free_bits=kl_per_dim.max().item() + 1.0)
    for name, gradient in gradients.items():
        assert torch.equal(gradient, torch.zeros_like(gradient)), name
    gradients = _kl_gradient_on_heads(model, data, free_bits=0.0)
    assert gradients["qz_mean_head.weight"].abs().max() > 1e-4


def test_free_bits_act_per_latent_dimension() -> None:
    model = _model("nb", [3])
    with torch.no_grad():  # spread the dimensions' KL: dim j's mean is scaled by j
        model.qz_mean_head.bias.copy_(torch.tensor([0.0, 1.0, 3.0]))
    data = _data("nb", [3])
    kl_per_dim = model.loss(*data, kl_weight=1.0).kl_per_dim.mean(dim=0)
    free_bits = kl_per_dim.median().item()
    below = kl_per_dim < free_bits
    assert below.any() and (~below).any()
    gradient = _kl_gradient_on_heads(model, data, free_bits)["qz_mean_head.bias"]  # (n_latent,)
    assert torch.all(gradient[below] == 0)
    assert torch.all(gradient[~below].abs() > 1e-6)


# -- importance-weighted bound ------------------------------------------------------


def test_iwae_is_tighter_than_elbo() -> None:
    model = _model("nb", [3]).eval()
    x, library, conditions = _data("nb", [3], n_cells=64)
    with torch.no_grad():
        torch.manual_seed(5)
        iwae = model.importance_weighted_log_likelihood(x, library, conditions, n_importance=50)
        elbos = []
        for _ in range(20):
            out = model.loss(x, library, conditions, kl_weight=1.0)
            elbos.append(-(out.reconstruction_loss + out.kl_local))
        elbo = torch.stack(elbos).mean(dim=0)  # (batch,)
    assert iwae.mean() > elbo.mean()


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_iwae_with_one_sample_is_an_elbo_estimate(likelihood: str) -> None:
    """E[IWAE_1] = ELBO. The loss uses the analytic KL, IWAE_1 a one-sample one: their
    means over 4,000 draws agree within 5 standard errors."""
    overrides = {"gaussian_variance": "fixed"} if likelihood == "gaussian" else {}
    model = _model(likelihood, [3], **overrides).eval()
    x, library, conditions = _data(likelihood, [3], n_cells=4)
    n_draws = 1000
    x, library, conditions = (
        x.repeat(n_draws, 1),
        library.repeat(n_draws),
        conditions.repeat(n_draws, 1),
    )
    with torch.no_grad():
        torch.manual_seed(9)
        iwae_1 = model.importance_weighted_log_likelihood(x, library, conditions, n_importance=1)
        out = model.loss(x, library, conditions, kl_weight=1.0)
    log_likelihood = -out.reconstruction_loss
    if likelihood == "gaussian":  # the loss drops 1/2 log(pi) per gene; the bound keeps it
        log_likelihood = log_likelihood - N_GENES * 0.5 * math.log(math.pi)
    elbo = log_likelihood - out.kl_local
    difference = iwae_1.mean() - elbo.mean()
    standard_error = math.sqrt(iwae_1.var() / iwae_1.numel() + elbo.var() / elbo.numel())
    assert abs(difference.item()) < 5 * standard_error, (difference.item(), standard_error)


# -- training, determinism, checkpoints ----------------------------------------------


def _synthetic_nb(n_cells: int = 256, seed: int = 0):
    """NB counts from 2 true factors: x ~ NB(library * softmax(W z), theta = 5)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_cells, 2))
    w = rng.normal(scale=1.5, size=(2, N_GENES))
    logits = z @ w
    scale = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    library = rng.integers(500, 1500, size=n_cells)[:, None]
    mu = library * scale
    x = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float32)
    return (
        torch.from_numpy(x),
        torch.from_numpy(x.sum(axis=1)),
        torch.zeros(n_cells, 0, dtype=torch.long),
    )


def test_adam_steps_reduce_the_loss() -> None:
    x, library, conditions = _synthetic_nb()
    model = _model("nb", n_latent=2, n_layers=1, n_hidden=32)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            torch.manual_seed(0)
            value = model.loss(x, library, conditions, kl_weight=1.0).objective.item()
        model.train()
        return value

    before = eval_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    for step in range(300):
        batch = slice((step % 4) * 64, (step % 4 + 1) * 64)
        optimizer.zero_grad()
        model.loss(x[batch], library[batch], conditions[batch], kl_weight=1.0).objective.backward()
        optimizer.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def test_encode_is_deterministic_in_eval_mode() -> None:
    model = _model("zinb", [3], dropout=0.5, batch_norm=True)
    x, library, conditions = _data("zinb", [3])
    model.train()
    model.loss(x, library, conditions, kl_weight=1.0)  # move the batch-norm running statistics
    assert not torch.equal(
        model.encode(x, library, conditions)[0], model.encode(x, library, conditions)[0]
    )
    model.eval()
    first, second = model.encode(x, library, conditions), model.encode(x, library, conditions)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize(
    ("likelihood", "encoding"), [("zinb", "embedding"), ("gaussian", "onehot")]
)
def test_state_dict_round_trip(tmp_path, likelihood: str, encoding: str) -> None:
    n_categories = [4, 11]
    model = _model(
        likelihood, n_categories, condition_encoding=encoding, batch_norm=True, dropout=0.2
    )
    x, library, conditions = _data(likelihood, n_categories)
    model.loss(x, library, conditions, kl_weight=1.0)  # train-mode pass: batch-norm statistics
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    restored = _model(
        likelihood, n_categories, seed=99, condition_encoding=encoding, batch_norm=True, dropout=0.2
    )
    restored.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    restored.eval()
    for original, loaded in zip(
        model.encode(x, library, conditions), restored.encode(x, library, conditions), strict=True
    ):
        assert torch.equal(original, loaded)
