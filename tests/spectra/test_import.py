import subprocess
import sys


def test_spectra_imports_without_torch_matplotlib_numba():
    code = (
        "import sys, spectra, spectra.operators, spectra.krylov;"
        "bad = [m for m in ('torch', 'matplotlib', 'numba', 'scipy.sparse') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
