r"""The quadratic laws: closed-form spectral laws and their exact free-decompression maps.

Every law here has a Stieltjes transform
:math:`m(z) = \int \rho(x)/(x - z)\,dx` that solves a quadratic

.. math:: Q(z)\,m^2 + P(z)\,m + 1 = 0, \qquad P^2 - 4Q = \kappa (z - e_-)(z - e_+),

with :math:`Q` of degree at most two and :math:`P` of degree at most one. The
physical (first-sheet) root is :math:`m_1 = 2/(-P - \sqrt{D})` with
:math:`\sqrt{D} = \sqrt{\kappa}\sqrt{z-e_-}\sqrt{z-e_+}` (principal branches), which
is analytic off :math:`[e_-, e_+]` and behaves like :math:`-1/z`; the second sheet is
:math:`m_2 = 2/(-P + \sqrt{D})`. Atoms sit at real zeros of :math:`Q` where
:math:`m_1` has a pole.

Free decompression by :math:`\alpha = N/n` multiplies the :math:`k`-th free cumulant
by :math:`\alpha^{k-1}` (:doc:`/theory/free_decompression`); each law's :meth:`decompressed`
returns the law with the transformed parameters.

References
----------
.. [1] A. Nica and R. Speicher, *Lectures on the Combinatorics of Free Probability*,
   Cambridge University Press, 2006, Lecture 14.
.. [2] S. Ameli, C. van der Heide, L. Hodgkinson and M. W. Mahoney, "Spectral estimation
   with free decompression", arXiv:2506.11994, 2025.
.. [3] M. Anshelevich, "Free martingale polynomials", J. Funct. Anal. 201, 2003
   (free Meixner laws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.probes import as_rng
from spectra.results import SpectralDensity
from spectra.validation import check_choice, check_float, check_int

__all__ = [
    "FreeMeixner",
    "KestenMcKay",
    "MarchenkoPastur",
    "QuadraticLaw",
    "Wachter",
    "Wigner",
    "haar_orthogonal",
    "wishart",
]


def haar_orthogonal(n: int, rng: Any = None) -> np.ndarray:
    """Haar-distributed ``n x n`` orthogonal matrix (QR with sign correction, Mezzadri 2007)."""
    g = as_rng(rng)
    Q, R = np.linalg.qr(g.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def wishart(n: int, dof: int, rng: Any = None) -> np.ndarray:
    r"""Exact ``n x n`` white Wishart matrix :math:`X X^T` with ``X`` of shape ``(n, dof)``.

    Uses the Bartlett decomposition (``O(n^3)``, independent of ``dof``) when
    ``dof >= n`` and the explicit product otherwise.
    """
    g = as_rng(rng)
    if dof < n:
        X = g.standard_normal((n, dof))
        return X @ X.T
    L = np.tril(g.standard_normal((n, n)), -1)
    L[np.diag_indices(n)] = np.sqrt(g.chisquare(dof - np.arange(n)))
    W = L @ L.T
    return 0.5 * (W + W.T)


def _poly(c: Any, z: Any) -> Any:
    """Evaluate the polynomial with ascending coefficients ``c`` at ``z``."""
    out = np.zeros_like(z) if np.ndim(z) else 0.0 * z
    for ck in reversed(list(c)):
        out = out * z + ck
    return out


class QuadraticLaw:
    """Base class of the laws whose Stieltjes transform solves ``Q m^2 + P m + 1 = 0``.

    Subclasses define :meth:`_coefficients` returning ``(Q, P, kappa, (e_minus, e_plus))``
    in the law's own variable (ascending polynomial coefficients).
    """

    name = "law"

    def _coefficients(self) -> tuple[np.ndarray, np.ndarray, float, tuple[float, float]]:
        raise NotImplementedError

    # -- analytic structure ---------------------------------------------------------
    @property
    def support(self) -> tuple[float, float]:
        """Interval ``(e_-, e_+)`` carrying the absolutely continuous part."""
        return tuple(float(e) for e in self._coefficients()[3])  # type: ignore[return-value]

    def curve(self) -> np.ndarray:
        """Coefficients ``C[i, j]`` of the spectral curve ``sum C[i,j] z^i m^j = 0``."""
        Q, P, _, _ = self._coefficients()
        C = np.zeros((3, 3))
        C[0, 0] = 1.0
        C[: len(P), 1] = P
        C[: len(Q), 2] = Q
        return C

    def _sqrt_disc(self, z: np.ndarray) -> np.ndarray:
        _, _, kappa, (lo, hi) = self._coefficients()
        return np.sqrt(kappa) * np.sqrt(z - lo) * np.sqrt(z - hi)

    def stieltjes(self, z: Any, sheet: int = 1) -> np.ndarray:
        r"""Stieltjes transform :math:`m(z) = \int \rho(x)/(x-z)\,dx` on sheet 1 or 2.

        Parameters
        ----------
        z : array_like of complex
            Evaluation points off the support (sheet 1), or anywhere (sheet 2).
        sheet : {1, 2}
            ``1``: the physical branch (Herglotz, ``~ -1/z``); ``2``: its analytic
            continuation through the support cut.

        Returns
        -------
        ndarray of complex
        """
        check_choice(sheet, "sheet", (1, 2))
        z = np.asarray(z, dtype=complex)
        Q, P, _, _ = self._coefficients()
        s = self._sqrt_disc(z)
        # physical sheet: branch ~ z at infinity in every direction (product of roots);
        # in C^- use conjugate symmetry so that the cut stays on the support
        s = np.where(z.imag < 0, np.conj(self._sqrt_disc(np.conj(z))), s)
        den = -_poly(P, z) - (s if sheet == 1 else -s)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 / den

    def density(self, x: Any) -> np.ndarray:
        """Density of the absolutely continuous part at real ``x`` (atoms excluded)."""
        x = np.asarray(x, dtype=float)
        Q, _, kappa, (lo, hi) = self._coefficients()
        inside = (x > lo) & (x < hi)
        r = np.sqrt(np.clip((x - lo) * (hi - x), 0.0, None))
        q = _poly(Q, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.sqrt(kappa) * r / (2.0 * np.pi * q)
        return np.where(inside & np.isfinite(rho), np.abs(rho), 0.0)

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """Atoms ``(location, mass)``: real zeros of ``Q`` at poles of the first sheet."""
        Q, P, kappa, (lo, hi) = self._coefficients()
        q = np.trim_zeros(np.asarray(Q, float), "b")
        if q.size <= 1:
            return []
        out = []
        width = hi - lo
        for r in np.roots(q[::-1]):
            if abs(r.imag) > 1e-12 * max(1.0, abs(r)) or lo < r.real < hi:
                continue
            x0 = float(r.real)
            d = kappa * (x0 - lo) * (x0 - hi)
            sd = np.sqrt(max(d, 0.0)) * (1.0 if x0 >= hi else -1.0)
            p = _poly(P, x0)
            if abs(p + sd) > 1e-9 * (1.0 + abs(p)):
                continue  # the pole is on the second sheet
            dp = _poly(np.polynomial.polynomial.polyder(P), x0)
            dd = kappa * (2 * x0 - lo - hi)
            if sd == 0.0:
                continue
            mass = 2.0 / (dp + dd / (2.0 * sd))
            if mass > 1e-13 and width > 0:
                out.append((x0, float(mass)))
        return out

    # -- measures -------------------------------------------------------------------
    def to_density(self, num: int = 20000) -> SpectralDensity:
        """Quadrature of the law: nodes and weights summing to one (atoms included).

        The continuous part uses the midpoint rule in ``theta`` with
        ``x = c - h cos(theta)``, which is spectrally accurate for square-root edges.
        """
        lo, hi = self.support
        c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
        th = (np.arange(num) + 0.5) * np.pi / num
        x = c - h * np.cos(th)
        w = self.density(x) * h * np.sin(th) * np.pi / num
        atoms = self.atoms
        if atoms:
            x = np.concatenate([x, [a for a, _ in atoms]])
            w = np.concatenate([w, [m for _, m in atoms]])
        w = w / w.sum()
        grid = np.linspace(lo, hi, 1001)
        return SpectralDensity(
            x=grid, rho=self.density(grid), nodes=x, weights=w,
            bounds=(min(lo, *(a for a, _ in atoms)) if atoms else lo,
                    max(hi, *(a for a, _ in atoms)) if atoms else hi),
            num_matvecs=0, method=self.name,
        )

    def cdf(self, x: Any) -> np.ndarray:
        """Cumulative distribution function (from a fine quadrature)."""
        return self.to_density().cdf(x)

    def quantiles(self, count: int) -> np.ndarray:
        """``count`` midpoint quantiles ``F^{-1}((i + 1/2)/count)`` (deterministic eigenvalues)."""
        d = self.to_density()
        order = np.argsort(d.nodes)
        cw = np.cumsum(d.weights[order])
        q = (np.arange(count) + 0.5) / count
        return np.interp(q, cw - 0.5 * d.weights[order], d.nodes[order])

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:
        """Orthogonally invariant ``n x n`` matrix ``O diag(quantiles) O^T`` with Haar ``O``.

        Its principal submatrices are asymptotically free compressions of the law.
        Subclasses with a classical ensemble override this.
        """
        n = check_int(n, "matrix size n", low=1)
        Q = haar_orthogonal(n, rng)
        A = (Q * self.quantiles(n)) @ Q.T
        return 0.5 * (A + A.T)

    def mean(self) -> float:
        """First moment (exact quadrature)."""
        d = self.to_density()
        return float(np.sum(d.nodes * d.weights))

    def decompressed(self, alpha: float) -> QuadraticLaw:
        """The law of the ``alpha``-times larger matrix (exact parameter map)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _check_alpha(alpha: float) -> float:
    return check_float(alpha, "decompression ratio alpha", low=1.0)


