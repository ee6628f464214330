"""The logistic regression behind the shipped probes (``scripts/train_intent_probe.fit``), and its stability term:
weights along directions that rounding moves cost more than along those only the content moves."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from train_intent_probe import fit, predict  # noqa: E402


def _data(n: int = 400, seed: int = 0):
    """Two features that both carry the label: the first plainly but moved by rounding (``noise``: the same items
    along another path), the second less plainly and untouched by it."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    sign = np.where(y, 1.0, -1.0)
    x = np.stack([2.0 * sign + rng.normal(0, 1, n), 1.0 * sign + rng.normal(0, 1, n), rng.normal(0, 1, n)], 1)
    noise = np.stack([rng.normal(0, 1.5, n), rng.normal(0, 0.01, n), rng.normal(0, 0.01, n)], 1)
    return x, y, noise


def _moves(params, x, noise):
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    return np.abs(logit(predict(params, x + noise)) - logit(predict(params, x)))


def test_without_the_stability_term_the_fit_is_plain_l2_logistic_regression():
    x, y, noise = _data()
    plain, zero = fit(x, y, 1.0), fit(x, y, 1.0, noise, 0.0)
    for a, b in zip(plain, zero):
        assert np.allclose(a, b)
    assert ((predict(plain, x) > 0.5) == y).mean() > 0.9
    assert abs(plain[2][0]) > abs(plain[2][1]) > abs(plain[2][2])  # leans on the plainer feature


def test_the_stability_term_moves_weight_off_what_rounding_moves_and_the_logit_moves_less():
    x, y, noise = _data()
    plain, stable = fit(x, y, 1.0), fit(x, y, 1.0, noise, 1.0)
    assert abs(stable[2][0]) < 0.5 * abs(plain[2][0]) and abs(stable[2][1]) > abs(plain[2][1])
    x2, y2, noise2 = _data(seed=1)  # held out: the move shrinks on items the fit never saw
    assert _moves(stable, x2, noise2).mean() < 0.5 * _moves(plain, x2, noise2).mean()
    assert ((predict(stable, x2) > 0.5) == y2).mean() > 0.8  # still reads the label, from the untouched feature
