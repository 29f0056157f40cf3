"""Stage 1 (ArmoRM): one linear head per attribute on the response's final state.

Ridge regression in closed form, with each attribute's penalty chosen by cross-validation
(scikit-learn's RidgeCV, leave-one-out) on the rows that rate it: a masked attribute takes no
part in its own fit. States are standardised first (the model's final states have a few huge
dimensions), and the result is folded back into one linear map on the head's standardisation.
`linear` trains the same heads by gradient on the masked squared error instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.errors import ConfigError
from rewardkit.methods.frozen_states import fit_head


@dataclass
class AttributeFit:
    weight: torch.Tensor  # (K, H) on standardised states
    bias: torch.Tensor  # (K,)
    alphas: dict[str, float]  # chosen penalty per attribute (ridge only)
    rows: dict[str, int]  # rows that rate each attribute


def require_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("multi-objective training needs scikit-learn: pip install 'rewardkit[multi]'") from None


def fit_ridge(z: torch.Tensor, targets: torch.Tensor, names: list[str], alphas: list[float]) -> AttributeFit:
    """`z`: (N, H) standardised states; `targets`: (N, K), NaN where not rated."""
    require_sklearn()
    from sklearn.linear_model import RidgeCV

    weight, bias = torch.zeros(len(names), z.shape[1]), torch.zeros(len(names))
    chosen, rows = {}, {}
    x = z.double().numpy()
    for k, name in enumerate(names):
        rated = ~torch.isnan(targets[:, k])
        rows[name] = int(rated.sum())
        if rows[name] < 3:
            raise ConfigError(f"attribute {name!r} is rated in only {rows[name]} rows; at least 3 are needed")
        model = RidgeCV(alphas=sorted(alphas)).fit(x[rated.numpy()], targets[rated, k].double().numpy())
        weight[k], bias[k], chosen[name] = torch.from_numpy(model.coef_).float(), float(model.intercept_), float(model.alpha_)
    return AttributeFit(weight, bias, chosen, rows)


def fit_linear(z: torch.Tensor, targets: torch.Tensor, names: list[str], *, steps: int, lr: float,
               weight_decay: float = 1e-3, seed: int = 0) -> AttributeFit:
    """Heads trained by Adam on the masked mean squared error (full batch)."""
    torch.manual_seed(seed)
    mask = ~torch.isnan(targets)
    filled = torch.nan_to_num(targets)
    layer = torch.nn.Linear(z.shape[1], len(names))

    def masked_error(index, generator):
        error = (layer(z) - filled) ** 2
        return ((error * mask).sum(0) / mask.sum(0).clamp(min=1)).sum()

    fit_head(layer.parameters(), masked_error, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed)
    rows = {n: int(mask[:, k].sum()) for k, n in enumerate(names)}
    return AttributeFit(layer.weight.detach().clone(), layer.bias.detach().clone(), {}, rows)


def decorrelation_lambdas(scores: torch.Tensor, target: torch.Tensor, skip: list[int]) -> torch.Tensor:
    """λ_k = cov(s_k, d) / var(d) on the given rows, so that s_k − λ_k d is uncorrelated with d
    there (ArmoRM's verbosity adjustment); 0 for the `skip` columns (d itself)."""
    centred = target - target.mean()
    variance = (centred ** 2).mean().clamp(min=1e-12)
    lambdas = ((scores - scores.mean(0)) * centred[:, None]).mean(0) / variance
    lambdas[skip] = 0.0
    return lambdas
