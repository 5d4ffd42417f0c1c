r"""Stochastic Lanczos quadrature (SLQ): spectral sums :math:`\operatorname{tr} f(A)`.

For a probe ``z`` with ``E[z z^T] = I``, ``k`` Lanczos steps from ``z/||z||`` give a
tridiagonal ``T_k = S \Theta S^T`` and the Gauss quadrature rule

.. math:: z^T f(A) z \approx \|z\|^2 \sum_{j=1}^k \tau_j^2 f(\theta_j),
          \qquad \tau_j = S_{1j},

exact for polynomials of degree ``2k - 1``. Averaging over probes estimates
:math:`\operatorname{tr} f(A)` (Ubaru, Chen & Saad 2017). When ``num_steps``
reaches the dimension the Krylov space is the whole space, and the estimators form
``A`` with ``n`` products and return the exact value instead.

References
----------
.. [1] S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic
   Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.
.. [2] G. H. Golub, G. Meurant, *Matrices, Moments and Quadrature with
   Applications*, Princeton, 2010.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import from_numpy, to_numpy
from .krylov import lanczos
from .operators import Operator, as_operator, dense_matrix, require_symmetric
from .probes import as_rng, draw
from .results import Estimate
from .validation import check_choice, check_int

__all__ = ["logdet", "slq_measure", "trace_function"]

#: Above this many bytes of stored Lanczos basis, ``reorth="auto"`` runs without
#: reorthogonalisation (quadrature stays accurate without it; Greenbaum 1989).
AUTO_REORTH_BYTES = 512 * 2**20


def dense_eigenvalues(op: Operator, block: int = 256) -> np.ndarray:
    """Form ``A`` with ``n`` products (identity blocks) and return its eigenvalues."""
    A = dense_matrix(op, block)
    return np.linalg.eigvalsh(0.5 * (A + A.T))


@dataclass(frozen=True)
class SLQMeasure:
    """Per-probe Gauss quadrature rules of the spectral measure.

    ``nodes[i]`` and ``weights[i]`` hold probe ``i``'s Ritz values and weights
    ``tau^2 ||z_i||^2 / n`` (each row sums to about one); ``exact`` marks the
    dense route taken at full budget.
    """

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    num_matvecs: int
    exact: bool
    num_steps: int


def slq_measure(
    op: Any,
    *,
    num_probes: int = 10,
    num_steps: int = 40,
    probe: str = "rademacher",
    reorth: str = "auto",
    deflate: bool = False,
    rng: Any = None,
) -> SLQMeasure:
    """Gauss quadrature rules of the spectral measure from random probes.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric.
    num_probes : int
        Probes (all run together as one batched Lanczos).
    num_steps : int
        Lanczos steps per probe. At or above the dimension the exact eigenvalues are
        computed from ``n`` products instead.
    probe : {"rademacher", "gaussian", "sphere"}
    reorth : {"auto", "full", "none"}
        ``"auto"``: full reorthogonalisation while the stored basis fits in
        :data:`AUTO_REORTH_BYTES`, none otherwise.
    deflate : bool
        Deflate the eigenpairs that converge in a pilot run (see :func:`_deflated`):
        the first probe runs alone with full reorthogonalisation; its Ritz pairs with
        residual below :data:`DEFLATE_RTOL` are exact eigenpairs to working accuracy,
        enter the measure with their exact weight ``1/n`` each, and the other probes
        run on the complement ``(I - U U^T) A (I - U U^T)``. Isolated outliers then
        stop contributing probe noise (their random weights ``(z^T u)^2`` dominate
        the Wasserstein error of spectra with outliers). Valid for any multiplicity:
        a deflated vector is one eigenvector, and other copies of its eigenvalue stay
        in the complement. When nothing converges the pilot is an ordinary probe; when
        something does, its own rule is used for the deflation only (the probes are
        then ``num_probes - 1`` on the complement). Products are counted in full.
    rng : None, int, numpy or torch Generator

    Returns
    -------
    SLQMeasure

    References
    ----------
    .. [1] L. Lin, "Randomized estimation of spectral densities of large matrices made
       accurate", Numer. Math. 136 (2017).
    .. [2] A. S. Gambhir, A. Stathopoulos, K. Orginos, "Deflation as a method of
       variance reduction for estimating the trace of a matrix inverse", SIAM J. Sci.
       Comput. 39(2), 2017.
    """
    op = as_operator(op)
    require_symmetric(op, "stochastic Lanczos quadrature", rng=None)
    n = op.shape[0]
    p = check_int(num_probes, "num_probes", low=1)
    k = check_int(num_steps, "num_steps", low=1)
    check_choice(reorth, "reorth", ("auto", "full", "none"))
    if k >= n:
        lam = dense_eigenvalues(op)
        return SLQMeasure([lam], [np.full(n, 1.0 / n)], n, True, n)
    if reorth == "auto":
        itemsize = 4 if "32" in str(op.dtype) else 8
        reorth = "full" if p * k * n * itemsize <= AUTO_REORTH_BYTES else "none"
    Z = draw(probe, n, p, like=op, rng=as_rng(rng))
    if deflate and p > 1:
        return _deflated(op, Z, k, reorth)
    return _rules(lanczos(op, k, v0=Z, reorth=reorth), n)


#: Relative residual ``|beta_k s_kj| / max|theta|`` below which a pilot Ritz pair is
#: deflated as an eigenpair (its eigenvalue is then accurate to about the square).
DEFLATE_RTOL = 1e-7


def _rules(res: Any, n: int, extra: tuple = ()) -> SLQMeasure:
    nodes, weights = [], []
    for i in range(res.alpha.shape[0]):
        theta, tau = res.ritz(i)
        w = tau**2 * res.start_norms[i] ** 2 / n
        if extra:  # the complement's rule carries exactly the complement's mass
            w = w * ((1.0 - float(np.sum(extra[1]))) / float(np.sum(w)))
            theta, w = np.concatenate([extra[0], theta]), np.concatenate([extra[1], w])
        nodes.append(theta)
        weights.append(w)
    return SLQMeasure(nodes, weights, res.num_matvecs, False, int(res.alpha.shape[1]))


def _deflated(op: Operator, Z: Any, k: int, reorth: str) -> SLQMeasure:
    """SLQ with the eigenpairs of a pilot run deflated (see :func:`slq_measure`)."""
    from scipy.linalg import eigh_tridiagonal

    n = op.shape[0]
    pilot = lanczos(op, k, v0=Z[:, :1], reorth="full")
    s = int(pilot.steps[0])
    if s == 1:
        return _rules(lanczos(op, k, v0=Z, reorth=reorth), n)
    theta, S = eigh_tridiagonal(pilot.alpha[0, :s], pilot.beta[0, : s - 1])
    resid = np.abs(pilot.beta[0, s - 1] * S[-1, :])
    if pilot.breakdown[0]:
        resid[:] = 0.0  # an invariant Krylov space: every Ritz pair is exact
    keep = resid <= DEFLATE_RTOL * max(float(np.max(np.abs(theta))), np.finfo(float).tiny)
    c = int(keep.sum())
    if c == 0:  # nothing to deflate: the pilot is an ordinary probe
        rest = lanczos(op, k, v0=Z[:, 1:], reorth=reorth)
        m = _rules(rest, n)
        first = _rules(pilot, n)
        return SLQMeasure(first.nodes + m.nodes, first.weights + m.weights,
                          pilot.num_matvecs + rest.num_matvecs, False, k)
    xp = op.xp
    Q = pilot.basis[0, :s, :].T  # (n, s), on the operator's device
    U = Q @ from_numpy(np.ascontiguousarray(S[:, keep]), like=op)
    U, _ = xp.linalg.qr(U)

    def project(V: Any) -> Any:
        return V - U @ (U.T @ V)

    def matmat(V: Any) -> Any:
        return project(op.matmat(project(V)))

    defl = Operator.from_matvec(lambda v: matmat(v[:, None])[:, 0], (n, n), dtype=op.dtype,
                                device=op.device, symmetric=True, matmat=matmat)
    Zc = project(Z[:, 1:])
    if c >= n or float(to_numpy(xp.max(xp.linalg.vector_norm(Zc, axis=0)))) == 0.0:
        nodes = theta[keep]
        return SLQMeasure([nodes], [np.full(c, 1.0 / n)], pilot.num_matvecs, False, k)
    rest = lanczos(defl, min(k, n - c), v0=Zc, reorth=reorth)
    m = _rules(rest, n, extra=(theta[keep], np.full(c, 1.0 / n)))
    return SLQMeasure(m.nodes, m.weights, pilot.num_matvecs + rest.num_matvecs, False, k)


def _apply(f: Callable, theta: np.ndarray, what: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        vals = np.asarray(f(theta), dtype=float)
    if vals.shape != theta.shape:
        raise ValueError(f"{what} must map an array of Ritz values elementwise; got shape "
                         f"{vals.shape} for input shape {theta.shape}")
    bad = ~np.isfinite(vals)
    if bad.any():
        raise ValueError(f"{what} is not finite at Ritz value(s) {theta[bad][:3]} "
                         f"(inside the spectral interval); check its domain")
    return vals


def trace_function(
    op: Any,
    f: Callable[[np.ndarray], np.ndarray],
    *,
    num_probes: int = 10,
    num_steps: int = 40,
    probe: str = "rademacher",
    reorth: str = "none",
    rng: Any = None,
) -> Estimate:
    r"""Estimate :math:`\operatorname{tr} f(A)` by stochastic Lanczos quadrature.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric.
    f : callable
        Vectorised scalar function, applied to arrays of Ritz values.
    num_probes : int
        Number of random probes; the standard error is their spread over
        ``sqrt(num_probes)`` (infinite for a single probe).
    num_steps : int
        Lanczos steps per probe (``num_probes * num_steps`` products). From the
        dimension on, the exact value is computed with ``n`` products.
    probe : {"rademacher", "gaussian", "sphere"}
    reorth : {"none", "full", "auto"}
        Default ``"none"``: Gauss quadrature from the plain three-term recurrence is
        accurate although orthogonality is lost (Greenbaum 1989; Knizhnerman 1996), at
        ``O(n)`` memory and work per step instead of ``O(n k)``.
    rng : None, int, numpy or torch Generator

    Returns
    -------
    Estimate

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import trace_function
    >>> from spectra.testing import matrix_from_eigenvalues
    >>> A = matrix_from_eigenvalues(np.linspace(1, 4, 300), rng=0)
    >>> est = trace_function(A, np.sqrt, num_probes=20, num_steps=20, rng=0)
    >>> bool(abs(est.value - np.sqrt(np.linspace(1, 4, 300)).sum()) < 3 * est.stderr)
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    op = as_operator(op)
    m = slq_measure(op, num_probes=num_probes, num_steps=num_steps, probe=probe,
                    reorth=reorth, rng=rng)
    return _spectral_sum(m, f, op.shape[0])


