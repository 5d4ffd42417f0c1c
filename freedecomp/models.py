r"""Models of a sample's spectral law that can be decompressed exactly.

Each model is fitted to standardised eigenvalues :math:`y = (x - \mu)/s` (free
decompression commutes with affine maps: :math:`\kappa_1` is kept and
:math:`\kappa_k \to \alpha^{k-1}\kappa_k`) and exposes ``solve(alpha, x)``, the
Stieltjes transform of the decompressed law at ``x + i0``, through the one
Newton-homotopy solver (:func:`track_roots`).

``rational``
    Padé :math:`[L/M]` model of the R-transform from free cumulants; decompression is
    :math:`R_N(w) = R_n(\alpha w)`. The curve is :math:`z G q(G) - G p(G) - q(G) = 0`.
    ``[0/1]`` is the free Poisson law of the sample's mean and variance.
``algebraic``
    Spectral curve :math:`P(z, m) = \sum c_{ij} z^i m^j = 0` fitted by constrained least
    squares (exact low-order Laurent moments, empirical :math:`m` on contours in
    :math:`\mathbb C^+`); decompressed along
    :math:`Q(z, m) = m^{d_z} P(z + (1 - 1/\alpha)/m, \alpha m)`.
``chebyshev``
    Free-form density :math:`\rho(t) = \tfrac{2}{\pi}\sqrt{1-t^2}\sum_k c_k U_k(t)` whose
    Stieltjes transform is a polynomial in the Joukowski variable ``J``; the second sheet
    is ``J -> 1/J``, so the characteristic map :math:`z = z_0 + (1-\alpha)/m_0(z_0)` is
    a polynomial equation in ``J``.
``population``
    For Gram matrices (the deformed Marchenko-Pastur law,
    :class:`freedecomp.laws.DeformedMarchenkoPastur`): the population law fitted by
    non-negative least squares on the Silverstein equation (:func:`fit_population`).

References
----------
.. [1] S. Ameli, C. van der Heide, L. Hodgkinson and M. W. Mahoney, "Free decompression
   with algebraic spectral curves", arXiv:2605.03634, 2026.
.. [2] A. Nica and R. Speicher, *Lectures on the Combinatorics of Free Probability*, 2006.
.. [3] N. El Karoui, "Spectrum estimation for large dimensional covariance matrices
   using random matrix theory", Ann. Statist. 36(6), 2008.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
from numpy.polynomial import polynomial as npp

__all__ = [
    "CurveModel",
    "decompress_curve",
    "fit_algebraic",
    "fit_chebyshev",
    "fit_population",
    "fit_rational",
    "free_cumulants",
    "track_roots",
]

LEVELS, NEWTON, ETA_TOP, ETA_BOTTOM = 100, 4, 30.0, 1e-11
PARALLEL_MIN = 4096


def track_roots(C: np.ndarray, x: np.ndarray, u0: np.ndarray, eta_hi: float, eta_lo: float,
                *, kind: int = 0, t: np.ndarray | None = None, w: np.ndarray | None = None,
                c: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Run the compiled Newton homotopy (``freedecomp._homotopy.homotopy_solve``).

    Grids of fewer than ``PARALLEL_MIN`` points use the single-threaded twin: measured on
    the shared 2-core machine, waking the worker threads cost 2-16 ms per call, more than
    a 256-point validation solve takes in one thread (about 3 ms). Numba is loaded here,
    on the first solve, so that importing :mod:`freedecomp` stays light.
    """
    from . import _homotopy  # Numba: loaded on first use (start-up time)

    e = np.zeros(1)
    x = np.ascontiguousarray(x, float)
    solver = _homotopy.homotopy_solve if x.size >= PARALLEL_MIN else \
        _homotopy.homotopy_solve_serial
    return solver(
        kind, np.ascontiguousarray(C, dtype=np.complex128),
        e if t is None else np.ascontiguousarray(t, float),
        e if w is None else np.ascontiguousarray(w, float), float(c),
        x, np.ascontiguousarray(u0, np.complex128),
        float(eta_hi), float(eta_lo), LEVELS, NEWTON, 1e-15,
    )


