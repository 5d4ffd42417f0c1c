r"""Training-trajectory Gramians, accumulated during training without being formed.

Parameter space
---------------
For a model :math:`f(x;\theta)` with ``P`` chosen parameters, let :math:`J_t` be the
Jacobian of the stacked, flattened outputs of the batch :math:`X_t` seen at step
:math:`t` (``n_t`` samples, ``C`` outputs each, so :math:`J_t` is
:math:`n_t C \times P`). The *trajectory Gramian* is

.. math::
    W = \sum_t \frac{w_t}{n_t} J_t^T J_t \quad (\texttt{normalize="mean"}), \qquad
    W = \sum_t w_t J_t^T J_t \quad (\texttt{normalize="sum"}),

with :math:`w_t` the learning rate :math:`\eta_t` (or :math:`K\eta` when updated every
``K`` steps). With ``"mean"`` each term is the Gauss-Newton matrix of the mean loss
:math:`\frac{1}{2n}\lVert f - y\rVert^2`, so :math:`W` is the step-weighted GGN along
the path (:doc:`/theory/pruning`). :math:`v \in \ker W` iff :math:`J_t v = 0` at every step: the
direction never moved a training output. For PSD :math:`W`,
:math:`e_k \in \ker W \iff W_{kk} = 0` (since :math:`W_{jk}^2 \le W_{jj} W_{kk}`), and
:math:`\lVert W e_k\rVert^2 \le \lambda_{\max}(W) W_{kk}`: the diagonal certifies
(near-)kernel membership.

:class:`TrajectoryGramian` keeps

* a **streaming diagonal** from output-space Rademacher probes
  :math:`u \in \{\pm 1\}^{n_t C}`: one vector-Jacobian product each, with
  :math:`\mathbb{E}[(J_t^T u)_k^2] = (J_t^T J_t)_{kk}` and per-probe variance
  :math:`2[(\sum_i J_{ik}^2)^2 - \sum_i J_{ik}^4] \le 2 (J^TJ)_{kk}^2`; exact for a single
  scalar output;
* a **streaming Nystrom sketch** :math:`Y = W\Omega` for a fixed test matrix
  :math:`\Omega \in \mathbb{R}^{P\times k}` (orthonormalised Gaussian), updated by
  :math:`Y \mathrel{+}= \frac{w_t}{n_t} J_t^T (J_t \Omega)`, from which
  :meth:`TrajectoryGramian.nystrom` forms the stabilised Nystrom approximation
  :math:`\hat W = Y_\nu (\Omega^T Y_\nu)^{-1} Y_\nu^T - \nu I` of Tropp, Yurtsever, Udell
  and Cevher [1]_ (its top eigenpairs: the signal subspace).

Output space
------------
For gradient descent on :math:`\frac{1}{2n}\lVert f(X_S) - y\rVert^2` over a fixed set
:math:`S` (``n`` samples, ``D = nC`` outputs), the linearised residual evolves as
:math:`r_{t+1} = (I - M_t) r_t` with :math:`M_t = \frac{w_t}{n} K_t`,
:math:`K_t = J_t J_t^T` the empirical NTK. With :math:`\Phi_t = \prod_{s<t} (I - M_s)`
the discrete dissipation Gramian satisfies the exact identity (:doc:`/theory/gramians`)

.. math::
    W_S = \sum_t \Phi_t^T \bigl(M_t - \tfrac12 M_t^2\bigr) \Phi_t
        = \tfrac12 \bigl(I - \Phi_T^T \Phi_T\bigr),

so its eigenvalues lie in :math:`[0, \frac12]` whenever every step has
:math:`\lVert M_t \rVert \le 2` (reservoir: near 0; fully dissipated: near 1/2).
:class:`DissipationGramian` propagates ``k`` orthonormal probes
:math:`Y_{t+1} = Y_t - M_t Y_t` online (one VJP and one JVP of ``k`` columns per step)
and gives the Rayleigh-Ritz matrix :math:`Q^T W_S Q = \frac12 (I - Y^T Y)`; with
``k = D`` it is :math:`W_S` itself.

References
----------
.. [1] J. A. Tropp, A. Yurtsever, M. Udell, V. Cevher, "Fixed-rank approximation of a
   positive-semidefinite matrix from streaming data", NeurIPS 2017.
.. [2] C. Bekas, E. Kokiopoulou, Y. Saad, "An estimator for the diagonal of a matrix",
   Appl. Numer. Math. 57 (2007).
.. [3] J. Martens, I. Sutskever, K. Swersky, "Estimating the Hessian by
   back-propagating curvature", ICML 2012.
.. [4] A. Jacot, F. Gabriel, C. Hongler, "Neural tangent kernel", NeurIPS 2018.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from spectra.results import NonFiniteError
from spectra.validation import check_choice, check_float, check_int

from ..curvature.model import ModelView

__all__ = ["GramianSpectrum", "TrajectoryGramian"]

_NORMALIZE = ("mean", "sum")


# ---------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class GramianSpectrum:
    r"""Top eigenpairs of the trajectory Gramian from its streaming Nystrom sketch.

    Attributes
    ----------
    eigenvalues : ndarray, shape ``(r,)``
        Descending, non-negative (float64).
    eigenvectors : torch.Tensor, shape ``(P, r)``
        Orthonormal columns in the flat parameter order of the Gramian, on its device.
    shift : float
        The stabilising shift :math:`\nu` that was added and subtracted.
    sketch_rank : int
        Columns ``k`` of the test matrix (``r <= k``).
    num_updates : int
    total_weight : float
        :math:`\sum_t w_t` over the updates.
    trace : float
        :math:`\operatorname{tr} W` estimated from the streaming diagonal.
    captured : float
        ``eigenvalues.sum() / trace``: the share of the trace in the returned pairs
        (noisy: the trace is an estimate).
    message : str
    """

    eigenvalues: np.ndarray
    eigenvectors: torch.Tensor = field(repr=False)
    shift: float
    sketch_rank: int
    num_updates: int
    total_weight: float
    trace: float
    captured: float
    message: str

    def leverage(self, rank: int | None = None) -> torch.Tensor:
        r"""Signal-channel leverage :math:`\ell_k = \lVert U_r^T e_k \rVert^2` of every parameter.

        Parameters
        ----------
        rank : int, optional
            Number of leading eigenvectors ``r`` (default: all returned).

        Returns
        -------
        torch.Tensor, shape ``(P,)``
            Values in ``[0, 1]`` summing to ``r``; ``1 - leverage`` is a reservoir score.
        """
        k = self.eigenvectors.shape[1]
        r = k if rank is None else check_int(rank, "rank", low=1, high=k,
                                             hint=f" ({k} eigenvectors)")
        return (self.eigenvectors[:, :r] ** 2).sum(dim=1)


# ---------------------------------------------------------------------- helpers
def _as_generator(generator: Any) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        g = torch.Generator()
        g.seed()  # fresh OS entropy for this object only; the global RNG is untouched
        return g
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, "
                    f"got {type(generator).__name__}")


def _check_weight(weight: Any, what: str = "weight") -> float:
    if isinstance(weight, torch.Tensor):
        if weight.numel() != 1:
            raise ValueError(f"{what} must be a scalar, got a tensor of shape "
                             f"{tuple(weight.shape)}")
        weight = weight.item()
    return check_float(weight, what, low=0.0, low_open=True,
                       hint=" (the learning rate of the step, or K * lr when updating "
                            "every K steps)")



def _accum_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32 if device.type == "mps" else torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _batched_grad(outputs: list, inputs: list, grads: list, *, create_graph: bool = False
                  ) -> list:
    """VJPs for blocks of cotangents with a leading probe axis (``None``: unused input)."""
    k = grads[0].shape[0]
    if k == 1:
        res = torch.autograd.grad(outputs, inputs, [g[0] for g in grads], retain_graph=True,
                                  create_graph=create_graph, allow_unused=True)
        return [None if r is None else r[None] for r in res]
    try:
        return list(torch.autograd.grad(outputs, inputs, grads, retain_graph=True,
                                        create_graph=create_graph, allow_unused=True,
                                        is_grads_batched=True))
    except RuntimeError as err:  # an op without a batching rule: loop over probes
        warnings.warn(f"batched backward failed ({str(err)[:80]}); looping over probes",
                      UserWarning, stacklevel=3)
    cols = [torch.autograd.grad(outputs, inputs, [g[j] for g in grads], retain_graph=True,
                                create_graph=create_graph, allow_unused=True)
            for j in range(k)]
    return [None if cols[0][i] is None else torch.stack([c[i] for c in cols])
            for i in range(len(inputs))]


class _Jacobian:
    """``J^T U`` and ``J V`` for blocks of probes on one forward graph."""

    def __init__(self, out: torch.Tensor, params: list) -> None:
        self.out, self.params = out, params
        self._u: torch.Tensor | None = None
        self._jtu: list | None = None

    def vjp(self, U: torch.Tensor) -> list:
        """``U``: ``(k, *out.shape)`` -> per parameter ``(k, *shape)`` or ``None``."""
        return _batched_grad([self.out], self.params, [U])

    def jvp(self, Vs: list) -> torch.Tensor:
        """``Vs``: per parameter ``(k, *shape)`` -> ``(k, *out.shape)`` (double-VJP trick)."""
        k = Vs[0].shape[0]
        if self._jtu is None:
            with torch.enable_grad():
                self._u = torch.zeros_like(self.out, requires_grad=True)
                self._jtu = list(torch.autograd.grad(self.out, self.params, self._u,
                                                     create_graph=True, allow_unused=True))
        idx = [i for i, g in enumerate(self._jtu) if g is not None and g.requires_grad]
        zero = self.out.new_zeros(k, *self.out.shape)
        if not idx:
            return zero
        (jv,) = _batched_grad([self._jtu[i] for i in idx], [self._u], [Vs[i] for i in idx])
        return zero if jv is None else jv


def _forward(view: ModelView, inputs: Any, outputs: Any, what: str) -> torch.Tensor:
    if outputs is None:
        with torch.enable_grad():
            outputs = view.call(inputs)
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(f"the model must return one tensor, got {type(outputs).__name__} "
                        f"at {what}")
    if not outputs.requires_grad:
        raise ValueError(f"the model output at {what} does not depend on the chosen "
                         "parameters (no autograd graph; was it computed under no_grad?)")
    return outputs


def _num_samples(out: torch.Tensor) -> int:
    return int(out.shape[0]) if out.ndim else 1


def _raise_nonfinite(what: str, out: torch.Tensor) -> None:
    bad = "the model output" if not bool(torch.isfinite(out).all()) else "a Jacobian product"
    raise NonFiniteError(
        f"NaN or Inf in {bad} at {what}; nothing was accumulated for this step. Check the "
        "data, the learning rate (divergence?) and the model (overflow in float32?)"
    )


# ---------------------------------------------------------------------- parameter space
class TrajectoryGramian:
    r"""Streaming diagonal and Nystrom sketch of :math:`W = \sum_t w_t J_t^T J_t / n_t`.

    Call :meth:`update` once per training step (or every ``K`` steps with ``weight =
    K * lr``) with the step's inputs; :meth:`diagonal`, :meth:`nystrom` and
    :meth:`group_energy` read the accumulated Gramian (module docstring for the math).

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (used live; no copy is made).
    params : None, list of tensors or names
        Parameters the Gramian is over (default: all with ``requires_grad``); chosen
        ones must require grad. The flat order is :attr:`param_names`.
    num_probes : int
        Output-space Rademacher probes ``m`` per update (one VJP each, batched through
        one backward pass when ``m > 1``). The diagonal's per-step relative standard
        deviation is at most :math:`\sqrt{2/m}`.
    sketch_rank : int
        Columns ``k`` of the Nystrom test matrix (0: no sketch). Costs ``k`` JVP+VJP
        pairs per update and a ``(P, k)`` buffer.
    generator : torch.Generator, int or None
        Source of the probes and the test matrix (an int seeds a private generator;
        ``None`` draws fresh OS entropy). Its state is saved by :meth:`state_dict`.
    normalize : {"mean", "sum"}
        Divide each step's :math:`J_t^T J_t` by its batch size ``n_t`` (``"mean"``,
        the GGN scale of a mean loss) or not.
    dtype : torch.dtype, optional
        Accumulation precision (default float64; float32 on MPS).
    check_finite : bool
        Check every update for NaN/Inf (one host synchronisation per update) and raise
        naming the update. Off: no synchronisation, no check.

    Raises
    ------
    ValueError
        Bad ``num_probes``, ``sketch_rank``, ``normalize``, or a chosen parameter that
        does not require grad.

    Examples
    --------
    >>> import torch, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 3))
    >>> W = hessian.TrajectoryGramian(model, num_probes=2, sketch_rank=4, generator=g)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> for step in range(3):
    ...     X, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    ...     out = model(X)
    ...     W.update(X, 0.1, outputs=out)  # reuses the training forward pass
    ...     opt.zero_grad()
    ...     torch.nn.functional.cross_entropy(out, y).backward()
    ...     opt.step()
    >>> W.diagonal(flat=True).shape
    torch.Size([67])
    >>> W.nystrom().eigenvalues.shape
    (4,)
    """

    def __init__(self, model: nn.Module, *, params: Any = None, num_probes: int = 1,
                 sketch_rank: int = 0, generator: Any = None, normalize: str = "mean",
                 dtype: torch.dtype | None = None, check_finite: bool = True) -> None:
        self.num_probes = check_int(num_probes, "num_probes", low=1)
        check_int(sketch_rank, "sketch_rank", low=0)
        self.view = ModelView(model, params, None)
        self.sketch_rank = check_int(sketch_rank, "sketch_rank", low=0,
                                     high=self.view.num_params,
                                     hint=f" (the Gramian has {self.view.num_params} "
                                          "parameters)")
        self.normalize = check_choice(normalize, "normalize", _NORMALIZE)
        self.generator = _as_generator(generator)
        self.check_finite = bool(check_finite)
        dev = self.view.device
        self.dtype = _accum_dtype(dtype, dev)
        self._diag = [torch.zeros(s, dtype=self.dtype, device=dev) for s in self.view.shapes]
        self.num_updates = 0
        self.total_weight = 0.0
        self.num_samples = 0
        self._omega: torch.Tensor | None = None  # (k, P) in the model's dtype
        self._Y: torch.Tensor | None = None      # (P, k) in the accumulation dtype
        if self.sketch_rank:
            G = torch.randn(self.view.num_params, self.sketch_rank, generator=self.generator,
                            dtype=torch.float64, device=self.generator.device)
            Q = torch.linalg.qr(G).Q  # orthonormal: same Nystrom, better conditioned
            self._omega = Q.T.to(device=dev, dtype=self.view.dtype).contiguous()
            self._Y = torch.zeros(self.view.num_params, self.sketch_rank, dtype=self.dtype,
                                  device=dev)

    # ------------------------------------------------------------------ facts
    @property
    def param_names(self) -> list[str]:
        """Names of the parameters, in the flat order (names at construction)."""
        return list(self.view.names)

    @property
    def params(self) -> list[torch.Tensor]:
        """The parameter tensors the Gramian is over, in the flat order."""
        return list(self.view.params)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters ``P``."""
        return self.view.num_params

    @property
    def test_matrix(self) -> torch.Tensor | None:
        r"""The Nystrom test matrix :math:`\Omega`, ``(P, k)`` (``None`` without a sketch)."""
        return None if self._omega is None else self._omega.T.to(self.dtype)

    # ------------------------------------------------------------------ accumulation
    def update(self, inputs: Any, weight: float, *, outputs: torch.Tensor | None = None
               ) -> None:
        r"""Add :math:`\frac{w}{n} J^T J` of one batch (diagonal and sketch).

        Parameters
        ----------
        inputs : tensor, tuple or dict
            What the model is called with (a tuple: positional arguments, a dict:
            keyword arguments); its first dimension is the batch size ``n``.
        weight : float
            :math:`w_t > 0`: the step's learning rate, or ``K * lr`` when called every
            ``K`` steps.
        outputs : torch.Tensor, optional
            The model's outputs on ``inputs`` with their autograd graph still alive
            (the training forward pass, before ``backward``): saves a forward pass, and
            a second update of BatchNorm running statistics. The graph is kept for the
            caller's ``backward``; ``inputs`` is then not used.

        Raises
        ------
        ValueError
            A non-positive or non-finite weight; outputs without a graph.
        spectra.results.NonFiniteError
            NaN or Inf in the outputs or products (``check_finite=True``); the update
            number is named and nothing is accumulated.
        """
        w = _check_weight(weight)
        what = f"update {self.num_updates + 1}"
        view = self.view
        out = _forward(view, inputs, outputs, what)
        jac = _Jacobian(out, view.params)
        n = _num_samples(out)
        scale = w / n if self.normalize == "mean" else w
        g = self.generator
        U = torch.randint(0, 2, (self.num_probes, *out.shape), generator=g, device=g.device)
        U = (U.to(device=out.device, dtype=out.dtype) * 2 - 1)
        grads = jac.vjp(U)
        used = [i for i, gr in enumerate(grads) if gr is not None]
        # squares summed over the probes (divided by their number when added)
        sq = [grads[i].to(self.dtype).square().sum(0) for i in used]
        ysk = None
        if self._Y is not None:
            JO = jac.jvp(view.split(self._omega))
            ysk = view.join(jac.vjp(JO), self.sketch_rank, self._omega).T.to(self.dtype)
        if self.check_finite:
            # squares are >= 0, so their total is finite iff every one is; +-inf in the
            # outputs make their sum NaN: one reduction per tensor and one host sync
            tot = out.detach().sum().to(self.dtype)
            if sq:
                tot = tot + torch.stack([q.sum() for q in sq]).sum()
            if ysk is not None:
                tot = tot + ysk.sum()
            if not bool(torch.isfinite(tot)):
                _raise_nonfinite(what, out)
        if sq:
            torch._foreach_add_([self._diag[i] for i in used], sq,
                                alpha=scale / self.num_probes)
        if ysk is not None:
            self._Y.add_(ysk, alpha=scale)
        self.num_updates += 1
        self.total_weight += w
        self.num_samples += n

    # ------------------------------------------------------------------ reading
    def diagonal(self, *, flat: bool = False) -> dict[str, torch.Tensor] | torch.Tensor:
        r"""The streaming estimate of :math:`\operatorname{diag} W`.

        Parameters
        ----------
        flat : bool
            Return one ``(P,)`` tensor in the flat order instead of a dict.

        Returns
        -------
        dict or torch.Tensor
            Parameter name -> tensor of the parameter's shape (copies).
        """
        if flat:
            return torch.cat([d.reshape(-1) for d in self._diag])
        return {n: d.clone() for n, d in zip(self.view.names, self._diag, strict=True)}

    def trace(self) -> float:
        r"""The estimate of :math:`\operatorname{tr} W` (sum of the diagonal)."""
        return float(sum(float(d.sum()) for d in self._diag))

    def group_energy(self, by: str = "neuron") -> dict[str, torch.Tensor]:
        r"""Gramian energy :math:`\operatorname{tr} W_{GG} = \sum_{k\in G} W_{kk}` of groups.

        Parameters
        ----------
        by : {"neuron", "channel"}
            Output units of every module that owns a chosen ``weight`` with two or more
            dimensions (``nn.Linear`` rows: neurons; ``nn.ConvNd`` output channels: the
            same slicing along dimension 0). A unit's group is its weight slice plus its
            ``bias`` entry when the bias is chosen.

        Returns
        -------
        dict
            Module name -> ``(units,)`` tensor of group energies.
        """
        if by not in ("neuron", "channel"):
            raise ValueError(f"by must be 'neuron' or 'channel', got {by!r}")
        diag = dict(zip(self.view.names, self._diag, strict=True))
        out = {}
        for name, d in diag.items():
            mod, _, attr = name.rpartition(".")
            if attr != "weight" or d.ndim < 2:
                continue
            e = d.reshape(d.shape[0], -1).sum(dim=1)
            b = diag.get(f"{mod}.bias" if mod else "bias")
            if b is not None and b.shape == e.shape:
                e = e + b
            out[mod] = e
        if not out:
            raise ValueError("no chosen parameter is a weight with two or more dimensions "
                             "(nn.Linear / nn.ConvNd): there are no neurons or channels")
        return out

    def nystrom(self, rank: int | None = None) -> GramianSpectrum:
        r"""Top eigenpairs of the stabilised Nystrom approximation of :math:`W`.

        Tropp, Yurtsever, Udell & Cevher 2017, Alg. 3: shift
        :math:`\nu = \sqrt{P}\,\epsilon\,\lVert Y\rVert_2`, :math:`Y_\nu = Y + \nu\Omega`,
        :math:`B = \Omega^T Y_\nu = C^T C` (Cholesky), :math:`E = Y_\nu C^{-1} = U \Sigma
        V^T`, :math:`\hat\lambda = \max(\Sigma^2 - \nu, 0)`. The approximation is exact
        when :math:`\operatorname{rank} W \le k` and never exceeds :math:`W` (in the
        PSD order) up to the shift. If the Cholesky factorisation fails the shift is
        raised tenfold (at most 12 times).

        Parameters
        ----------
        rank : int, optional
            Keep the leading ``r <= k`` pairs (fixed-rank truncation; a sketch of size
            ``k`` about twice the wanted rank gives much better leading pairs).

        Returns
        -------
        GramianSpectrum
        """
        if self._Y is None:
            raise ValueError("no Nystrom sketch: construct with sketch_rank > 0")
        if self.num_updates == 0:
            raise ValueError("the Gramian is empty: call update() first")
        k = self.sketch_rank
        r = k if rank is None else check_int(rank, "rank", low=1, high=k,
                                             hint=f" (sketch_rank = {k})")
        Y = self._Y.to(torch.float64)
        Om = self._omega.T.to(torch.float64)
        normY = float(torch.linalg.matrix_norm(Y, ord=2))
        if normY == 0.0:
            raise ValueError("the sketch is zero: the outputs never depended on the chosen "
                             "parameters along the trajectory")
        nu = math.sqrt(self.num_params) * float(torch.finfo(torch.float64).eps) * normY
        for _ in range(13):
            Yn = Y + nu * Om
            B = Om.T @ Yn
            L, info = torch.linalg.cholesky_ex((B + B.T) / 2)
            if int(info) == 0:
                break
            nu *= 10.0
        else:
            raise FloatingPointError("the Nystrom core matrix stayed indefinite after raising "
                                     f"the shift to {nu:.3g}; is the sketch finite?")
        E = torch.linalg.solve_triangular(L, Yn.T, upper=False).T  # Y_nu L^{-T}
        U, S, _ = torch.linalg.svd(E, full_matrices=False)
        lam = torch.clamp(S ** 2 - nu, min=0.0)[:r]
        tr = self.trace()
        captured = float(lam.sum()) / tr if tr > 0 else float("nan")
        msg = (f"rank-{r} Nystrom from a rank-{k} sketch over {self.num_updates} updates; "
               f"shift {nu:.3g}; {captured:.1%} of the estimated trace")
        return GramianSpectrum(lam.cpu().numpy(), U[:, :r].to(self.dtype), nu, k,
                               self.num_updates, self.total_weight, tr, captured, msg)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Accumulators, counters, test matrix and generator state (tensors are copies)."""
        return {
            "param_names": list(self.view.names),
            "diagonal": [d.clone() for d in self._diag],
            "sketch": None if self._Y is None else self._Y.clone(),
            "test_matrix": None if self._omega is None else self._omega.clone(),
            "num_updates": self.num_updates,
            "total_weight": self.total_weight,
            "num_samples": self.num_samples,
            "normalize": self.normalize,
            "num_probes": self.num_probes,
            "generator_state": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (shapes and options must match).

        Raises
        ------
        ValueError
            Different parameters, shapes, sketch rank or normalisation.
        """
        if list(state["param_names"]) != list(self.view.names):
            raise ValueError("the state is of a Gramian over other parameters: "
                             f"{state['param_names'][:3]}... vs {self.view.names[:3]}...")
        if state["normalize"] != self.normalize:
            raise ValueError(f"the state uses normalize={state['normalize']!r}, this Gramian "
                             f"{self.normalize!r}")
        for d, s, n in zip(self._diag, state["diagonal"], self.view.names, strict=True):
            if d.shape != s.shape:
                raise ValueError(f"diagonal of {n!r} has shape {tuple(s.shape)} in the state, "
                                 f"{tuple(d.shape)} here")
        sk = state["sketch"]
        if (sk is None) != (self._Y is None) or (sk is not None and sk.shape != self._Y.shape):
            raise ValueError(f"the state has a sketch of shape "
                             f"{None if sk is None else tuple(sk.shape)}, this Gramian "
                             f"{None if self._Y is None else tuple(self._Y.shape)}")
        for d, s in zip(self._diag, state["diagonal"], strict=True):
            d.copy_(s)
        if sk is not None:
            self._Y.copy_(sk)
            self._omega.copy_(state["test_matrix"])
        self.num_updates = int(state["num_updates"])
        self.total_weight = float(state["total_weight"])
        self.num_samples = int(state["num_samples"])
        self.generator.set_state(state["generator_state"])

    def __repr__(self) -> str:
        return (f"TrajectoryGramian(P={self.num_params}, num_probes={self.num_probes}, "
                f"sketch_rank={self.sketch_rank}, updates={self.num_updates}, "
                f"total_weight={self.total_weight:.4g})")
