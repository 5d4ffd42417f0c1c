"""Run every benchmark section and rewrite docs/benchmarks.md.

Usage: ``python benchmarks/run_all.py [--quick] [section ...]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ["bench_spectra", "bench_freedecomp", "bench_hessian"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("sections", nargs="*", default=SECTIONS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks.md")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import numpy as np
    import scipy

    head = [
        "# Benchmarks",
        "",
        "Produced by `make bench` "
        f"(`python benchmarks/run_all.py{' --quick' if args.quick else ''}`)"
        f" on {time.strftime('%Y-%m-%d')}: {platform.processor() or platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}. Every comparison is measured side "
        "by side in the same process.",
        "",
    ]
    parts = []
    for name in args.sections:
        if not (HERE / f"{name}.py").exists():
            continue
        mod = importlib.import_module(name)
        t0 = time.perf_counter()
        parts.append(mod.run(quick=args.quick))
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    cuda = args.out.parent / "benchmarks_cuda.md"
    if cuda.exists():
        parts.append("# On a GPU\n\nThe curvature benchmark on an NVIDIA H100 is in "
                     "[benchmarks_cuda.md](benchmarks_cuda.md) (measured on a lent GPU "
                     "machine; `make bench` does not rewrite it).")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(head) + "\n" + "\n\n".join(parts) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