def _scaled(Q: Any, P: Any, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Curve of ``s X`` from that of ``X``: ``Q_s(z) = s^2 Q(z/s)``, ``P_s(z) = s P(z/s)``."""
    Q = np.asarray(Q, float) * s ** (2.0 - np.arange(len(Q)))
    P = np.asarray(P, float) * s ** (1.0 - np.arange(len(P)))
    return Q, P


@dataclass(repr=False)
class Wigner(QuadraticLaw):
    r"""Semicircle law of radius :math:`r = 2\sigma`: :math:`\rho = 2\sqrt{r^2-x^2}/(\pi r^2)`.

    Decompression by :math:`\alpha`: :math:`r \to r\sqrt{\alpha}`. Matrix model: GOE with
    entry variance :math:`\sigma^2/n`.
    """

    radius: float = 2.0
    name = "wigner"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"radius must be positive, got {self.radius}")

    def _coefficients(self):
        r = self.radius
        return np.array([r * r / 4]), np.array([0.0, 1.0]), 1.0, (-r, r)

    def decompressed(self, alpha: float) -> Wigner:  # noqa: D102
        return Wigner(self.radius * np.sqrt(_check_alpha(alpha)))

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:  # noqa: D102
        n = check_int(n, "matrix size n", low=1)
        G = as_rng(rng).standard_normal((n, n))
        return (self.radius / 2.0) * (G + G.T) / np.sqrt(2.0 * n)


@dataclass(repr=False)
class MarchenkoPastur(QuadraticLaw):
    r"""Marchenko-Pastur law of ratio :math:`\lambda` and scale :math:`\sigma^2`.

    Density :math:`\sqrt{(\lambda_+-x)(x-\lambda_-)}/(2\pi\sigma^2\lambda x)` on
    :math:`\lambda_\pm = \sigma^2(1\pm\sqrt\lambda)^2`, plus an atom
    :math:`(1-1/\lambda)\delta_0` when :math:`\lambda > 1`. Decompression:
    :math:`\lambda \to \alpha\lambda`. Matrix model :math:`\sigma^2 X X^T/p` with ``X`` of
    shape ``(n, p)``, :math:`\lambda = n/p`.
    """

    ratio: float = 0.5
    scale: float = 1.0
    name = "marchenko-pastur"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.ratio) and self.ratio > 0 and self.scale > 0):
            raise ValueError("ratio and scale must be positive")

    def _coefficients(self):
        lam, s = self.ratio, self.scale
        Q = np.array([0.0, lam * s, 0.0])
        P = np.array([-s * (1 - lam), 1.0])
        e = (s * (1 - np.sqrt(lam)) ** 2, s * (1 + np.sqrt(lam)) ** 2)
        return Q, P, 1.0, e

    @property
    def atoms(self) -> list[tuple[float, float]]:  # noqa: D102
        return [(0.0, 1.0 - 1.0 / self.ratio)] if self.ratio > 1 else []

    def decompressed(self, alpha: float) -> MarchenkoPastur:  # noqa: D102
        return MarchenkoPastur(self.ratio * _check_alpha(alpha), self.scale)

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:  # noqa: D102
        n = check_int(n, "matrix size n", low=1)
        p = max(1, round(n / self.ratio))
        return self.scale * wishart(n, p, rng) / p


@dataclass(repr=False)
class KestenMcKay(QuadraticLaw):
    r"""Kesten-McKay law :math:`KM(d) = \mathrm{Bern}(\pm1)^{\boxplus d}`, scaled by ``scale``.

    Density :math:`d\sqrt{4(d-1)-x^2}/(2\pi(d^2-x^2))` on :math:`|x| \le 2\sqrt{d-1}`;
    atoms of mass :math:`1 - d/2` at :math:`\pm d` when :math:`1 \le d < 2`.
    Decompression: :math:`D_\alpha(KM(d/\alpha))`, i.e. ``(d, scale) -> (d/alpha,
    scale*alpha)``; it exists while :math:`d/\alpha \ge 1`. Matrix model
    :math:`\sum_{i=1}^d O_i S_i O_i^T` (``S_i`` balanced signs, ``O_i`` Haar).
    """

    d: float = 4.0
    scale: float = 1.0
    name = "kesten-mckay"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.d) and self.d >= 1.0 and self.scale > 0):
            raise ValueError(f"Kesten-McKay needs d >= 1 and scale > 0, got d={self.d}")

    def _coefficients(self):
        d = self.d
        if d == 1.0:  # Bernoulli: degenerate curve, treat as the d -> 1 limit
            d = 1.0 + 1e-12
        Q = np.array([d * d, 0.0, -1.0]) / (d - 1)
        P = np.array([0.0, (d - 2) / (d - 1)])
        Q, P = _scaled(Q, P, self.scale)
        e = 2 * np.sqrt(d - 1) * self.scale
        return Q, P, (d / (d - 1)) ** 2, (-e, e)

    def decompressed(self, alpha: float) -> KestenMcKay:  # noqa: D102
        alpha = _check_alpha(alpha)
        if self.d / alpha < 1.0:
            raise ValueError(
                f"KM(d={self.d}) is not decompressible by alpha={alpha}: needs d/alpha >= 1 "
                "(the Bernoulli law is not freely infinitely divisible)"
            )
        return KestenMcKay(self.d / alpha, self.scale * alpha)

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:  # noqa: D102
        n = check_int(n, "matrix size n", low=1)
        if self.d != int(self.d):
            return super().sample_matrix(n, rng)
        g = as_rng(rng)
        A = np.zeros((n, n))
        signs = np.where(np.arange(n) < n // 2, 1.0, -1.0)
        for _ in range(int(self.d)):
            Q = haar_orthogonal(n, g)
            A += (Q * g.permutation(signs)) @ Q.T
        return self.scale * 0.5 * (A + A.T)


@dataclass(repr=False)
class Wachter(QuadraticLaw):
    r"""Wachter (MANOVA) law with parameters :math:`a, b > 0`.

    Law of :math:`QPQ` in :math:`QAQ` for free projections with traces
    :math:`1/(a+b)` and :math:`a/(a+b)`. Density
    :math:`(a+b)\sqrt{(\lambda_+-x)(x-\lambda_-)}/(2\pi x(1-x))` with
    :math:`\lambda_\pm = ((\sqrt b \pm \sqrt{a(a+b-1)})/(a+b))^2`; atoms at 0 (mass
    :math:`1-a`) and 1 (mass :math:`1-b`) when below one. Decompression:
    :math:`(a, b) \to (a/\alpha, b/\alpha)`, valid while :math:`a/\alpha + b/\alpha > 1`.
    """

    a: float = 4.0
    b: float = 4.0
    name = "wachter"

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b > 0 and self.a + self.b > 1):
            raise ValueError(f"Wachter needs a, b > 0 and a + b > 1, got a={self.a}, b={self.b}")

    def _coefficients(self):
        a, b = self.a, self.b
        s = a + b - 1
        Q = np.array([0.0, 1.0, -1.0]) / s
        P = np.array([1 - a, a + b - 2]) / s
        lo = ((np.sqrt(b) - np.sqrt(a * s)) / (a + b)) ** 2
        hi = ((np.sqrt(b) + np.sqrt(a * s)) / (a + b)) ** 2
        return Q, P, ((a + b) / s) ** 2, (lo, hi)

    @property
    def atoms(self) -> list[tuple[float, float]]:  # noqa: D102
        out = []
        if self.a < 1:
            out.append((0.0, 1.0 - self.a))
        if self.b < 1:
            out.append((1.0, 1.0 - self.b))
        return out

    def decompressed(self, alpha: float) -> Wachter:  # noqa: D102
        alpha = _check_alpha(alpha)
        if (self.a + self.b) / alpha <= 1:
            raise ValueError(f"Wachter(a={self.a}, b={self.b}) is not decompressible by {alpha}")
        return Wachter(self.a / alpha, self.b / alpha)

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:
        r"""Exact model :math:`(A+B)^{-1/2} A (A+B)^{-1/2}` with independent Wisharts.

        ``A`` has ``round(a n)`` and ``B`` ``round(b n)`` degrees of freedom; this is the
        leading ``n x n`` block of ``O P O^T`` for a Haar projection ``P`` (rows of a
        Haar matrix are ``(G G^T)^{-1/2} G``), so principal blocks are exact compressions.
        """
        n = check_int(n, "matrix size n", low=1)
        g = as_rng(rng)
        A = wishart(n, max(1, round(self.a * n)), g)
        B = wishart(n, max(1, round(self.b * n)), g)
        lam, V = np.linalg.eigh(A + B)
        S = (V / np.sqrt(lam)) @ V.T
        W = S @ A @ S
        return 0.5 * (W + W.T)


@dataclass(repr=False)
class FreeMeixner(QuadraticLaw):
    r"""Free Meixner law :math:`\mu_{a,b}` (mean 0, variance 1), scaled by ``scale``.

    Cauchy transform :math:`G = [(1+2b)z + a - \sqrt{(z-a)^2-4(1+b)}]/(2(bz^2+az+1))`,
    density :math:`\sqrt{4(1+b)-(x-a)^2}/(2\pi(bx^2+ax+1))`. Special cases: ``a = b = 0``
    semicircle, ``b = 0`` free Poisson, ``a^2 = 4b`` free gamma, ``b < 0`` free binomial.
    Decompression: :math:`D_{\sqrt\alpha}\mu_{a\sqrt\alpha,\, b\alpha}`, i.e.
    ``(a, b, scale) -> (a sqrt(alpha), b alpha, scale sqrt(alpha))``.
    """

    a: float = 0.5
    b: float = 0.0
    scale: float = 1.0
    name = "free-meixner"

    def __post_init__(self) -> None:
        if not (self.b >= -1 and self.scale > 0 and np.isfinite(self.a)):
            raise ValueError(f"free Meixner needs b >= -1 and scale > 0, got b={self.b}")

    def _coefficients(self):
        a, b = self.a, self.b
        Q = np.array([1.0, a, b]) / (1 + b)
        P = np.array([a, 1 + 2 * b]) / (1 + b)
        Q, P = _scaled(Q, P, self.scale)
        e = 2 * np.sqrt(1 + b)
        return Q, P, 1.0 / (1 + b) ** 2, ((a - e) * self.scale, (a + e) * self.scale)

    def decompressed(self, alpha: float) -> FreeMeixner:  # noqa: D102
        alpha = _check_alpha(alpha)
        if self.b * alpha < -1:
            raise ValueError(f"free Meixner b={self.b} is not decompressible by {alpha}")
        r = np.sqrt(alpha)
        return FreeMeixner(self.a * r, self.b * alpha, self.scale * r)