def _spectral_sum(m: SLQMeasure, f: Callable, n: int) -> Estimate:
    pairs = zip(m.nodes, m.weights, strict=True)
    per = np.array([n * np.sum(w * _apply(f, x, "f")) for x, w in pairs])
    if m.exact:
        return Estimate(float(per[0]), 0.0, m.num_matvecs, "slq", True,
                        "exact: num_steps reached the dimension, A was formed with n products",
                        per)
    p = per.size
    stderr = float(per.std(ddof=1) / np.sqrt(p)) if p > 1 else float("inf")
    msg = "" if p > 1 else "a single probe gives no error estimate (stderr = inf)"
    return Estimate(float(per.mean()), stderr, m.num_matvecs, "slq", True, msg, per)


def logdet(
    op: Any,
    *,
    num_probes: int = 10,
    num_steps: int = 40,
    probe: str = "rademacher",
    reorth: str = "none",
    rng: Any = None,
) -> Estimate:
    r"""Estimate :math:`\log\det A = \operatorname{tr}\log A` of a positive definite ``A``.

    Parameters are those of :func:`trace_function`.

    Returns
    -------
    Estimate

    Raises
    ------
    ValueError
        If Lanczos finds a Ritz value ``<= 0``: Ritz values lie inside the spectral
        interval, so ``A`` then has an eigenvalue ``<= 0`` and no real log-determinant.
    """
    op = as_operator(op)
    m = slq_measure(op, num_probes=num_probes, num_steps=num_steps, probe=probe,
                    reorth=reorth, rng=rng)
    low = min(float(x.min()) for x in m.nodes)
    if low <= 0:
        raise ValueError(
            f"logdet needs a positive definite operator; an eigenvalue estimate {low:.3g} <= 0 "
            "was found (A has an eigenvalue at or below it)"
        )
    return _spectral_sum(m, np.log, op.shape[0])
