"""Run benchmark sections and rebuild docs/benchmarks.md from the section pages.

Usage: ``python benchmarks/run_all.py [--quick] [section ...]`` (``make bench`` runs all).

Each section writes ``docs/bench/<name>.md`` with the date, machine, versions and the
load average at its start; ``docs/benchmarks.md`` is then assembled from every section
page present, so re-running one section leaves the others' measured tables in place.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
#: (module, page) in the order of the assembled page.
SECTIONS = {
    "bench_spectra": "spectra",
    "bench_kernels": "kernels",
    "bench_gramians": "gramians",
    "bench_freedecomp": "freedecomp",
    "bench_hessian": "hessian",
    "bench_prune": "prune",
}
#: Pages written by their own drivers and embedded as they are: eigsh against ARPACK and
#: PRIMME (``benchmarks/spectra_eigsh.py --write``) and the optimizer study
#: (``benchmarks/bench_optim.py``: cached per-run results, about an hour from scratch).
EMBEDDED = ["bench/spectra_eigsh.md", "benchmarks_optim.md"]


def _machine() -> str:
    import numpy as np
    import scipy

    parts = [f"{platform.processor() or platform.machine()}",
             f"{len(os.sched_getaffinity(0))} cores", f"Python {platform.python_version()}",
             f"numpy {np.__version__}", f"scipy {scipy.__version__}"]
    try:
        from importlib.metadata import version

        parts.append(f"torch {version('torch')}")
    except Exception:  # noqa: BLE001 - torch is optional
        pass
    return ", ".join(parts)


def _section(name: str, quick: bool) -> str:
    mod = importlib.import_module(name)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    body = mod.run(quick=quick).strip().split("\n")
    took = time.perf_counter() - t0
    line = (f"Measured on {time.strftime('%Y-%m-%d')} by `python benchmarks/run_all.py "
            f"{name}{' --quick' if quick else ''}` ({took:.0f} s; load average {load:.1f} at "
            f"start): {_machine()}.")
    return "\n".join([body[0], "", line, *body[1:]]) + "\n"


def assemble(out: Path = DOCS / "benchmarks.md") -> None:
    """Write ``out`` from the section pages under ``docs/bench``."""
    head = ["# Benchmarks", "",
            "Produced by `make bench` (`python benchmarks/run_all.py`; one section: "
            "`python benchmarks/run_all.py bench_hessian`). Every comparison is measured "
            "side by side in the same process, so ratios are more reliable than absolute "
            "times; each section states when and under what load it ran.", ""]
    pages = [DOCS / "bench" / f"{page}.md" for page in SECTIONS.values()]
    pages += [DOCS / name for name in EMBEDDED]
    parts = [page.read_text().strip() for page in pages if page.exists()]
    cuda = out.parent / "benchmarks_cuda.md"
    if cuda.exists():
        parts.append("# On a GPU\n\nThe curvature benchmark on an NVIDIA H100 is in "
                     "[benchmarks_cuda.md](benchmarks_cuda.md) (measured on a lent GPU "
                     "machine; `make bench` does not rewrite it).")
    out.write_text("\n".join(head) + "\n" + "\n\n".join(parts) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("sections", nargs="*", default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    sys.path.insert(0, str(HERE))
    (DOCS / "bench").mkdir(parents=True, exist_ok=True)
    for name in args.sections:
        text = _section(name, args.quick)
        (DOCS / "bench" / f"{SECTIONS[name]}.md").write_text(text)
        print(f"{name}: wrote docs/bench/{SECTIONS[name]}.md", file=sys.stderr)
    assemble()
    print("wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