def free_cumulants(moments: np.ndarray) -> np.ndarray:
    r"""Free cumulants :math:`\kappa_1..\kappa_K` from moments :math:`\mu_0=1, \mu_1..\mu_K`.

    Uses :math:`M(z) = 1 + \sum_k \kappa_k z^k M(z)^k` with
    :math:`M(z) = \sum_k \mu_k z^k`, solved order by order.
    """
    mu = np.asarray(moments, float)
    K = mu.size - 1
    kappa = np.zeros(K + 1)
    powers = [np.eye(1, K + 1, 0).ravel()]  # M^0
    for _ in range(1, K + 1):
        powers.append(np.convolve(powers[-1], mu)[: K + 1])
    for k in range(1, K + 1):
        kappa[k] = mu[k] - sum(kappa[j] * powers[j][k - j] for j in range(1, k))
    return kappa[1:]


def decompress_curve(C: np.ndarray, alpha: float) -> np.ndarray:
    r"""Coefficients of :math:`m^{d_z} P(z + (1 - 1/\alpha)/m, \alpha m)`.

    Parameters
    ----------
    C : ndarray, shape ``(dz + 1, dm + 1)``
        ``P(z, m) = sum C[i, j] z^i m^j``.
    alpha : float
        Decompression ratio ``N/n >= 1``.

    Returns
    -------
    ndarray, shape ``(dz + 1, dm + dz + 1)``
    """
    dz, dm = C.shape[0] - 1, C.shape[1] - 1
    s = 1.0 - 1.0 / alpha
    D = np.zeros((dz + 1, dm + dz + 1), dtype=C.dtype)
    for i in range(dz + 1):
        for j in range(dm + 1):
            if C[i, j] == 0:
                continue
            for ll in range(i + 1):
                D[ll, j + dz - i + ll] += C[i, j] * alpha**j * comb(i, ll) * s ** (i - ll)
    return D


