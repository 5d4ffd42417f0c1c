"""Hankel singular values of a 2-D heat equation from shifted solves, checked densely.

The system ``x' = A x + B u, y = C x`` is the heat equation on the unit square with
zero boundary temperature, discretised by the 5-point Laplacian on an m x m grid
(``A = -L / h^2``, ``n = m^2`` states), heated by one localised Gaussian source
``B`` and observed by one output ``C``, the mean temperature over the patch
``[0.6, 0.8]^2``.  The Gramians come from low-rank ADI on the sparse ``A`` (the
Krylov projection, with products only, is run beside it); the Hankel singular values
from the square-root method, with the balanced-truncation bound
``||G - G_r||_inf <= 2 sum_{i > r} sigma_i``.  At the small size the values are
checked against scipy's dense Lyapunov solver followed by the dense square-root
method, and the bound against the frequency response of the truncated model.

Run ``python examples/hankel_singular_values.py [--small] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

import spectra


def heat_system(m: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``(A, B, C)`` of the heat equation on an m x m grid (see the module notes)."""
    h = 1.0 / (m + 1)
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.identity(m)
    A = (-(sp.kron(T, eye) + sp.kron(eye, T)) / h**2).tocsr()
    x = np.arange(1, m + 1) * h
    X, Y = np.meshgrid(x, x, indexing="ij")
    b = np.exp(-((X - 0.3) ** 2 + (Y - 0.3) ** 2) / (2 * 0.05**2)).ravel()
    c = ((X > 0.6) & (X < 0.8) & (Y > 0.6) & (Y < 0.8)).ravel().astype(float)
    return A, (b / (b.sum() * h * h))[:, None], (c / c.sum())[None, :]


def dense_hsv(A: sp.csr_matrix, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """scipy's dense Lyapunov solves, then the square-root method on PSD factors."""
    Ad = A.toarray()
    factors = []
    for M, F in ((Ad, B), (Ad.T, C.T)):
        W = sla.solve_continuous_lyapunov(M, -F @ F.T)
        w, V = np.linalg.eigh((W + W.T) / 2)
        factors.append(V * np.sqrt(np.clip(w, 0, None)))
    return np.linalg.svd(factors[1].T @ factors[0], compute_uv=False)


def sampled_hinf_error(A, B, C, hsv, r: int, freqs: np.ndarray) -> float:
    """Largest ``|G(iw) - G_r(iw)|`` over ``freqs`` for the balanced truncation to order r."""
    Lc, Lo = hsv.controllability.factor, hsv.observability.factor
    U, s, Vt = np.linalg.svd(Lo.T @ Lc)
    T, W = Lc @ Vt[:r].T / np.sqrt(s[:r]), Lo @ U[:, :r] / np.sqrt(s[:r])
    Ar, Br, Cr = W.T @ (A @ T), W.T @ B, C @ T
    eye = sp.identity(A.shape[0], format="csc")
    err = 0.0
    for w in freqs:
        full = C @ sp.linalg.spsolve((1j * w * eye - A).tocsc(), B.astype(complex))
        red = Cr @ np.linalg.solve(1j * w * np.eye(r) - Ar, Br)
        err = max(err, float(np.abs(full.ravel() - red.ravel()).max()))
    return err


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a 20 x 20 grid (for the tests)")
    parser.add_argument("--out", type=Path, default=Path("out/examples"))
    args = parser.parse_args(argv)
    m = 20 if args.small else 100
    A, B, C = heat_system(m)
    t0 = time.perf_counter()
    hsv = spectra.hankel_singular_values(A, B, C, method="adi", rng=0)
    t_adi = time.perf_counter() - t0
    kry = spectra.hankel_singular_values(A, B, C, method="krylov", rng=0)
    top = hsv.values[:10]
    # The claims this example makes, checked.
    assert hsv.converged and kry.converged, (hsv.message, kry.message)
    assert np.allclose(kry.values[:10], top, rtol=1e-6), kry.values[:10] / top - 1
    ref, hinf = None, {}
    if args.small:
        ref = dense_hsv(A, B, C)
        k = int(np.sum(ref > 1e-9 * ref[0]))
        assert np.allclose(hsv.values[:k], ref[:k], rtol=1e-5), hsv.values[:k] / ref[:k] - 1
        freqs = np.concatenate([[0.0], np.logspace(0, 5, 40)])
        for r in (1, 2, 4):
            hinf[r] = sampled_hinf_error(A, B, C, hsv, r, freqs)
            assert hsv.values[r] * 0.5 <= hinf[r] <= hsv.error_bound(r), (r, hinf[r])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150, layout="constrained")
    shown = ref if ref is not None else kry.values
    shown = shown[shown > 1e-15 * shown[0]]  # the rest is rounding noise of the solvers
    spectra.plot.hankel_singular_values(
        hsv, ax, reference=shown,
        reference_label="dense scipy + square root" if ref is not None else "Krylov",
        title=f"2-D heat equation, {m}x{m} grid (n = {A.shape[0]:,}), SISO")
    if hinf:
        ax.plot(list(hinf), list(hinf.values()), "s", color=spectra.plot.COLORS["truth"],
                markersize=5, label="sampled $\\|G - G_r\\|_\\infty$")
        ax.legend(frameon=False, fontsize="small")
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "hankel_singular_values.png")
    plt.close(fig)
    print(f"n = {A.shape[0]}: top Hankel singular values {np.array2string(top[:5], precision=4)}"
          f"; ADI {t_adi:.2f} s ({hsv.num_solves} solves); bound for r = 5: "
          f"{hsv.error_bound(5):.3e}; sampled H-inf errors {hinf}")
    return {"values": hsv.values, "krylov": kry.values, "reference": ref, "hinf": hinf}


if __name__ == "__main__":
    main()
