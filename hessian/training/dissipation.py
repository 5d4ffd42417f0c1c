r"""Output-space dissipation Gramian of training, estimated online.

For gradient descent on :math:`\frac{1}{2n}\lVert f(X_S) - y\rVert^2` over a fixed set
:math:`S`, the linearised residual evolves as :math:`r_{t+1} = (I - M_t) r_t` with
:math:`M_t = \frac{w_t}{n} J_t J_t^T`. With :math:`\Phi_t = \prod_{s<t} (I - M_s)` the
dissipation Gramian satisfies the exact identity

.. math::
    W_S = \sum_t \Phi_t^T \bigl(M_t - \tfrac12 M_t^2\bigr) \Phi_t
        = \tfrac12 \bigl(I - \Phi_T^T \Phi_T\bigr),

so its eigenvalues lie in :math:`[0, \frac12]` while every step has
:math:`\lVert M_t \rVert \le 2` (:doc:`/theory/gramians`). See
:mod:`hessian.training.trajectory` for the parameter-space trajectory Gramian and the
notation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from spectra.validation import check_choice, check_int

from ..curvature.model import ModelView
from .trajectory import (
    _NORMALIZE,
    _as_generator,
    _check_weight,
    _forward,
    _Jacobian,
    _num_samples,
    _raise_nonfinite,
)

__all__ = ["DissipationGramian", "DissipationSpectrum"]


@dataclass(frozen=True, eq=False)
class DissipationSpectrum:
    r"""Rayleigh-Ritz estimate of the dissipation Gramian :math:`W_S` on the probe span.

    Attributes
    ----------
    eigenvalues : ndarray, shape ``(k,)``
        Ritz values, descending; in ``[0, 1/2]`` for stable gradient-descent steps.
    eigenvectors : torch.Tensor, shape ``(D, k)``
        Ritz vectors in output space (sample-major: row ``i * C + c``).
    matrix : ndarray, shape ``(k, k)``
        :math:`Q^T W_S Q = \frac12 (Q^T Q - Y^T Y)` (float64).
    num_probes : int
    output_dim : int
        ``D``, the number of training outputs; ``num_probes == output_dim`` is exact.
    num_updates : int
    total_weight : float
    in_range : bool
        Whether every Ritz value lies in ``[0, 1/2]`` (up to rounding). ``False`` means a
        step expanded the residual somewhere (:math:`\lVert M_t\rVert > 2`, unstable).
    message : str
    """

    eigenvalues: np.ndarray
    eigenvectors: torch.Tensor = field(repr=False)
    matrix: np.ndarray = field(repr=False)
    num_probes: int
    output_dim: int
    num_updates: int
    total_weight: float
    in_range: bool
    message: str


class DissipationGramian:
    r"""Online Rayleigh-Ritz estimate of the output-space dissipation Gramian :math:`W_S`.

    The training set ``inputs`` is fixed (``n`` samples, ``D = n C`` outputs). Each
    :meth:`update` (called before the parameter step, at the parameters the step's
    gradient is taken at) applies :math:`I - M_t`, :math:`M_t = \frac{w_t}{n} J_t J_t^T`
    (``"sum"``: :math:`w_t J_t J_t^T`) to ``k`` orthonormal probes :math:`Q`:
    :math:`Y \leftarrow Y - M_t Y`, so :math:`Y = \Phi Q` and
    :math:`Q^T W_S Q = \frac12 (I - Y^T Y)` (module docstring). ``weight = lr`` matches
    gradient descent on :math:`\frac{1}{2n}\sum_i \lVert f(x_i) - y_i\rVert^2`; for
    ``nn.MSELoss()`` (mean over all ``n C`` entries, no 1/2) pass ``weight = 2 lr / C``.
    For cross-entropy the true residual propagator also holds the loss Hessian; this
    object then tracks the kernel part only.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : tensor, tuple or dict
        The fixed training inputs (what the model is called with).
    params : None, list of tensors or names
        As for :class:`TrajectoryGramian`.
    num_probes : int, optional
        ``k``; default ``D`` (all outputs: then :math:`Q = I` and the result is
        :math:`W_S` exactly). With ``k < D``, ``Q`` is an orthonormalised Gaussian block.
    generator : torch.Generator, int or None
        Draws ``Q`` when ``k < D``.
    normalize : {"mean", "sum"}
    check_finite : bool
        As for :class:`TrajectoryGramian`.

    Examples
    --------
    >>> import torch, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Linear(3, 2)
    >>> X = torch.randn(5, 3, generator=g)
    >>> WS = hessian.DissipationGramian(model, X)
    >>> for _ in range(10):
    ...     WS.update(0.1)  # then take the gradient step with lr 0.1
    >>> WS.spectrum().eigenvalues.shape
    (10,)
    """

    def __init__(self, model: nn.Module, inputs: Any, *, params: Any = None,
                 num_probes: int | None = None, generator: Any = None,
                 normalize: str = "mean", check_finite: bool = True) -> None:
        self.view = ModelView(model, params, None)
        self.inputs = inputs
        self.normalize = check_choice(normalize, "normalize", _NORMALIZE)
        self.check_finite = bool(check_finite)
        with torch.no_grad():
            out = self.view.call(inputs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model must return one tensor, got {type(out).__name__}")
        self.out_shape = tuple(out.shape)
        self.output_dim = int(out.numel())
        self.num_samples = _num_samples(out)
        D = self.output_dim
        k = D if num_probes is None else check_int(
            num_probes, "num_probes", low=1, high=D, hint=f" ({D} training outputs)")
        self.num_probes = k
        dt, dev = self.view.dtype, self.view.device
        if k == D:
            Q = torch.eye(D, dtype=torch.float64)
        else:
            g = _as_generator(generator)
            G = torch.randn(D, k, generator=g, dtype=torch.float64, device=g.device)
            Q = torch.linalg.qr(G).Q.cpu()
        self._Q = Q.to(device=dev, dtype=dt)  # (D, k)
        self._Y = self._Q.clone()
        self.num_updates = 0
        self.total_weight = 0.0

    @property
    def probes(self) -> torch.Tensor:
        """The orthonormal probe block ``Q``, ``(D, k)``."""
        return self._Q.clone()

    @property
    def propagated(self) -> torch.Tensor:
        r"""The propagated probes :math:`Y = \Phi Q`, ``(D, k)``."""
        return self._Y.clone()

    def update(self, weight: float, *, outputs: torch.Tensor | None = None) -> None:
        r"""Apply one step :math:`Y \leftarrow Y - M_t Y` at the current parameters.

        Parameters
        ----------
        weight : float
            :math:`w_t > 0`, the step's learning rate.
        outputs : torch.Tensor, optional
            The model's outputs on the fixed ``inputs`` with their graph alive (the
            full-batch training forward pass); saves a forward pass.

        Raises
        ------
        ValueError
            Non-positive weight; outputs of another shape.
        spectra.results.NonFiniteError
            NaN or Inf in the outputs or products, naming the update.
        """
        w = _check_weight(weight)
        what = f"update {self.num_updates + 1}"
        out = _forward(self.view, self.inputs, outputs, what)
        if tuple(out.shape) != self.out_shape:
            raise ValueError(f"outputs have shape {tuple(out.shape)}, the fixed inputs give "
                             f"{self.out_shape}")
        jac = _Jacobian(out, self.view.params)
        k = self.num_probes
        U = self._Y.T.reshape(k, *out.shape).to(out.dtype)
        JtU = jac.vjp(U)
        MY = jac.jvp([g if g is not None else torch.zeros(k, *p.shape, dtype=out.dtype,
                                                          device=out.device)
                      for g, p in zip(JtU, self.view.params, strict=True)])
        scale = w / self.num_samples if self.normalize == "mean" else w
        step = MY.reshape(k, -1).T * scale
        if self.check_finite and not bool(torch.isfinite(out).all()
                                          & torch.isfinite(step).all()):
            _raise_nonfinite(what, out)
        self._Y.sub_(step.to(self._Y.dtype))
        self.num_updates += 1
        self.total_weight += w

    def spectrum(self) -> DissipationSpectrum:
        r"""Ritz values and vectors of :math:`W_S` on the probe span.

        Returns
        -------
        DissipationSpectrum
        """
        Q = self._Q.to(torch.float64)
        Y = self._Y.to(torch.float64)
        Mk = 0.5 * (Q.T @ Q - Y.T @ Y)
        Mk = 0.5 * (Mk + Mk.T)
        lam, V = torch.linalg.eigh(Mk)
        lam, V = lam.flip(0), V.flip(1)
        tol = 100 * float(torch.finfo(self._Y.dtype).eps) * max(1.0, float(Y.abs().max()) ** 2)
        lo, hi = float(lam.min()), float(lam.max())
        ok = lo >= -tol and hi <= 0.5 + tol
        msg = (f"{self.num_probes} of {self.output_dim} output directions, "
               f"{self.num_updates} updates; Ritz values in [{lo:.4g}, {hi:.4g}]")
        if not ok:
            msg += (" -- outside [0, 1/2]: some step had ||M_t|| > 2 (learning rate above "
                    "2n / lambda_max(K)), the residual grew along some direction")
        return DissipationSpectrum(lam.cpu().numpy(), (Q @ V).to(self._Y.dtype),
                                   Mk.cpu().numpy(), self.num_probes, self.output_dim,
                                   self.num_updates, self.total_weight, ok, msg)

    def state_dict(self) -> dict[str, Any]:
        """Probes, propagated probes and counters (tensors are copies)."""
        return {"probes": self._Q.clone(), "propagated": self._Y.clone(),
                "num_updates": self.num_updates, "total_weight": self.total_weight,
                "normalize": self.normalize}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        Raises
        ------
        ValueError
            A state of another shape or normalisation.
        """
        if tuple(state["probes"].shape) != tuple(self._Q.shape) \
                or state["normalize"] != self.normalize:
            raise ValueError(f"the state has probes {tuple(state['probes'].shape)} and "
                             f"normalize={state['normalize']!r}; this Gramian "
                             f"{tuple(self._Q.shape)} and {self.normalize!r}")
        self._Q.copy_(state["probes"])
        self._Y.copy_(state["propagated"])
        self.num_updates = int(state["num_updates"])
        self.total_weight = float(state["total_weight"])

    def __repr__(self) -> str:
        return (f"DissipationGramian(D={self.output_dim}, num_probes={self.num_probes}, "
                f"updates={self.num_updates})")