@dataclass(frozen=True, eq=False)
class CurveModel:
    """A fitted model in standardised coordinates ``y = (x - shift) / scale``.

    Attributes
    ----------
    name : str
        ``"rational[L/M]"`` (``[0/1]``: the free Poisson law), ``"algebraic(dz,dm)"`` or
        ``"chebyshev(K)"``.
    complexity : int
        Number of free parameters (simplest first in order selection).
    C : ndarray
        Curve coefficients in ``(y, m)`` (rational, algebraic) or Chebyshev
        coefficients ``c_k`` (chebyshev).
    shift, scale : float
        Affine map back to the original coordinates.
    family : str
        ``"curve"`` or ``"chebyshev"``.
    center, half : float
        Chebyshev interval ``[center - half, center + half]`` in ``y``.
    """

    name: str
    complexity: int
    C: np.ndarray
    shift: float
    scale: float
    family: str = "curve"
    center: float = 0.0
    half: float = 1.0
    info: dict = field(default_factory=dict)

    def _equation(self, alpha: float) -> np.ndarray:
        if self.family == "curve":
            return decompress_curve(self.C, alpha)
        p = self.C
        E = np.zeros((2, p.size + 2))
        E[1, 1 : p.size + 1] = 2 * p
        E[0, : p.size] -= p
        E[0, 2 : p.size + 2] -= p
        E[0, 0] += 1.0 - alpha
        return E

    def solve(self, alpha: float, x: np.ndarray, eta: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Stieltjes transform of the decompressed law at ``x + i eta`` (original units).

        Returns
        -------
        m : complex ndarray
            ``m_N(x + i eta)``; ``eta`` defaults to ``1e-10`` standard deviations.
        residual : float ndarray
            Relative residual of the polynomial equation at the root.
        """
        sd = np.sqrt(alpha)
        y = (np.asarray(x, float) - self.shift) / self.scale
        eta_lo = ETA_BOTTOM * sd if eta is None else eta / self.scale
        E = self._equation(alpha)
        if self.family == "curve":
            z0 = y + 1j * ETA_TOP * sd
            m, res = track_roots(E, y, -1.0 / z0, ETA_TOP * sd, eta_lo)
            bad = ~(res < 1e-10)
            if bad.any():  # retry the few failures stopping higher above the axis
                m[bad], res[bad] = track_roots(E, y[bad], -1.0 / z0[bad], ETA_TOP * sd,
                                               100 * eta_lo)
            m = self._polish(m, y + 1j * eta_lo, alpha)
        else:
            h = self.half
            zeta = (y - self.center) / h
            z0 = zeta + 1j * ETA_TOP * sd / h
            J, res = track_roots(E, zeta, alpha / (2.0 * z0), ETA_TOP * sd / h, eta_lo / h)
            m = -(2.0 / (h * alpha)) * J * np.polynomial.polynomial.polyval(J, self.C)
        return m / self.scale, res

    def _polish(self, m: np.ndarray, z: np.ndarray, alpha: float) -> np.ndarray:
        """Newton steps on the unexpanded ``P(z + (1 - 1/alpha)/m, alpha m)``.

        The expanded decompressed polynomial loses digits near square-root edges for
        large ``alpha``; the composed form keeps them (only small corrections are applied).
        """
        s = 1.0 - 1.0 / alpha
        if "dC" not in self.info:
            self.info["dC"] = (npp.polyder(self.C, axis=0), npp.polyder(self.C, axis=1))
        Cw, Cm = self.info["dC"]
        with np.errstate(all="ignore"):
            for _ in range(3):
                w, mm = z + s / m, alpha * m
                f = npp.polyval2d(w, mm, self.C)
                df = npp.polyval2d(w, mm, Cw) * (-s / m**2) + alpha * npp.polyval2d(w, mm, Cm)
                step = f / df
                small = np.isfinite(step) & (np.abs(step) < 1e-6 * np.abs(m))
                m = np.where(small, m - step, m)
        return m

    def atoms(self, alpha: float) -> list[tuple[float, float]]:
        """Atoms of the decompressed law.

        Candidates are real zeros of the leading ``m`` coefficient; an atom is kept
        where ``eta Im m(x0 + i eta)`` tends to a positive mass.
        """
        if self.family != "curve":
            return []
        E = decompress_curve(self.C, alpha)
        norm = np.abs(E).max()
        cols = [j for j in range(E.shape[1]) if np.abs(E[:, j]).max() > 1e-12 * norm]
        lead = np.trim_zeros(E[:, max(cols)], "b")
        if lead.size <= 1:
            return []
        out = []
        sd = np.sqrt(alpha)
        for r in np.roots(lead[::-1]):
            if abs(r.imag) > 1e-8 * sd:
                continue
            x0 = self.shift + self.scale * r.real
            masses = []
            for eta in (1e-7, 1e-8):
                m, _ = self.solve(alpha, np.array([x0]), eta=eta * sd * self.scale)
                masses.append(float(eta * sd * self.scale * m[0].imag))
            if masses[1] > 1e-6 and abs(masses[0] - masses[1]) < 1e-3:
                out.append((float(x0), masses[1]))
        return out


def _pade(r: np.ndarray, L: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Padé ``[L/M]`` coefficients ``(p, q)`` (``q[0] = 1``) of the series ``sum r_k w^k``."""
    q = np.ones(1)
    if M > 0:
        A = np.array([[r[L + i - j] if L + i - j >= 0 else 0.0 for j in range(1, M + 1)]
                      for i in range(1, M + 1)])
        b = -np.array([r[L + i] for i in range(1, M + 1)])
        sol, *_ = np.linalg.lstsq(A, b, rcond=1e-12)
        q = np.concatenate([[1.0], sol])
    p = np.array([sum(q[j] * r[i - j] for j in range(min(i, M) + 1)) for i in range(L + 1)])
    return p, q


def _standardise(eigs: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, s = float(eigs.mean()), float(eigs.std())
    return (eigs - mu) / s, mu, s


def fit_rational(eigs: np.ndarray, L: int, M: int) -> CurveModel:
    r"""Padé ``[L/M]`` model of the R-transform :math:`R(w) = \sum_k \kappa_{k+1} w^k`.

    The Padé approximant is taken in standardised coordinates (``kappa_1 = 0``,
    ``kappa_2 = 1``), except for ``[0/1]``, which is taken in the original coordinates:
    :math:`R(w) = \kappa_1 / (1 - (\kappa_2/\kappa_1) w)`, the free Poisson law (a
    scaled Marchenko-Pastur law, or its mirror image for a negative mean) fixed by the
    mean and the variance alone. In standardised coordinates it is ``[1/1]`` with
    :math:`\kappa_3 = s/\mu` in place of the sample's third free cumulant, whose
    ``O(1/n)`` noise the flow amplifies (:doc:`/theory/free_decompression`).
    """
    y, mu, s = _standardise(eigs)
    if (L, M) == (0, 1):
        if not mu != 0.0:
            raise ValueError("the free Poisson model rational[0/1] needs a nonzero mean")
        p, q = np.array([0.0, 1.0]), np.array([1.0, -s / mu])
        return _rational_curve(p, q, 0, 1, mu, s)
    K = L + M + 1
    moments = np.array([np.mean(y**k) for k in range(K + 1)])
    kappa = free_cumulants(moments)
    kappa[0], kappa[1] = 0.0, 1.0
    p, q = _pade(kappa, L, M)
    return _rational_curve(p, q, L, M, mu, s)


def _rational_curve(p: np.ndarray, q: np.ndarray, L: int, M: int, mu: float, s: float
                    ) -> CurveModel:
    """The curve ``z G q(G) - G p(G) - q(G) = 0`` of the R-transform ``p/q`` (``G = -m``)."""
    C = np.zeros((2, max(M + 2, len(p) + 1)))
    sign = (-1.0) ** np.arange(C.shape[1])  # G = -m
    for j, qj in enumerate(q):
        C[1, j + 1] += qj * sign[j + 1]
        C[0, j] -= qj * sign[j]
    for i, pi in enumerate(p):
        C[0, i + 1] -= pi * sign[i + 1]
    return CurveModel(f"rational[{L}/{M}]", L + M - 1, C, mu, s, info={"p": p, "q": q})


def _laurent_constraints(dz: int, dm: int, moments: np.ndarray, count: int) -> np.ndarray:
    """Rows forcing the top ``count`` Laurent coefficients of ``P(z, m(z))`` to vanish.

    Uses ``m = -sum mu_k z^(-k-1)``; the coefficients run from ``z^dz`` downwards.
    """
    S = [np.eye(1, moments.size, 0).ravel()]
    for _ in range(dm):
        S.append(np.convolve(S[-1], moments)[: moments.size])
    B = np.zeros((count, (dz + 1) * (dm + 1)))
    for row, pw in enumerate(range(dz, dz - count, -1)):
        for i in range(dz + 1):
            for j in range(dm + 1):
                k = i - j - pw
                if 0 <= k < moments.size:
                    B[row, i * (dm + 1) + j] = (-1.0) ** j * S[j][k]
    return B


def fit_algebraic(eigs: np.ndarray, dz: int, dm: int, constraints: int = 4) -> CurveModel:
    """Constrained least-squares fit of a real spectral curve of degrees ``(dz, dm)``."""
    y, mu, s = _standardise(eigs)
    lo, hi = float(y.min()), float(y.max())
    c0, a = 0.5 * (lo + hi), 0.5 * (hi - lo) + 0.5
    th = np.linspace(0.05, np.pi - 0.05, 48)
    z = np.concatenate([c0 + (a * k) * np.cos(th) + 1j * b * np.sin(th)
                        for k, b in ((1.0, 0.6), (1.3, 1.2), (1.8, 2.5))])
    m = np.mean(1.0 / (y[None, :] - z[:, None]), axis=1)
    cols = [(z**i) * (m**j) for i in range(dz + 1) for j in range(dm + 1)]
    A = np.stack(cols, axis=1) / (1.0 + np.abs(z[:, None])) ** dz
    A = np.concatenate([A.real, A.imag])
    moments = np.array([np.mean(y**k) for k in range(constraints + 1)])
    B = _laurent_constraints(dz, dm, moments, constraints)
    _, sv, Vt = np.linalg.svd(B)
    rank = int(np.sum(sv > 1e-10 * sv[0]))
    N = Vt[rank:].T
    _, _, Wt = np.linalg.svd(A @ N, full_matrices=False)
    c = N @ Wt[-1]
    C = c.reshape(dz + 1, dm + 1)
    return CurveModel(f"algebraic({dz},{dm})", C.size - 1 - rank, C / np.abs(C).max(), mu, s)


def chebyshev_u_basis(y: np.ndarray, K: int, *, pad: float) -> tuple[float, float, np.ndarray]:
    """``U_0..U_K`` (Chebyshev, second kind) at ``y`` mapped to an interval ``pad`` wider.

    Returns ``(center, half, U)`` with ``t = (y - center) / half`` in ``(-1, 1)`` and ``U`` of
    shape ``(K + 1, y.size)`` by the three-term recurrence ``U_k = 2 t U_{k-1} - U_{k-2}``.
    """
    lo, hi = float(y.min()), float(y.max())
    center, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * (1 + 2 * pad) + 1e-12
    t = (y - center) / half
    U = np.zeros((K + 1, t.size))
    U[0] = 1.0
    if K >= 1:
        U[1] = 2 * t
    for k in range(2, K + 1):
        U[k] = 2 * t * U[k - 1] - U[k - 2]
    return center, half, U


def fit_chebyshev(eigs: np.ndarray, K: int) -> CurveModel:
    r"""Chebyshev-II density fit with square-root edges (the free-form path).

    ``c_k = mean U_k(t_i)`` on an interval slightly wider than the sample, with
    Jackson damping so that the truncated density stays close to non-negative.
    """
    y, mu, s = _standardise(eigs)
    center, half, U = chebyshev_u_basis(y, K, pad=0.02)
    coef = U.mean(axis=1)
    k = np.arange(K + 1)
    g = ((K - k + 2) * np.cos(np.pi * k / (K + 2))
         + np.sin(np.pi * k / (K + 2)) / np.tan(np.pi / (K + 2))) / (K + 2)
    return CurveModel(f"chebyshev({K})", K, coef * g, mu, s, family="chebyshev",
                      center=center, half=half)


def fit_population(eigs: np.ndarray, ratio: float, num_atoms: int = 150
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Population atoms and weights by NNLS on the Silverstein equation.

    Returns
    -------
    t, w : ndarray
        Atoms (positive) and weights (summing to one) of the estimated population.
    residual : float
        Relative least-squares residual.
    """
    from scipy.optimize import nnls  # scipy: loaded on first use (start-up time)

    e = np.asarray(eigs, float)
    lo, hi = max(float(e.min()), 1e-3 * float(e.max())), float(e.max())
    width = hi - lo
    x = np.linspace(lo - 0.1 * width, hi + 0.1 * width, 80)
    z = np.concatenate([x + 1j * s * width for s in (0.03, 0.1, 0.3, 1.0)])
    mz = np.mean(1.0 / (e[None, :] - z[:, None]), axis=1)
    v = -(1 - ratio) / z + ratio * mz
    t = np.linspace(0.7 * lo, 1.1 * hi, num_atoms)
    lhs = z + 1.0 / v
    A = ratio * t[None, :] / (1.0 + t[None, :] * v[:, None])
    scale = 1.0 / (np.abs(lhs) + 1e-12)
    Ar = np.concatenate([(A * scale[:, None]).real, (A * scale[:, None]).imag,
                         1e3 * np.ones((1, t.size))])
    br = np.concatenate([(lhs * scale).real, (lhs * scale).imag, [1e3]])
    w, rnorm = nnls(Ar, br, maxiter=50 * t.size)
    keep = w > 1e-6 * w.max()
    t, w = t[keep], w[keep] / w[keep].sum()
    return t, w, float(rnorm / np.linalg.norm(br))
