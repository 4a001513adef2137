"""k-means and the adjusted Rand index in numpy: what `models.customers.segments` fits and measures
stability with (no scikit-learn, so the edge could refit if it ever had to)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def adjusted_rand_index(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Hubert and Arabie's adjusted Rand index of two labellings of the same items."""
    _, ia = np.unique(np.asarray(a), return_inverse=True)
    _, ib = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1.0)

    def pairs(v: F64) -> float:
        return float((v * (v - 1.0) / 2.0).sum())

    n = float(ia.size)
    index = pairs(table)
    rows, cols = pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / (n * (n - 1.0) / 2.0) if n > 1 else 0.0
    top = (rows + cols) / 2.0
    return 1.0 if top == expected else float((index - expected) / (top - expected))


def kmeans(
    z: F64, k: int, seed: int, n_init: int = 10, max_iter: int = 100
) -> tuple[F64, npt.NDArray[np.int64]]:
    """k-means (k-means++ starts, Lloyd iterations; the best of ``n_init`` by inertia), numpy only:
    (centres (k, f), labels). Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    best: tuple[float, F64, npt.NDArray[np.int64]] | None = None
    for _ in range(n_init):
        centres = _kmeans_plus_plus(z, k, rng)
        labels = nearest(z, centres)
        for _ in range(max_iter):
            counts = np.bincount(labels, minlength=k)
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, z)
            empty = counts == 0
            centres = np.where(empty[:, None], centres, sums / np.maximum(counts, 1)[:, None])
            if empty.any():  # restart an empty cluster at the point furthest from its centre
                far = np.argsort(((z - centres[labels]) ** 2).sum(1))[::-1][: int(empty.sum())]
                centres[empty] = z[far]
            new = nearest(z, centres)
            if np.array_equal(new, labels):
                break
            labels = new
        inertia = float(((z - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres, labels)
    assert best is not None
    return best[1], best[2]


def _kmeans_plus_plus(z: F64, k: int, rng: np.random.Generator) -> F64:
    centres = [z[rng.integers(z.shape[0])]]
    d2 = ((z - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        pick = rng.choice(z.shape[0], p=d2 / total) if total > 0 else rng.integers(z.shape[0])
        centres.append(z[pick])
        d2 = np.minimum(d2, ((z - z[pick]) ** 2).sum(1))
    return np.asarray(centres, dtype=np.float64)


def nearest(z: F64, centres: F64) -> npt.NDArray[np.int64]:
    d = (z**2).sum(1)[:, None] - 2.0 * z @ centres.T + (centres**2).sum(1)[None, :]
    return np.asarray(np.argmin(d, axis=1), dtype=np.int64)


def split_half_ari(z: F64, k: int, seed: int) -> float:
    """Fit on two random halves of the rows; ARI of the two fits' assignments of every row."""
    half = np.random.default_rng(seed).permutation(z.shape[0])
    a, b = half[: half.size // 2], half[half.size // 2 :]
    ca, _ = kmeans(z[a], k, seed)
    cb, _ = kmeans(z[b], k, seed + 1)
    return adjusted_rand_index(nearest(z, ca), nearest(z, cb))


def split_stability(z: F64, k: int, seed: int, rounds: int = 5) -> float:
    """The median split-half ARI over ``rounds`` random halvings."""
    return float(np.median([split_half_ari(z, k, seed * 1000 + r) for r in range(rounds)]))
