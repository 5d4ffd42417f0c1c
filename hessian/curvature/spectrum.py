r"""One-call spectra of a model's curvature: top eigenvalues, trace, diagonal, density.

Each helper builds the curvature operator (:func:`curvature_operator`), or takes a
ready one, and hands it to the matching :mod:`spectra` estimator:
:func:`spectra.eigsh` (thick-restart Lanczos with residual bounds),
:func:`spectra.trace` / :func:`spectra.diagonal` (XTrace / XDiag by default) and
:func:`spectra.density` (stochastic Lanczos quadrature). With ``per_layer=True`` the
estimate is made for every module's diagonal block (:func:`hessian.per_layer`) and a
dict keyed by module name is returned. :mod:`hessian.distributed` runs the same
helpers on an operator summed over ``torch.distributed`` ranks.

Long runs show a progress bar (tqdm) counting probe-batch products; it stays quiet
when standard error is not a terminal (``progress=None``), and ``progress=True`` /
``False`` forces it on or off.

References
----------
.. [1] Z. Yao, A. Gholami, K. Keutzer, M. W. Mahoney, "PyHessian: neural networks
   through the lens of the Hessian", IEEE BigData 2020.
.. [2] B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation into neural net
   optimization via Hessian eigenvalue density", ICML 2019.
.. [3] E. N. Epperly, J. A. Tropp, R. J. Webber, "XTrace: making the most of every
   sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45 (2024).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import spectra
from spectra.results import EigResult, Estimate, SpectralDensity
from spectra.validation import check_choice, check_int

from .operators import (
    CurvatureOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    JacobianGramOperator,
)
from .operators import (
    per_layer as _per_layer,
)

__all__ = ["curvature_operator", "density", "diagonal", "top_eigenvalues", "trace"]

KINDS = ("hessian", "ggn", "fisher", "jtj")


def curvature_operator(model: Any, loss_fn: Any = None, data: Any = None, *,
                       kind: str = "hessian", **kwargs: Any) -> CurvatureOperator:
    """Build the curvature operator of ``kind`` (``model`` may already be one).

    Parameters
    ----------
    model : torch.nn.Module or CurvatureOperator
        A ready operator is returned as it is (``loss_fn``/``data`` are then ignored).
    loss_fn : callable
        Not used for ``kind="jtj"``.
    data : tuple or iterable
    kind : {"hessian", "ggn", "fisher", "jtj"}
    **kwargs
        Operator options (``params``, ``dtype``, ``mode``, ``generator``...).

    Returns
    -------
    CurvatureOperator
    """
    if isinstance(model, spectra.Operator):
        return model
    check_choice(kind, "kind", KINDS)
    if data is None:
        raise ValueError("data is required to build a curvature operator")
    if kind == "jtj":
        return JacobianGramOperator(model, data, **kwargs)
    cls = {"hessian": HessianOperator, "ggn": GGNOperator, "fisher": FisherOperator}[kind]
    return cls(model, loss_fn, data, **kwargs)


def _operators(model: Any, loss_fn: Any, data: Any, kind: str, layers: bool,
               kwargs: dict) -> dict[str, CurvatureOperator] | CurvatureOperator:
    if not layers:
        return curvature_operator(model, loss_fn, data, kind=kind, **kwargs)
    if isinstance(model, spectra.Operator):
        raise ValueError("per_layer=True needs the model, not a ready operator")
    if kind == "jtj":
        raise ValueError("per_layer supports kind 'hessian', 'ggn' or 'fisher'")
    return _per_layer(model, loss_fn, data, kind=kind, **kwargs)


def _num_batches(op: Any) -> int | None:
    sizes = getattr(getattr(op, "data", None), "sizes", None)
    return None if sizes is None else len(sizes)


@contextmanager
def _progress(op: Any, num_vectors: int | None, desc: str,
              enabled: bool | None) -> Iterator[None]:
    """Attach a tqdm bar to ``op`` counting probe-batch products."""
    if enabled is False or not hasattr(op, "progress"):
        yield
        return
    from tqdm.auto import tqdm

    nb = _num_batches(op)
    total = None if num_vectors is None or nb is None else num_vectors * nb
    unit = "vec" if nb == 1 else "vec-batch"
    bar = tqdm(total=total, desc=desc, unit=unit, disable=None if enabled is None else False,
               leave=False)
    op.progress = bar.update
    try:
        yield
    finally:
        op.progress = None
        bar.close()


def _each(ops: Any, fn: Callable[[Any, str], Any]) -> Any:
    if isinstance(ops, dict):
        return {name: fn(op, name) for name, op in ops.items()}
    return fn(ops, "")


def top_eigenvalues(model: Any, loss_fn: Any = None, data: Any = None, k: int = 1, *,
                    kind: str = "hessian", which: str = "LA", tol: float = 1e-6,
                    max_matvecs: int | None = None, rng: Any = None, per_layer: bool = False,
                    progress: bool | None = None, **kwargs: Any) -> EigResult | dict:
    r"""Extremal eigenvalues of a model's curvature by thick-restart Lanczos.

    Parameters
    ----------
    model : torch.nn.Module or CurvatureOperator
    loss_fn : callable
    data : tuple or iterable
        One ``(inputs, targets)`` batch or an iterable of batches.
    k : int
        Number of eigenvalues, in ``[1, P]`` (a per-layer block with fewer than ``k``
        parameters gives all its eigenvalues).
    kind : {"hessian", "ggn", "fisher", "jtj"}
    which : {"LA", "SA", "LM", "BE"}
        Largest algebraic (default), smallest, largest magnitude, both ends.
    tol : float
        Relative residual tolerance :math:`\|Hx - \lambda x\| \le tol\,|\lambda|`.
    max_matvecs : int, optional
        Product budget (default: the estimator's).
    rng : None, int, numpy or torch Generator
        Start vector and probes, drawn by torch in the operator's dtype and on its
        device: by ``rng`` itself when it is a ``torch.Generator``, else one probe at a
        time by a ``torch.Generator`` seeded from ``rng``'s stream
        (:mod:`spectra.probes`); the same seed gives the same probes whatever the
        batching.
    per_layer : bool
        One result per module block (dict keyed by module name).
    progress : bool or None
        Progress bar: ``None`` shows it only on a terminal.
    **kwargs
        Operator options (see :class:`hessian.HessianOperator`).

    Returns
    -------
    spectra.EigResult or dict of them
        Eigenvalues, eigenvectors (flat torch vectors), residual norms, products used.

    Examples
    --------
    >>> import torch, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> X, y = torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    >>> res = hessian.top_eigenvalues(model, torch.nn.CrossEntropyLoss(), (X, y), rng=0)
    >>> bool(res.converged and res.eigenvalues[0] > 0)
    True
    """
    ops = _operators(model, loss_fn, data, kind, per_layer, kwargs)
    dims = [op.shape[0] for op in (ops.values() if isinstance(ops, dict) else [ops])]
    check_int(k, "k", low=1, high=sum(dims),
              hint=f" (the curvature has {sum(dims)} parameters: at most all its eigenvalues)")

    def run(op: Any, name: str) -> EigResult:
        # A layer's block may hold fewer parameters than k: all its eigenvalues, then.
        kk = min(k, op.shape[0])
        with _progress(op, max_matvecs, f"eigsh {name}".strip(), progress):
            return spectra.eigsh(op, k=kk, which=which, tol=tol, max_matvecs=max_matvecs,
                                 rng=rng)

    return _each(ops, run)


def trace(model: Any, loss_fn: Any = None, data: Any = None, num_matvecs: int = 100, *,
          kind: str = "hessian", method: str = "xtrace", probe: str | None = None,
          rtol: float | None = None, rng: Any = None, per_layer: bool = False,
          progress: bool | None = None, **kwargs: Any) -> Estimate | dict:
    """Stochastic trace of a model's curvature (XTrace by default).

    Parameters
    ----------
    model, loss_fn, data, kind, rng, per_layer, progress, **kwargs
        As for :func:`top_eigenvalues`.
    num_matvecs : int
        Product budget (a budget at or above the dimension gives the exact trace).
    method : {"xtrace", "xnystrace", "hutchpp", "hutchinson"}
    probe : {None, "rademacher", "gaussian", "sphere"}
        ``None``: the method's default (see :func:`spectra.trace`).
    rtol : float, optional
        Stop early once the standard error is below ``rtol`` times the estimate.

    Returns
    -------
    spectra.Estimate or dict of them
        ``value``, ``stderr``, ``num_matvecs``.
    """
    ops = _operators(model, loss_fn, data, kind, per_layer, kwargs)

    def run(op: Any, name: str) -> Estimate:
        with _progress(op, num_matvecs, f"trace {name}".strip(), progress):
            return spectra.trace(op, num_matvecs, method=method, probe=probe, rtol=rtol,
                                 rng=rng)

    return _each(ops, run)


def diagonal(model: Any, loss_fn: Any = None, data: Any = None, num_matvecs: int = 100, *,
             kind: str = "hessian", method: str = "xdiag", probe: str | None = None,
             rtol: float | None = None, rng: Any = None, per_layer: bool = False,
             progress: bool | None = None, **kwargs: Any) -> Estimate | dict:
    """Stochastic diagonal of a model's curvature (XDiag by default).

    Parameters
    ----------
    model, loss_fn, data, kind, rng, per_layer, progress, **kwargs
        As for :func:`top_eigenvalues`.
    num_matvecs : int
        Product budget.
    method : {"xdiag", "hutchinson"}
    probe : {None, "rademacher", "gaussian", "sphere"}
        ``None``: the method's default (see :func:`spectra.trace`).
    rtol : float, optional
        Stop early once the relative standard error is below ``rtol``.

    Returns
    -------
    spectra.Estimate or dict of them
        ``value``: the diagonal as a float64 numpy array in the operator's parameter
        order (:attr:`~hessian.HessianOperator.param_names`).
    """
    ops = _operators(model, loss_fn, data, kind, per_layer, kwargs)

    def run(op: Any, name: str) -> Estimate:
        with _progress(op, num_matvecs, f"diagonal {name}".strip(), progress):
            return spectra.diagonal(op, num_matvecs, method=method, probe=probe, rtol=rtol,
                                    rng=rng)

    return _each(ops, run)


def density(model: Any, loss_fn: Any = None, data: Any = None, *, kind: str = "hessian",
            method: str = "slq", num_probes: int = 10, num_steps: int = 80, grid: Any = None,
            smoothing: Any = "auto", reorth: str = "auto", rng: Any = None,
            per_layer: bool = False, progress: bool | None = None,
            **kwargs: Any) -> SpectralDensity | dict:
    """Spectral density of a model's curvature by stochastic Lanczos quadrature.

    Parameters
    ----------
    model, loss_fn, data, kind, rng, per_layer, progress, **kwargs
        As for :func:`top_eigenvalues`.
    method : {"slq", "kpm"}
    num_probes, num_steps : int
        Probes and Lanczos steps per probe (clipped to the dimension of small blocks,
        where the result is then exact).
    grid, smoothing, reorth
        See :func:`spectra.density`.

    Returns
    -------
    spectra.SpectralDensity or dict of them
        The raw quadrature measure (``nodes``, ``weights``) and a smoothed display
        curve (``x``, ``rho``).
    """
    ops = _operators(model, loss_fn, data, kind, per_layer, kwargs)

    def run(op: Any, name: str) -> SpectralDensity:
        steps = min(num_steps, op.shape[0])
        total = num_probes * steps if method == "slq" else None
        with _progress(op, total, f"density {name}".strip(), progress):
            return spectra.density(op, method=method, num_probes=num_probes, num_steps=steps,
                                   grid=grid, smoothing=smoothing, reorth=reorth,
                                   rng=rng)

    return _each(ops, run)
