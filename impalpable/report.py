"""Output of the command line: figure dictionaries, JSON, aligned tables.

The ``*_figures`` functions turn result objects into plain dictionaries: the numbers the
``impalpable`` commands and the main job write into their JSON files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spectra.distances import kolmogorov_smirnov, wasserstein1

__all__ = [
    "Report",
    "decompression_figures",
    "dumps",
    "density_figures",
    "eigs_figures",
    "format_table",
    "jsonable",
    "trace_figures",
]


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars and arrays (recursively) to JSON types; NaN/Inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned text table: first column left-aligned, the others right-aligned.

    Floats are shown to six significant digits; columns with no header and no entries
    are left out.
    """
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return f"{v:.6g}"
        return "" if v is None else str(v)

    body = [[cell(v) for v in r] + [""] * (len(headers) - len(r)) for r in rows]
    keep = [j for j, h in enumerate(headers) if str(h) or any(r[j] for r in body)]
    headers = [str(headers[j]) for j in keep]
    body = [[r[j] for j in keep] for r in body]
    width = [max(len(str(h)), *(len(r[j]) for r in body)) for j, h in enumerate(headers)]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(width[0]) if j == 0 else c.rjust(width[j])
                         for j, c in enumerate(r)).rstrip()

    rule = "  ".join("-" * w for w in width)
    return "\n".join([line([str(h) for h in headers]), rule, *(line(r) for r in body)])


def dumps(obj: Any, indent: int = 0) -> str:
    """JSON text with one key per line and lists of numbers kept on one line.

    Strict JSON: NaN and Inf become ``null`` (see :func:`jsonable`).
    """
    obj = jsonable(obj)
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [pad + dumps(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj, allow_nan=False)


@dataclass
class Report:
    """What a subcommand produced.

    Attributes
    ----------
    name : str
        Stem of the files written (``<name>.json``, ``<name>.png``).
    figures : dict
        The numbers written to the JSON file.
    headers, rows : sequence
        The table printed on standard output.
    draw : callable
        ``() -> matplotlib Figure``.
    heading : str
        The line printed above the table.
    """

    name: str
    figures: dict
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    draw: Callable[[], Any]
    heading: str

    def write(self, out: Path, quiet: bool) -> tuple[Path, Path]:
        """Write ``<name>.json`` and ``<name>.png`` into ``out`` and print the table."""
        from .figures import save

        out.mkdir(parents=True, exist_ok=True)
        js, png = out / f"{self.name}.json", out / f"{self.name}.png"
        js.write_text(dumps(self.figures) + "\n")
        save(self.draw(), png)
        if not quiet:
            print(self.heading)
            print(format_table(self.headers, self.rows))
            print(f"wrote {png}\nwrote {js}")
        return png, js


def density_figures(den: Any, exact: np.ndarray | None = None) -> dict:
    """Figures of a :class:`~spectra.SpectralDensity` (and its distance to exact eigenvalues)."""
    q = (0.01, 0.1, 0.5, 0.9, 0.99)
    fig = {"method": den.method, "num_matvecs": den.num_matvecs, "bounds": den.bounds,
           "mean": den.moment(1), "second_moment": den.moment(2),
           "quantiles": dict(zip([str(v) for v in q], den.quantile(q).tolist(), strict=True)),
           "smoothing": den.smoothing, "nodes": den.nodes, "weights": den.weights,
           "x": den.x, "rho": den.rho}
    if exact is not None:
        fig["exact"] = {"bounds": (exact[0], exact[-1]), "mean": exact.mean(),
                        "w1": wasserstein1(den, exact), "ks": kolmogorov_smirnov(den, exact)}
    return fig


def eigs_figures(res: Any, exact: np.ndarray | None = None) -> dict:
    """Figures of an :class:`~spectra.EigResult` (and the errors against exact eigenvalues)."""
    fig = {"eigenvalues": res.eigenvalues, "residual_norms": res.residual_norms,
           "num_matvecs": res.num_matvecs, "converged": res.converged,
           "num_restarts": res.num_restarts, "message": res.message}
    if exact is not None:
        fig["exact"] = {"eigenvalues": exact, "abs_errors": np.abs(res.eigenvalues - exact)}
    return fig


def trace_figures(est: Any, exact: float | None = None) -> dict:
    """Figures of a trace :class:`~spectra.Estimate` (and its error against the exact trace)."""
    fig = {"value": est.value, "stderr": est.stderr, "interval_2se": est.interval(2.0),
           "num_matvecs": est.num_matvecs, "method": est.method, "converged": est.converged,
           "message": est.message, "samples": est.samples}
    if exact is not None:
        fig["exact"] = {"value": exact, "error": est.value - exact,
                        "error_in_stderr": (est.value - exact) / est.stderr
                        if est.stderr > 0 else None}
    return fig


def decompression_figures(res: Any) -> dict:
    """Figures of a :class:`freedecomp.Decompression` and of each size of its flow."""
    def one(r: Any) -> dict:
        q = (0.01, 0.1, 0.5, 0.9, 0.99)
        mean = r.moment(1)
        return {"size": r.size, "alpha": r.alpha, "edges": r.edges,
                "edge_errors": r.edge_errors, "atoms": r.atoms, "mean": mean,
                "variance": r.moment(2) - mean**2, "trace": r.trace(1),
                "quantiles": dict(zip([str(v) for v in q], r.quantile(q).tolist(),
                                      strict=True)),
                "decompressible": r.diagnostics.get("decompressible"),
                "warnings": r.diagnostics.get("warnings", [])}

    d = res.diagnostics
    return {"sample_size": res.sample_size, "model": d.get("model"), "method": d.get("method"),
            "reason": d.get("reason"), "flow": [one(r) for r in (res.flow or (res,))]}
