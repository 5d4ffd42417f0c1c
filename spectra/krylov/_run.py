r"""The thick-restart loop of :func:`spectra.eigsh`, its checks (:doc:`/theory/lanczos`).

The explicit residual check, and the search for missed copies of multiple eigenvalues.

:class:`Run` drives one basis (:mod:`spectra.krylov._basis` or
:mod:`spectra.krylov._block`): Lanczos steps, Ritz values from the projected matrix,
the residual estimates :math:`|\beta_m e_m^T y_i|` and thick restarts.  When every
wanted estimate meets the tolerance, :meth:`Run.verify` forms the Ritz vectors and
their *explicit* residuals :math:`\|A x_i - \theta_i x_i\|`, from the stored
products :math:`A x_i = W y_i` of the basis (or ``k`` more products, counted): the
estimates come from a relation that holds only to rounding, and "converged" is said
only when the true residuals meet the tolerance.  When they do
not, the loop continues with an internal tolerance tightened by the observed ratio.

:class:`Copies` then looks for eigenvalues the Krylov sequence cannot see: a
single start vector has one direction in each eigenspace, so further copies of a
multiple eigenvalue enter only through rounding.  A short Lanczos run from a fresh
random vector on the complement of the converged set (the deflated operator
:math:`(I - XX^T) A (I - XX^T)`) finds a missed copy as a Ritz value better than the
worst wanted one; it is then converged, swapped in, and the check repeated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import eps
from ._basis import make_basis, random_direction
from ._scale import column_norms, real_product

#: The Ritz values are computed every ``1 + size // _CHECK_EVERY`` steps (and at the end
#: of each basis cycle): an eigendecomposition of the projected matrix per step would
#: cost more than the products on small problems, for at most ``size / 16`` products.
_CHECK_EVERY = 16
#: Verification rounds (explicit residual checks that fail) before giving up.
_MAX_VERIFY = 4
#: Fraction of the predicted remaining steps to the next look (see Run._predict).
_AHEAD = 0.4
#: The stored products are dropped at a restart once their rotation bound exceeds this
#: fraction of the smallest wanted threshold (the residual check then takes k products).
_DROP = 0.5


def converged_mask(res, theta, tol, anorm, dtype, exhausted=False):
    r"""Mask of the pairs meeting the tolerance (all of them on an exhausted space).

    :math:`r \le \max(\mathrm{tol}\max(|\theta|, \epsilon^{2/3} \|A\|_{est}),
    8\epsilon\|A\|_{est})`, the documented criterion of :func:`spectra.eigsh`.
    """
    if exhausted:
        return np.ones(len(theta), dtype=bool)
    return res <= _threshold(theta, tol, anorm, dtype)


def _threshold(theta, tol, anorm, dtype) -> np.ndarray:
    """The residual each pair must meet (see :func:`converged_mask`)."""
    e = _eps(dtype)
    return np.maximum(tol * np.maximum(np.abs(theta), e ** (2 / 3) * anorm), 8.0 * e * anorm)



_EPS: dict = {}


def _eps(dtype: Any) -> float:
    """:func:`spectra.backend.eps`, memoised (it is asked once per convergence test)."""
    try:
        return _EPS[dtype]
    except KeyError:
        return _EPS.setdefault(dtype, eps(dtype))


class Run:
    """One thick-restart Lanczos run on a basis ``B`` for ``k`` wanted pairs.

    ``budget`` bounds the products of the iteration, ``limit`` (at least ``budget``)
    those of the iteration and the explicit check together.
    """

    def __init__(self, B, k: int, which: str, tol: float, budget: int, limit: int,
                 keep: int, prefer):
        self.B, self.k, self.which, self.tol = B, k, which, tol
        self.budget, self.limit, self.keep, self.prefer = budget, limit, keep, prefer
        self.restarts, self.hold, self.factor = 0, False, 1.0
        self.ahead, self.prev = 0, None  # look-ahead prediction (see _predict)
        #: no look before 2 k + 1 vectors: k pairs need about twice as many steps to
        #: converge (an invariant subspace ends the cycle anyway: see ``hold``)
        self.first = min(2 * k + 1, B.m)
        self.theta = self.Y = self.res = self.order = None
        #: ``(largest stagnated residual, its relative size)`` when the explicit residuals
        #: stopped decreasing below the tolerance (see :meth:`_stagnated`), else ``None``
        self.floor: tuple[float, float] | None = None

    @property
    def exhausted(self) -> bool:
        return self.B.size >= self.B.dim

    def ritz(self) -> None:
        self.theta, self.Y, self.res = self.B.ritz()
        self.order = self.prefer(self.theta, self.which)

    def iterate(self) -> bool:
        """Steps and restarts until the wanted estimates converge; ``False``: budget out."""
        B = self.B
        if self.theta is not None and self.exhausted:
            return True
        if self.theta is not None and B.size >= B.m:
            self._restart()
        last, self.prev = -1, None
        while True:
            target = self._next_look(last)
            self.hold = B.advance(target) or self.hold
            if not self.exhausted and B.size < B.m and (self.hold or B.size < target):
                continue
            last = B.size
            self.ritz()
            w = self.order[: self.k]
            thr = _threshold(self.theta[w], self.tol * self.factor, B.anorm, B.op.dtype)
            ok = self.res[w] <= thr
            self._predict(w, thr, ok)
            if self.exhausted or (bool(np.all(ok)) and not (self.hold and B.size < B.m)):
                return True
            if B.used + B.b > self.budget:
                return False
            if B.size >= B.m:
                self._restart()

    def _next_look(self, last: int) -> int:
        """The basis size of the next look at the Ritz values.

        The end of the cycle after a breakdown; never before :attr:`first` vectors; then
        every ``max(1 + size // 16, ahead)`` steps since the last look (:meth:`_predict`).
        """
        B = self.B
        if self.hold:
            return B.m
        s = max(B.size + 1, self.first)
        while s < B.m and s - last < max(1 + s // _CHECK_EVERY, self.ahead):
            s += 1
        return min(s, B.m)

    def _predict(self, w: np.ndarray, thr: np.ndarray, ok: np.ndarray) -> None:
        r"""Predict the steps until the wanted estimates converge (sets :attr:`ahead`).

        From the estimates :math:`r_j` of the ``j``-th most wanted Ritz value (indices
        ``w``, thresholds ``thr``, converged ``ok``) at this look and the last one, the
        rate :math:`\rho_j = (r_j / r_j')^{1/\Delta}` per product; the slowest
        unconverged pair needs :math:`\log(t_j / r_j) / \log \rho_j` more, and the next
        look comes after :data:`_AHEAD` of that, at most ``1 + size // 4`` steps on
        (Lanczos converges superlinearly, so the prediction is long rather than short;
        on the pyamg benchmark these looks cost no product over looking every ``1 +
        size // 16`` steps, with half the looks).  No prediction while an estimate is
        not decreasing.
        """
        B = self.B
        res = np.maximum(self.res[w], 1e-300)
        self.ahead, prev, self.prev = 0, self.prev, (B.used, res)
        if prev is None or B.used <= prev[0] or bool(np.all(ok)):
            return
        rate = (res / prev[1]) ** (1.0 / (B.used - prev[0]))
        todo = ~ok
        if np.any(rate[todo] >= 1.0):
            return
        need = np.log(thr[todo] / res[todo]) / np.log(rate[todo])
        self.ahead = int(min(max(0.0, _AHEAD * float(np.max(need))), 1 + B.size // 4))

    def _restart(self) -> None:
        B = self.B
        B.restart(self.theta, self.Y, self.order[: self.keep])
        self.restarts, self.hold = self.restarts + 1, False
        if getattr(B, "W", None) is not None:
            w = self.order[: self.k]
            thr = _threshold(self.theta[w], self.tol, B.anorm, B.op.dtype)
            if B.drift > _DROP * float(np.min(thr)):
                # the rotation bound only grows: the stored products could no longer
                # decide the check, and rotating them costs a fifth of a large run
                B.drop_products()
                self.budget = min(self.budget, self.limit - self.k)

    def selected(self, output_order) -> np.ndarray:
        sel = self.order[: self.k]
        return sel[output_order(self.theta[sel], self.which)]

    def verify(self, sel: np.ndarray):
        """Ritz vectors of ``sel`` and their true residuals.

        From the stored products ``W = A V`` when the basis keeps them (no product),
        else (or when the rotation bound leaves a pair undecided) from ``len(sel)``
        fresh products (when the budget allows them).  Returns ``(X, true_residuals,
        ok)`` in the run's scaled units; when the check fails the internal tolerance is
        tightened for the next :meth:`iterate`.
        """
        B, th = self.B, self.theta[sel]
        X = B.vectors(self.Y[:, sel])
        true, ok, undecided = self._stored(X, sel)
        if true is None or (undecided and B.used + len(sel) <= self.limit):
            true = explicit_residuals(B, X, th)
            ok = converged_mask(true, th, self.tol, B.anorm, B.op.dtype)
        if not np.all(ok):
            est = np.maximum(self.res[sel], 1e-300)
            ratio = np.min(np.where(ok, 1.0, est / np.maximum(true, 1e-300)))
            self.factor *= float(np.clip(0.5 * ratio, 1e-3, 0.5))
        return X, true, ok

    def _stored(self, X, sel: np.ndarray):
        """True residuals from the stored products and their verdict, or ``(None, None)``.

        Returns ``(true, ok, undecided)``: a pair is converged (``ok``) when its
        residual plus the rotation bound :attr:`Basis.drift` meets the tolerance, and
        ``undecided`` is whether the bound leaves any pair between pass and fail (the
        caller then computes fresh products if it can).  ``(None, None, True)`` when the
        basis stores no products.
        """
        B, th = self.B, self.theta[sel]
        stored = getattr(B, "stored_residuals", None)
        true = None if stored is None else stored(X, self.Y[:, sel], th)
        if true is None:
            return None, None, True
        ok = converged_mask(true + B.drift, th, self.tol, B.anorm, B.op.dtype)
        maybe = converged_mask(np.maximum(true - B.drift, 0.0), th, self.tol, B.anorm,
                               B.op.dtype)
        return true, ok, bool(np.any(maybe & ~ok))

    def _stagnated(self, sel, true, ok, prev) -> bool:
        r"""Whether the explicit residuals have reached what the products allow.

        After a failed check that follows another: every failing pair's explicit
        residual fell by less than half since that check while its Lanczos estimate is
        ten times below it.  The relation :math:`A V = V H + \beta v e^T` then holds
        only to the accuracy of the computed products (rounding in a float32 product, an
        operator slightly non-symmetric or noisy), more steps cannot lower the true
        residual, and the run stops (sets :attr:`floor`) instead of spending the budget.
        """
        bad = ~ok
        if prev is None or len(prev) != len(true) or not np.any(bad):
            return False
        est = self.res[sel]
        if not (np.all(true[bad] > 0.5 * prev[bad]) and np.all(est[bad] <= 0.1 * true[bad])):
            return False
        rel = true[bad] / np.maximum(np.abs(self.theta[sel][bad]), 1e-300)
        self.floor = float(np.max(true[bad])), float(np.max(rel))
        return True

    def solve(self, output_order, rounds: int = _MAX_VERIFY):
        """Iterate and verify until the explicit residuals pass or the budget runs out.

        Returns ``(theta, X, residuals, converged, verified)``: the wanted Ritz values
        in output order, their Ritz vectors, residual norms (explicit when ``verified``,
        else the estimates; scaled units) and whether they met ``tol``.
        """
        B, k = self.B, self.k
        last = prev = None
        for _ in range(rounds):
            est_ok = self.iterate()
            sel = self.selected(output_order)
            if self.exhausted:  # the whole space: the pairs are exact to rounding
                return (self.theta[sel], B.vectors(self.Y[:, sel]), self.res[sel].copy(), True,
                        False)
            if B.used + (0 if getattr(B, "W", None) is not None else k) > self.limit:
                break
            X, true, ok = self.verify(sel)
            last = self.theta[sel], X, true, False, True
            if est_ok and np.all(ok):
                return self.theta[sel], X, true, True, True
            if not est_ok or B.used + B.b > self.budget or self._stagnated(sel, true, ok, prev):
                break
            prev = true
        if last is not None:
            return last
        sel = self.selected(output_order)
        return self.theta[sel], B.vectors(self.Y[:, sel]), self.res[sel].copy(), False, False


def explicit_residuals(B, X, theta: np.ndarray) -> np.ndarray:
    """``||inv A x_i - theta_i x_i||`` for the columns of ``X`` (``X.shape[1]`` products)."""
    AX = real_product(B.op.matmat(X), "the explicit residual check")
    B.used += X.shape[1]
    out = np.empty(X.shape[1])
    for i in range(X.shape[1]):  # column by column: two n-vectors of scratch
        r = AX[:, i] * B.inv - X[:, i] * float(theta[i])
        out[i] = column_norms(r[:, None], B.xp)[0]
    return out


# ---------------------------------------------------------------------------- copies
def _score(theta: np.ndarray, which: str) -> np.ndarray:
    """Larger is more wanted: ``theta`` (LA), ``-theta`` (SA), ``|theta|`` (LM)."""
    return {"LA": theta, "SA": -theta, "LM": np.abs(theta)}[which]


def _groups(theta: np.ndarray, which: str) -> list[tuple[str, np.ndarray]]:
    """The wanted set split by end: one group, or for "BE" the top and bottom ends."""
    if which != "BE":
        return [(which, np.arange(len(theta)))]
    order = np.argsort(theta, kind="stable")
    lo = len(theta) // 2
    return [("LA", order[lo:])] + ([("SA", order[:lo])] if lo else [])


#: A deflated check is "clean" when the Kuczynski-Wozniakowski bound on the chance of
#: its random start missing an eigenvalue above the wanted set falls below this.
_MISS_PROBABILITY = 0.01
#: A check that reaches its cap warns only when its best Ritz value lies within this
#: relative gap of the wanted set (the set ends in or near a cluster); otherwise the
#: message states the bound reached.
_CLUSTER_GAP = 1e-3


#: Steps of a deflated check before its first look at the bound.
_FIRST_LOOK = 4


def _more_steps(gap: float, steps: int, dim: int) -> int:
    r"""Further steps before the random-start bound can fall below :data:`_MISS_PROBABILITY`.

    The bound :math:`1.648\sqrt d\,e^{-\sqrt\varepsilon(2s - 1)}` passes from
    :math:`s \ge (\ln(1.648\sqrt d / P)/\sqrt\varepsilon + 1)/2`; the gap
    :math:`\varepsilon` only shrinks as the check's best Ritz value rises, so looking
    earlier cannot pass.  At least one step; a whole basis when the gap is zero.
    """
    if not gap > 0.0:
        return dim
    need = (np.log(1.648 * np.sqrt(dim) / _MISS_PROBABILITY) / np.sqrt(gap) + 1.0) / 2.0
    return int(max(1, min(dim, np.ceil(need) - steps)))


def _ends(which: str, t: float) -> list[tuple[float, float]]:
    """``(sign, threshold)``: an eigenvalue with ``sign * lambda > threshold`` is wanted."""
    if which == "LA":
        return [(1.0, t)]
    if which == "SA":
        return [(-1.0, -t)]
    return [(1.0, abs(t)), (-1.0, abs(t))]  # LM


def _judge(theta, slack, which, th, r, steps, anorm, dim):
    r"""Compare the check's Ritz values ``th`` (after ``steps`` steps) with the wanted set.

    Returns ``("hit", group, index of the worst wanted)`` when a Ritz value beats the
    worst wanted value by more than its slack (a missed eigenvalue), else ``("p", p,
    gap)``: the largest bound on the probability that the random start missed one
    (Kuczynski and Wozniakowski: :math:`1.648\sqrt{d}\,e^{-\sqrt{\varepsilon}(2m - 1)}`
    for the relative gap :math:`\varepsilon` of the shifted, positive semi-definite
    operator; 0 for an end whose best Ritz value is a converged copy of the worst wanted
    value) and the smallest such gap.
    """
    p, gap = 0.0, np.inf
    for group, idx in _groups(theta, which):
        w = int(idx[np.argmin(_score(theta[idx], group))])
        for sign, t in _ends(group, theta[w]):
            j = int(np.argmax(sign * th))
            best = float(sign * th[j])
            if best > t + slack[w]:
                return "hit", group, w
            if t - best <= slack[w] and r[j] <= slack[w]:
                continue  # a converged copy of the worst wanted value: the values stand
            eps_rel = max((t - slack[w] - best) / max(t + anorm, 1e-300), 0.0)
            gap = min(gap, eps_rel)
            p = max(p, 1.648 * np.sqrt(dim) * np.exp(-np.sqrt(eps_rel) * (2 * steps - 1)))
    return "p", min(p, 1.0), gap


class Copies:
    """Deflated checks for missed copies after a verified run (see the module notes).

    Lanczos steps (thick-restarted in a basis of ``ncv`` vectors) from a random vector
    orthogonal to the wanted vectors, on their complement, until a Ritz value beats the
    worst wanted one (a missed copy) or the random-start bound makes a miss unlikely
    (:data:`_MISS_PROBABILITY`), within ``cap`` products per check.  A missed copy is
    converged (a one-pair run on the complement, verified on ``A``), swapped for the
    worst wanted pair, and the check repeats (at most ``k`` times).
    """

    def __init__(self, B, which, tol, limit, ncv, cap, prefer, output_order, g):
        self.B, self.which, self.tol, self.limit = B, which, tol, limit
        self.ncv, self.cap, self.prefer = ncv, cap, prefer
        self.output_order, self.g = output_order, g
        self.found, self.miss = 0, 1.0

    def run(self, theta, X, true):
        """Return ``(theta, X, true, status)``: ``"clean"``, ``"bounded"`` or ``"unsure"``.

        ``"bounded"``: the cap was reached with the miss probability bound above
        :data:`_MISS_PROBABILITY` (kept in :attr:`miss`) but no Ritz value near the
        wanted set; ``"unsure"``: a copy near the end of the wanted set is not excluded.
        """
        for _ in range(len(theta)):
            hit, C = self._check(theta, X, true)
            if isinstance(hit, str):
                if C is not None:
                    C.release()
                return theta, X, true, hit
            group, worst = hit
            run = Run(C, 1, group, self.tol, self.limit - 1, self.limit,
                      max(1, C.m // 2), self.prefer)
            run.ritz()
            th, x, r, ok, verified = run.solve(self.output_order)
            self.B.used = C.used
            C.release()
            if not (ok and (verified or run.exhausted)):
                return theta, X, true, "unsure"
            theta, true = theta.copy(), true.copy()
            theta[worst], true[worst] = th[0], r[0]
            X = _replace_column(X, worst, x[:, 0])
            self.found += 1
        return theta, X, true, "unsure"

    def _check(self, theta, X, true):
        B, k = self.B, len(theta)
        m = min(self.ncv, B.dim - k)
        if m < 1:
            return "clean", None
        if B.used + m + 1 > self.limit:
            return "unsure", None
        C = make_basis(B.op, m, self.g, lock=X,
                       reorth="full" if getattr(B, "omega", None) is None else "partial")
        C.inv, C.anorm, C.used = B.inv, B.anorm, B.used
        C.set_start(random_direction(B.op, self.g, C.L))
        slack = np.maximum(true, self.tol * np.abs(theta))
        start, steps, keep = B.used, 0, max(1, min(m - 2, m // 2))
        fresh = True  # the basis is the Krylov space of the random start (no restart yet)
        target = min(m, _FIRST_LOOK)
        while True:
            while C.size < target and C.size < C.dim:
                size = C.size
                C.advance(target)  # stops early after a breakdown (a random direction)
                if fresh:
                    steps += C.size - size
            th, Y, r = C.ritz()
            B.used, B.anorm = C.used, max(B.anorm, C.anorm)
            kind, a, b = _judge(theta, slack, self.which, th, r, steps, B.anorm, C.dim)
            if kind == "hit":
                return (a, b), C
            self.miss = 0.0 if fresh and C.size >= C.dim else a
            if self.miss <= _MISS_PROBABILITY:
                return "clean", C
            if C.size < m and C.size < C.dim:  # mid-cycle: on to where the bound can pass
                more = _more_steps(b, steps, C.dim) if fresh else _FIRST_LOOK
                target = min(m, C.size + more)
                continue
            if (m < 3 or C.used - start + m - keep > self.cap  # m < 3: no room for both ends
                    or C.used + m - keep + 1 > self.limit):
                return ("unsure" if b < _CLUSTER_GAP else "bounded"), C
            C.restart(th, Y, _kept(th, self.prefer(th, self.which), keep))
            fresh, target = False, min(m, C.size + _FIRST_LOOK)


def _kept(th: np.ndarray, order: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` most wanted Ritz values' indices with the two extreme ones among them.

    The check's bound (:func:`_judge`) compares the largest and smallest Ritz values
    with the wanted set; keeping both at a thick restart makes them monotone (each
    cycle's space holds the kept vectors, Courant-Fischer), so the extremes after any
    number of restarts are at least as good as those of the first cycle, the Krylov
    space of the random start, to which the random-start bound applies.  (The two
    extremes can make ``keep + 1`` when ``keep = 1``; the caller leaves room.)
    """
    ends = [int(np.argmax(th)), int(np.argmin(th))]
    ends = [i for i in ends if i in order[:keep]] + [i for i in ends if i not in order[:keep]]
    sel = ends[:2] if ends[0] != ends[1] else ends[:1]
    sel += [int(i) for i in order if int(i) not in sel][: max(keep - len(sel), 0)]
    return np.asarray(sel, dtype=int)


def _replace_column(X: Any, i: int, x: Any) -> Any:
    X = X.clone() if hasattr(X, "clone") else X.copy()
    X[:, i] = x
    return X
