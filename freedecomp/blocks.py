r"""Blocks that are operators: block spectra from SLQ, densities and operator samplers.

:func:`freedecomp.decompress` fits its models to the eigenvalues of ``n x n`` principal
blocks. When a block is too large for a dense ``eigvalsh`` (or is only available through
products), its spectrum is estimated by stochastic Lanczos quadrature with deflation
(:func:`spectra.quadrature.slq_measure`, :doc:`/theory/slq_kpm`) and turned into ``n``
*pseudo-eigenvalues*, which the driver then treats as the block's eigenvalues:

* the eigenpairs the pilot run deflated are exact eigenvalues of the block (its
  isolated outliers, residual below ``DEFLATE_RTOL``); they are kept as they are;
* the remaining ``n - c`` points are the bin averages
  :math:`q_i = (n-c)\int_{i/(n-c)}^{(i+1)/(n-c)} Q(u)\,du` of the quantile function
  :math:`Q` of the complement's quadrature measure, each Gauss node's mass spread
  uniformly over a cell centred on it (half the distance to its nearest neighbour).
  Bin averages preserve the measure's mean exactly, so ``sum(eigs)`` is the SLQ trace
  estimate of the block, the invariant free decompression carries to ``N``
  (:doc:`/theory/free_decompression`); the extreme nodes stay points, so the points
  lie inside the nodes' range (and at or above zero for a PSD block).

For a PSD block each probe's measure is the midpoint of its Gauss rule and its
Gauss-Radau rule with a node at 0 (:mod:`freedecomp.blockrules`): both are exact for
the trace, and for every ``log(x + rho)`` the two bracket the truth, which matters at
the unresolved low end of a spectrum spanning decades (:doc:`/theory/slq_brackets`).
The Radau node at 0 stays a point like the other extreme nodes: a PSD block whose low
end is unresolved gets exact zeros among its points, as a dense ``eigvalsh`` of such a
block gets numerically zero ones.

Each :class:`BlockSpectrum` carries an estimate of its own error in Wasserstein-1:
the *quadrature* part, a bound from the Chebyshev-Markov-Stieltjes inequalities (the
true distribution function of a probe's measure lies within an envelope of the rules'
cumulative weights; :func:`~freedecomp.blockrules.envelope_error`, Chen, Trogdon &
Ubaru 2021) and the *probe* part from the spread of the per-probe measures
about their mean (:math:`\sqrt{\overline{W_1^2}/p}`). Dense blocks have error 0. The
figures go into ``diagnostics.block_estimates`` (a warning above
:data:`~freedecomp.blockresults.ERROR_WARN` sd) and are carried into the result's
``diagnostics.slq_error`` and bands (:mod:`freedecomp.blockresults`).

The SLQ budget follows the accuracy asked for: with ``num_steps=None`` (the default)
:func:`block_spectrum` runs :data:`FIRST_STEPS` Lanczos steps and, until the estimated
error is at most ``rtol`` block sds (:data:`RTOL`), doubles the steps while the
quadrature part is above half of it and the probes while the probe part is (up to
:data:`MAX_STEPS` steps and :data:`MAX_PROBE_FACTOR` times the probes; a warning when
that is not enough). Probes are cheap next to steps for batched products (a kernel
pass evaluates the kernel once for all probe columns).

:func:`prepare_blocks` is the normalisation the driver calls: it turns a
:class:`spectra.SpectralDensity`, a :class:`BlockSpectrum` (or a list of them) or a
block sampler that returns operators into a :class:`BlockSample`; anything else is
left to :func:`freedecomp.samplers.prepare_sample`. :func:`annotate` (block estimates,
errors and bands of a result) and :func:`embed` (the map to a larger space) live in
:mod:`freedecomp.blockresults` and are re-exported here.

References
----------
.. [1] T. Chen, T. Trogdon, S. Ubaru, "Analysis of stochastic Lanczos quadrature for
   spectrum approximation", ICML 2021.
.. [2] L. Lin, "Randomized estimation of spectral densities of large matrices made
   accurate", Numer. Math. 136 (2017).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from spectra.results import SpectralDensity
from spectra.validation import check_bool, check_float, check_int

from .blockresults import annotate, embed
from .blockrules import envelope_error, merge, radau_rules
from .samplers import Sample, haar_compress, prepare_sample

__all__ = ["DENSE_MAX", "MAX_STEPS", "MIN_NODES", "RTOL", "BlockSample", "BlockSpectrum",
           "annotate", "block_spectrum", "embed", "from_density", "prepare_blocks",
           "quantile_points"]

#: Largest block solved densely (one ``eigvalsh``) by :func:`block_spectrum`. Measured on
#: one core (RBF kernel block, 10 probes x 80 steps): dense 1.7 s against SLQ 4.9 s at
#: n = 2000, both 13.6 s at n = 4000.
DENSE_MAX = 3000
#: Points of the coarse spectrum compressed by :meth:`BlockSample.subsample`.
COARSE_POINTS = 2000
#: Default target of the adaptive budget: estimated W1 error over the block's sd.
RTOL = 0.01
#: Lanczos steps of the first round of an adaptive block estimate (then doubled).
FIRST_STEPS = 20
#: Most Lanczos steps an adaptive block estimate takes.
MAX_STEPS = 320
#: The adaptive budget raises the probes to at most this multiple of ``num_probes``.
MAX_PROBE_FACTOR = 4
_SLQ_OPTIONS = ("num_probes", "num_steps", "dense_max", "rank", "psd", "progress", "rtol")
#: Fewest distinct quadrature nodes a density must have to stand for a block (the
#: driver's ``MIN_EIGENVALUES``: the eigenvalues a model fit needs).
MIN_NODES = 16


# ======================================================================== block spectra
@dataclass(frozen=True, eq=False)
class BlockSpectrum:
    """The spectrum of one ``n x n`` block as ``n`` points, with its error.

    Attributes
    ----------
    eigs : ndarray
        ``n`` sorted points: the exact eigenvalues (dense), or the exact deflated
        eigenvalues plus quantile points of the SLQ measure (module docstring).
    outliers : ndarray
        The exact (deflated) eigenvalues among ``eigs`` (empty for dense blocks: all
        are exact).
    method : str
        ``"dense"``, ``"slq"`` or ``"density"`` (from a given SpectralDensity).
    num_matvecs : int
        Products with the block (``n`` for a dense block formed by products; 0 when the
        block's entries were read).
    quadrature_error, probe_error : float
        W1 error estimates (absolute units) of the points' law (module docstring);
        ``nan`` when unknown.
    """

    eigs: np.ndarray
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = "dense"
    num_matvecs: int = 0
    quadrature_error: float = 0.0
    probe_error: float = 0.0

    @property
    def n(self) -> int:
        """Block size."""
        return int(self.eigs.size)

    @property
    def error(self) -> float:
        """Total W1 error estimate (quadrature plus probes)."""
        return float(self.quadrature_error + self.probe_error)

    @property
    def relative_error(self) -> float:
        """:attr:`error` in units of the points' standard deviation."""
        sd = float(self.eigs.std())
        return self.error / sd if sd > 0 else float("inf")


def quantile_points(nodes: Any, weights: Any, count: int, *, lower: float | None = None
                    ) -> np.ndarray:
    r"""``count`` points standing for a discrete measure: bin averages of its quantiles.

    Node ``x_j`` of mass ``w_j`` is spread uniformly over :math:`[x_j - h_j, x_j + h_j]`,
    :math:`h_j` half the distance to its nearest neighbour (0 for the two extreme nodes,
    and at most ``x_j - lower``);
    point ``i`` is the average of that measure's quantile function over
    :math:`[i/\text{count}, (i+1)/\text{count}]`. The points' mean equals the measure's.

    Parameters
    ----------
    nodes, weights : array_like
        The measure (weights non-negative, not all zero; normalised here).
    count : int
    lower : float, optional
        A lower bound of the support (0 for a PSD matrix).

    Returns
    -------
    ndarray
        ``count`` sorted points.
    """
    count = check_int(count, "count", low=1)
    x, w = merge(np.asarray(nodes, float), np.asarray(weights, float))
    if x.size == 1:
        return np.full(count, x[0])
    gaps = np.diff(x)
    # extreme nodes stay points (Gauss rules converge there first): the range is kept
    h = 0.5 * np.minimum(np.concatenate([[0.0], gaps]), np.concatenate([gaps, [0.0]]))
    if lower is not None:
        h = np.clip(np.minimum(h, x - lower), 0.0, None)
    c = np.concatenate([[0.0], np.cumsum(w)])
    Gc = np.concatenate([[0.0], np.cumsum(w * x)])
    u = np.linspace(0.0, 1.0, count + 1)
    j = np.clip(np.searchsorted(c, u, side="right") - 1, 0, x.size - 1)
    du = np.clip(u - c[j], 0.0, w[j])
    G = Gc[j] + du * (x[j] - h[j]) + h[j] * du**2 / w[j]
    return np.sort(np.diff(G) * count)


def _from_rules(probes: list[list[tuple[np.ndarray, np.ndarray]]], deflated: np.ndarray,
                n: int, psd: bool, method: str, num_matvecs: int) -> BlockSpectrum:
    """Pseudo-eigenvalues and error of an SLQ measure given as per-probe complement rules.

    ``probes[i]`` lists probe ``i``'s rules (its Gauss rule, and its Gauss-Radau rule at 0
    for a PSD block); the probe's measure is their equal-weight mixture.
    """
    c = deflated.size
    if c > n:
        raise ValueError(f"{c} deflated eigenvalues for a block of size n={n}")
    rules = [_mixture(pr) for pr in probes]
    pooled_x = np.concatenate([r[0] for r in rules])
    pooled_w = np.concatenate([r[1] for r in rules]) / len(rules)
    distinct = np.unique(pooled_x).size
    if n - c > 0 and distinct < MIN_NODES:
        raise ValueError(
            f"the spectral density has {distinct} distinct quadrature nodes outside its "
            f"{c} deflated eigenvalues; fitting a model needs at least {MIN_NODES} "
            "(raise num_probes * num_steps, e.g. spectra.density(op, num_probes=10, "
            "num_steps=80))")
    lower = 0.0 if psd else None
    rest = quantile_points(pooled_x, pooled_w, n - c, lower=lower) if n > c else np.zeros(0)
    eigs = np.sort(np.concatenate([deflated, rest]))
    frac = (n - c) / n  # the complement's share of the block's measure
    quad = frac * envelope_error(probes, lower)
    probe = float("nan") if len(rules) < 2 else frac * _probe_spread(rules, pooled_x,
                                                                      pooled_w)
    return BlockSpectrum(eigs, np.sort(deflated), method, num_matvecs, quad, probe)


def _mixture(rules: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The equal-weight mixture of one probe's rules (weights summing to one)."""
    x = np.concatenate([r[0] for r in rules])
    w = np.concatenate([r[1] / r[1].sum() for r in rules]) / len(rules)
    return x, w


def _probe_spread(rules: list, px: np.ndarray, pw: np.ndarray) -> float:
    from spectra.distances import wasserstein1

    e = [wasserstein1(x, px, w / w.sum(), pw) for x, w in rules]
    return float(np.sqrt(np.mean(np.square(e)) / len(rules)))


def _check_psd(eigs: np.ndarray, what: str) -> None:
    scale = float(np.max(np.abs(eigs))) or 1.0
    if eigs.min() < -1e-8 * scale:
        raise ValueError(
            f"{what} is declared positive semi-definite but has eigenvalue {eigs.min():.3g} "
            f"(largest magnitude {scale:.3g}); pass psd=False for an indefinite matrix")


def from_density(den: SpectralDensity, n: int | None = None, *, psd: bool = False
                 ) -> BlockSpectrum:
    """The :class:`BlockSpectrum` of a block from its :class:`spectra.SpectralDensity`.

    SLQ densities (:func:`spectra.density`) are split into their per-probe Gauss rules
    (each rule's nodes are ascending); the eigenvalues a deflated run repeated in every
    rule are the block's exact outliers. An ``"exact"`` density (full budget) gives the
    eigenvalues themselves. A density carries no tridiagonals, so a PSD block given this
    way keeps its Gauss rules (no Gauss-Radau midpoint, :func:`block_spectrum`).

    Parameters
    ----------
    den : SpectralDensity
    n : int, optional
        Block size (the dimension the density was estimated on). Inferred from the
        deflated weights or an exact density when omitted; required otherwise.
    psd : bool
        The block is positive semi-definite (negative nodes are an error).
    """
    if not isinstance(den, SpectralDensity):
        raise TypeError(f"expected a spectra.SpectralDensity, got {type(den).__name__}")
    x = np.asarray(den.nodes, float)
    w = np.asarray(den.weights, float)
    if psd:
        _check_psd(x, "the block")
    if den.method == "exact":
        m = x.size if n is None else check_int(n, "n", low=1)
        if m != x.size:
            raise ValueError(f"an exact density of {x.size} eigenvalues is not a block of "
                             f"size n={m}")
        return BlockSpectrum(np.sort(x), method="dense", num_matvecs=den.num_matvecs)
    rules, deflated = _split_rules(den) if den.method == "slq" else ([(x, w)], np.zeros(0))
    if n is None:
        if deflated.size == 0:
            raise TypeError("pass n= (the block size the density was estimated on); it can "
                            "only be inferred from a deflated or exact density")
        n = int(round(1.0 / float(w[0])))  # each deflated eigenvalue carries weight 1/n
    n = check_int(n, "n", low=1)
    spec = _from_rules([[r] for r in rules], deflated, n, psd, "density", den.num_matvecs)
    if den.method != "slq":  # not Gauss rules: the Chebyshev-Markov-Stieltjes bound is void
        spec = replace(spec, quadrature_error=float("nan"))
    return spec


def _split_rules(den: SpectralDensity) -> tuple[list, np.ndarray]:
    """Per-probe complement rules and the deflated eigenvalues of an SLQ density.

    A :class:`spectra.SpectralDensity` lists its deflated eigenvalues once, first
    (``den.deflated``), then each probe's complement rule as an ascending run of Ritz values.
    """
    x = np.asarray(den.nodes, float)
    w = np.asarray(den.weights, float)
    deflated = np.asarray(den.deflated, float)
    c = deflated.size
    if c and not np.array_equal(x[:c], deflated):
        raise ValueError("the SpectralDensity's first nodes are not its deflated eigenvalues; "
                         "pass a BlockSpectrum or the eigenvalues instead")
    x, w = x[c:], w[c:]
    cuts = np.flatnonzero(np.diff(x) < 0) + 1
    return list(zip(np.split(x, cuts), np.split(w, cuts), strict=True)), deflated


def block_spectrum(op: Any, *, psd: bool | None = None, dense_max: int = DENSE_MAX,
                   num_probes: int = 10, num_steps: int | None = None, rtol: float = RTOL,
                   rank: int | None = None, rng: Any = None) -> BlockSpectrum:
    """Spectrum of one block: dense ``eigvalsh`` up to ``dense_max``, deflated SLQ above.

    Parameters
    ----------
    op : spectra.Operator, matrix-like
        The symmetric ``n x n`` block. A dense block is read with ``op.block(rows,
        cols)`` when the operator has it (kernel operators), else formed from ``n``
        products.
    psd : bool, optional
        Declared positive semi-definite (default: the operator's ``psd`` flag);
        a negative eigenvalue or Ritz value is then an error, and an SLQ block is the
        midpoint of its Gauss and Gauss-Radau (node at 0) rules (module docstring).
    dense_max : int
        Largest size solved densely (:data:`DENSE_MAX`).
    num_probes : int
        SLQ probes (one of them the deflation pilot).
    num_steps : int, optional
        Lanczos steps per probe. ``None`` (default): adaptive, from
        :data:`FIRST_STEPS`, steps and probes doubled until
        :attr:`BlockSpectrum.relative_error` is at most ``rtol`` (module docstring).
    rtol : float
        Target of the adaptive budget, in block sds (:data:`RTOL`).
    rank : int, optional
        A known bound on the block's rank (PSD blocks; e.g. the parameter count of a
        Gram ``J J^T``): a block of ``n > rank`` has at least ``n - rank`` exact zeros,
        and its ``n - rank`` smallest points are set to zero. SLQ cannot tell a null
        space from a continuum of tiny eigenvalues above it (the lowest Gauss node sits
        among both), so without the bound the zeros are smeared over that node; the
        mean changes by those points' sum only.
    rng : None, int or numpy Generator
        Probes.
    """
    from spectra.operators import as_operator, dense_matrix, require_symmetric

    A = as_operator(op)
    n = A.shape[0]
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"a block must be square, got shape {A.shape}")
    require_symmetric(A, "a block of free decompression")
    psd = bool(A.psd) if psd is None else check_bool(psd, "psd")
    dense_max = check_int(dense_max, "dense_max", low=0)
    rank = None if rank is None else check_int(rank, "rank", low=0)
    rtol = check_float(rtol, "rtol", low=0.0, low_open=True)
    if n <= dense_max:
        idx = np.arange(n)
        B = np.asarray(op.block(idx, idx), float) if hasattr(op, "block") else dense_matrix(A)
        spec = BlockSpectrum(np.linalg.eigvalsh(0.5 * (B + B.T)), method="dense",
                             num_matvecs=0 if hasattr(op, "block") else n)
    elif num_steps is not None:
        spec = _slq_block(A, n, num_probes, check_int(num_steps, "num_steps", low=1), psd, rng)
    else:
        spec = _adaptive_slq(A, n, check_int(num_probes, "num_probes", low=1), rtol, psd, rng)
    if psd:
        _check_psd(spec.eigs, "the block")
    if psd and rank is not None and n > rank:
        e = spec.eigs.copy()
        e[: n - rank] = 0.0
        spec = replace(spec, eigs=e)
    return spec


def _adaptive_slq(A: Any, n: int, p: int, rtol: float, psd: bool, rng: Any
                  ) -> BlockSpectrum:
    """Deflated SLQ rounds until the estimated error is at most ``rtol`` block sds.

    Each round doubles what is too large: the steps while the quadrature part exceeds
    ``rtol / 2`` (up to :data:`MAX_STEPS`), the probes while the probe part does (up to
    ``MAX_PROBE_FACTOR`` times ``p``). Products of every round are counted.
    """
    spent, k, p_max = 0, FIRST_STEPS, MAX_PROBE_FACTOR * p
    while True:
        spec = _slq_block(A, n, p, k, psd, rng)
        spent += spec.num_matvecs
        sd = float(spec.eigs.std())
        if spec.method == "dense" or spec.relative_error <= rtol or not sd > 0:
            return replace(spec, num_matvecs=spent)
        grow_k = spec.quadrature_error > 0.5 * rtol * sd and k < MAX_STEPS
        grow_p = not spec.probe_error <= 0.5 * rtol * sd and p < p_max
        if not (grow_k or grow_p):
            break
        k, p = (min(2 * k, MAX_STEPS) if grow_k else k), (min(2 * p, p_max) if grow_p else p)
    warnings.warn(f"the SLQ estimate of a block of size {n} did not reach rtol={rtol:g} with "
                  f"{p} probes x {k} steps (estimated W1 error {spec.relative_error:.3g} sd); "
                  "pass num_probes/num_steps or use a dense block", UserWarning, stacklevel=3)
    return replace(spec, num_matvecs=spent)


def _slq_block(A: Any, n: int, num_probes: int, num_steps: int, psd: bool, rng: Any
               ) -> BlockSpectrum:
    """One deflated SLQ run of ``num_steps`` steps turned into a :class:`BlockSpectrum`."""
    from spectra.quadrature import slq_measure

    m = slq_measure(A, num_probes=num_probes, num_steps=num_steps, deflate=True, rng=rng)
    if m.exact:  # a budget at or above n: the exact eigenvalues from n products
        return BlockSpectrum(np.sort(m.nodes[0]), method="dense", num_matvecs=m.num_matvecs)
    rules, deflated = _measure_rules(m.nodes, m.weights, n)
    probes = [[r] for r in rules]
    if psd and m.lanczos is not None and m.lanczos.alpha.shape[0] == len(rules):
        probes = [[g, r] for g, r in zip(rules, radau_rules(m.lanczos, m.scale, 0.0),
                                         strict=True)]
    return _from_rules(probes, deflated, n, psd, "slq", m.num_matvecs)


def _measure_rules(nodes: list, weights: list, n: int) -> tuple[list, np.ndarray]:
    """Split the deflated prefix (weight exactly ``1/n`` in every rule) from the rules."""
    c = 0
    if len(nodes) >= 2:
        ref = nodes[0]
        while (c < min(len(t) for t in nodes) and all(t[c] == ref[c] for t in nodes)
               and all(w[c] == 1.0 / n for w in weights)):
            c += 1
    rules = [(t[c:], w[c:]) for t, w in zip(nodes, weights, strict=True)]
    return rules, np.asarray(nodes[0][:c], float)


# ======================================================================== the sample
@dataclass
class BlockSample(Sample):
    """A :class:`~freedecomp.samplers.Sample` whose blocks are :class:`BlockSpectrum` s.

    Sub-samples are real sub-blocks (the sampler on ``k`` of a block's indices) while
    they fit :data:`DENSE_MAX`; above it, and for ``haar=True``, a Haar
    compression of a :data:`COARSE_POINTS`-point version of the spectrum at the same
    ratio ``k/n``, re-quantiled to ``k`` points.
    """

    spectra: list = field(default_factory=list)
    indices: list | None = None
    options: dict = field(default_factory=dict)

    def subblock(self, k: int, rng: np.random.Generator, haar: bool = False,
                 block: int = 0) -> tuple[np.ndarray, None]:
        """(Pseudo-)eigenvalues of a ``k x k`` sub-block of block ``block``, and ``None``.

        No matrix is returned: the sub-block is an operator (or a Haar compression).
        """
        if (not haar and self.sampler is not None and self.indices is not None
                and k <= self.options.get("dense_max", DENSE_MAX)):
            sub = np.sort(rng.choice(self.n, size=k, replace=False))
            return block_spectrum(self.sampler(self.indices[block][sub]),
                                  **self.options).eigs, None
        e = self.blocks[block]
        if e.size <= COARSE_POINTS:
            return haar_compress(e, k, rng), None
        m = COARSE_POINTS
        coarse = quantile_points(e, np.ones(e.size), m)
        small = haar_compress(coarse, max(2, round(m * k / e.size)), rng)
        return quantile_points(small, np.ones(small.size), k), None

    def subsample(self, k: int, rng: np.random.Generator, haar: bool = False,
                  block: int = 0) -> np.ndarray:
        """The eigenvalues of :meth:`subblock`."""
        return self.subblock(k, rng, haar, block)[0]


def _is_operator(B: Any) -> bool:
    from spectra.operators import Operator

    if isinstance(B, Operator):
        return True
    mod = type(B).__module__
    return mod.startswith("scipy.sparse")


def prepare_blocks(sample: Any, *, n: int | None, total: int | None,
                   rng: np.random.Generator, num_samples: int, minimum: int,
                   options: dict | None = None) -> Sample:
    """Normalise any ``decompress`` input to a :class:`Sample` (the driver's one hook).

    :class:`spectra.SpectralDensity`, :class:`BlockSpectrum` (or a non-empty list of
    either) and block samplers that return operators become a :class:`BlockSample`;
    everything else goes to :func:`freedecomp.samplers.prepare_sample` unchanged (a
    sampler is called once on a copy of ``rng`` to see what it returns, so dense
    samplers draw exactly the blocks they drew before).

    Parameters
    ----------
    options : dict, optional
        Block-estimation options: ``num_probes``, ``num_steps``, ``rtol``, ``dense_max``,
        ``psd``, ``rank`` (see :func:`block_spectrum`) and ``progress`` (a tqdm bar over the blocks:
        ``None``, the default, shows it only when standard error is a terminal).
    """
    opts = _block_options({**getattr(sample, "block_options", {}), **(options or {})})
    if isinstance(sample, (SpectralDensity, BlockSpectrum)):
        sample = [sample]
    if (isinstance(sample, (list, tuple)) and sample
            and all(isinstance(s, (SpectralDensity, BlockSpectrum)) for s in sample)):
        specs = [s if isinstance(s, BlockSpectrum) else
                 from_density(s, n, psd=opts.get("psd", False)) for s in sample]
        return _sample_of(specs, minimum, total=total)
    if callable(sample) and not isinstance(sample, np.ndarray):
        probe_rng = copy.deepcopy(rng)
        if n is not None and total is not None:
            n = check_int(n, "n", low=1)
            total = check_int(total, "total", low=n + 1, hint=f" (it must exceed n = {n})")
            idx = np.sort(probe_rng.choice(total, size=n, replace=False))
            first = sample(idx)
            if _is_operator(first):
                rows = check_int(getattr(sample, "rows_per_index", 1), "rows_per_index", low=1)
                return _operator_sample(sample, first, idx, (n, total, rows), rng,
                                        num_samples, minimum, opts)
            return prepare_sample(_Replay(sample, idx, first), n=n, total=total, rng=rng,
                                  num_samples=num_samples, minimum=minimum)
    return prepare_sample(sample, n=n, total=total, rng=rng, num_samples=num_samples,
                          minimum=minimum)


def _block_options(options: dict) -> dict:
    unknown = set(options) - set(_SLQ_OPTIONS)
    if unknown:
        raise TypeError(f"unknown block options {sorted(unknown)}; allowed: {_SLQ_OPTIONS}")
    out = {k: check_int(v, k, low=1 if k not in ("dense_max", "rank") else 0)
           for k, v in options.items()
           if k not in ("psd", "progress", "rtol") and v is not None}
    if options.get("rtol") is not None:
        out["rtol"] = check_float(options["rtol"], "rtol", low=0.0, low_open=True)
    for flag in ("psd", "progress"):
        if options.get(flag) is not None:
            out[flag] = check_bool(options[flag], flag)
    return out


@dataclass
class _Replay:
    """A sampler whose first block (already drawn on ``idx``) is served from memory."""

    sampler: Callable
    idx: np.ndarray
    first: Any

    def __call__(self, idx: np.ndarray) -> Any:
        if self.first is not None and np.array_equal(idx, self.idx):
            out, self.first = self.first, None
            return out
        return self.sampler(idx)


def _operator_sample(sampler: Callable, first: Any, idx0: np.ndarray, sizes: tuple,
                     rng: np.random.Generator, num_samples: int, minimum: int,
                     opts: dict) -> BlockSample:
    """Estimate ``num_samples`` operator blocks (the first is ``first``, on ``idx0``).

    ``sizes = (n, total, rows)``: ``n`` of ``total`` indices per block, ``rows`` rows of
    the matrix per index (a sampler's ``rows_per_index``, e.g. a data point's outputs);
    the blocks are ``n rows`` square, the matrix ``total rows``.
    """
    n, total, rows = sizes
    num_samples = check_int(num_samples, "num_samples", low=1)
    specs, drawn = [], []
    bar = _progress(num_samples, opts.pop("progress", None))
    for b in range(num_samples):
        idx = np.sort(rng.choice(total, size=n, replace=False))
        op = first if b == 0 else sampler(idx)
        if b == 0:
            idx = idx0
        drawn.append(idx)
        shape = tuple(getattr(op, "shape", ()))
        if shape != (n * rows, n * rows):
            raise ValueError(f"the block sampler returned an operator of shape {shape} for "
                             f"{n} indices; expected {(n * rows, n * rows)}")
        specs.append(block_spectrum(op, rng=rng, **opts))
        bar.update(1)
    bar.close()
    smp = _sample_of(specs, minimum, total=total * rows)
    smp.sampler, smp.indices = sampler, (drawn if rows == 1 else None)
    smp.options = {k: v for k, v in opts.items() if k in ("psd", "dense_max", "num_probes",
                                                          "num_steps", "rank", "rtol")}
    return smp


def _progress(total: int, enabled: bool | None) -> Any:
    """A tqdm bar over the block estimates: ``None`` shows it only on a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="block spectra", unit="block", leave=False,
                disable=None if enabled is None else not enabled)


def _sample_of(specs: Sequence[BlockSpectrum], minimum: int, total: int | None) -> BlockSample:
    sizes = {s.n for s in specs}
    if len(sizes) != 1:
        raise ValueError(f"all blocks must have the same size, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n < minimum:
        raise ValueError(f"need at least {minimum} eigenvalues to fit a model, got a block "
                         f"of size {n}")
    for s in specs:
        if float(s.eigs.std()) <= 1e-12 * (1.0 + abs(float(s.eigs.mean()))):
            raise ValueError("all eigenvalues of a block are equal: nothing to estimate")
    return BlockSample(n, [s.eigs for s in specs], total=total, spectra=list(specs))
