"""Matrix files for the command line: ``.npy``, ``.npz`` (dense or scipy sparse), ``.mtx``.

Every check a user's file can fail raises :class:`InputError` (a ``ValueError``) with a
one-line message that names the file, what is wrong and what is allowed, so that the
command line can print it and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXTENSIONS", "InputError", "MatrixFile", "available_memory", "check_memory",
           "declared_size", "file_stem", "load_matrix", "load_sample"]

#: Accepted file name endings.
EXTENSIONS = (".npy", ".npz", ".mtx", ".mtx.gz")
_SPARSE_KEYS = {"format", "shape", "data"}
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive with no members (numpy.savez(path))
_GIB = 2.0**30


class InputError(ValueError):
    """A user's input file (or argument) that cannot be used, with the reason in one line."""


@dataclass(frozen=True, eq=False)
class MatrixFile:
    """A matrix read from a file.

    Attributes
    ----------
    matrix : ndarray or scipy.sparse.csr_array
        Finite, real, float32 or float64, 2-d.
    path : Path
        Where it came from.
    sparse : bool
        Whether ``matrix`` is a scipy sparse matrix.
    """

    matrix: Any
    path: Path
    sparse: bool

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the matrix."""
        return tuple(int(s) for s in self.matrix.shape)  # type: ignore[return-value]

    @property
    def nnz(self) -> int:
        """Stored entries (all ``m * n`` for a dense matrix)."""
        return int(self.matrix.nnz) if self.sparse else int(self.matrix.size)

    def describe(self) -> str:
        """``'name.npz: 500 x 500 sparse, 2,480 stored entries'``."""
        kind = "sparse" if self.sparse else "dense"
        m, n = self.shape
        return f"{self.path.name}: {m:,} x {n:,} {kind}, {self.nnz:,} stored entries"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise InputError(
        f"{path}: unknown file type {path.suffix or '(no extension)'!r}; allowed: "
        f"{', '.join(EXTENSIONS)} (numpy.save, numpy.savez or scipy.sparse.save_npz, "
        "Matrix Market)"
    )


def file_stem(path: str | Path) -> str:
    """The file name without its matrix extension (``a.b.mtx.gz -> a.b``)."""
    name = Path(path).name
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return Path(path).stem or name


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _read_npy(path: Path) -> Any:
    if _head(path, 6) != _NPY_MAGIC:
        raise InputError(f"{path}: not a NumPy .npy file (no .npy header); write it with "
                         "numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise InputError(f"{path}: holds an object (pickled) array; only numeric arrays "
                             "are allowed") from None
        raise


def _read_npz(path: Path) -> Any:
    if _head(path, 4) == _EMPTY_ZIP_MAGIC:
        raise InputError(f"{path}: the .npz archive holds no arrays; a matrix archive holds "
                         "exactly one dense array (numpy.savez(path, A)) or one scipy sparse "
                         "matrix (scipy.sparse.save_npz)")
    if _head(path, 4) != _ZIP_MAGIC:
        raise InputError(f"{path}: not a NumPy .npz archive (not a zip file); write it with "
                         "numpy.savez or scipy.sparse.save_npz")
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if _SPARSE_KEYS <= set(keys):
            import scipy.sparse as sp

            return sp.load_npz(path)
        if len(keys) != 1:
            raise InputError(
                f"{path}: the archive holds {len(keys)} arrays ({', '.join(keys) or 'none'}); "
                "a matrix archive holds exactly one dense array (numpy.savez(path, A)) "
                "or one scipy sparse matrix (scipy.sparse.save_npz)")
        return z[keys[0]]


# ---------------------------------------------------------------------- sizes before reading
def _check_regular(path: Path) -> None:
    """Refuse named pipes, sockets and devices: reading one could block forever."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "not a regular file")
        raise InputError(f"{path}: is {kind}; the command reads regular files only (save "
                         "the matrix to a file first)")


@dataclass(frozen=True)
class Declared:
    """What a matrix file's header declares, read without loading its data.

    Attributes
    ----------
    shape : tuple of int
        Declared shape (any number of dimensions for ``.npy``/``.npz``).
    stored : int
        Declared stored entries (all of them for a dense array).
    itemsize : int
        Bytes per stored value.
    sparse : bool
        Whether the file holds a sparse (coordinate or CSR/CSC) matrix.
    """

    shape: tuple
    stored: int
    itemsize: int
    sparse: bool

    @property
    def bytes(self) -> int:
        """Memory to hold the matrix once read (values, plus indices when sparse)."""
        if not self.sparse:
            return self.stored * self.itemsize
        rows = self.shape[0] if self.shape else 0
        return self.stored * (self.itemsize + 16) + 8 * (rows + 1)  # COO read, then CSR


def _npy_header(fh: Any) -> tuple[tuple, np.dtype]:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"npy format version {version}")
    shape, _, dtype = read(fh)
    return tuple(int(d) for d in shape), dtype


def declared_size(path: str | Path) -> Declared | None:
    """The shape and storage a matrix file declares, from its header alone.

    Parameters
    ----------
    path : str or Path
        A file of one of :data:`EXTENSIONS`.

    Returns
    -------
    Declared or None
        ``None`` when the header cannot be read (the full reader then reports why).
    """
    path = Path(path)
    try:
        ext = _suffix(path)
        if ext == ".npy":
            with open(path, "rb") as fh:
                shape, dtype = _npy_header(fh)
            return Declared(shape, int(np.prod(shape, dtype=object)), dtype.itemsize, False)
        if ext == ".npz":
            return _npz_declared(path)
        import scipy.io

        rows, cols, entries, fmt, field, _ = scipy.io.mminfo(str(path))
        size = 16 if field == "complex" else 8
        if fmt == "array":
            return Declared((rows, cols), rows * cols, size, False)
        return Declared((rows, cols), int(entries), size, True)
    except (InputError, OSError, ValueError, TypeError, KeyError, IndexError,
            zipfile.BadZipFile, SyntaxError):
        return None


def _npz_declared(path: Path) -> Declared | None:
    with zipfile.ZipFile(path) as z:
        names = {n[:-4] if n.endswith(".npy") else n: n for n in z.namelist()}
        if _SPARSE_KEYS <= set(names):
            with z.open(names["shape"]) as fh:
                shape = tuple(int(v) for v in np.lib.format.read_array(fh,
                                                                       allow_pickle=False))
            with z.open(names["data"]) as fh:
                dshape, dtype = _npy_header(fh)
            return Declared(shape, int(np.prod(dshape, dtype=object)), dtype.itemsize, True)
        if len(names) != 1:
            return None
        with z.open(next(iter(names.values()))) as fh:
            shape, dtype = _npy_header(fh)
        return Declared(shape, int(np.prod(shape, dtype=object)), dtype.itemsize, False)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(path: str | Path, work_vectors: int = 0) -> Declared | None:
    """Refuse a file whose declared size does not fit in memory, before reading it.

    Parameters
    ----------
    path : str or Path
        The matrix file.
    work_vectors : int
        Float64 vectors of the matrix's dimension the computation holds besides the
        matrix (probe blocks, Lanczos bases).

    Returns
    -------
    Declared or None
        The declared size (``None``: the header could not be read).

    Raises
    ------
    InputError
        When the matrix and the working vectors need more memory than is available;
        the message names the file, the declared shape and both amounts.
    """
    path = Path(path)
    dec = declared_size(path)
    avail = available_memory()
    if dec is None or avail is None:
        return dec
    n = max(dec.shape) if dec.shape else 0
    need = dec.bytes + 8 * n * max(int(work_vectors), 0)
    if need > avail:
        dims = " x ".join(f"{d:,}" for d in dec.shape)
        kind = (f"sparse, {dec.stored:,} stored entr{'y' if dec.stored == 1 else 'ies'}"
                if dec.sparse
                else f"dense, {dec.itemsize}-byte entries")
        work = f" and {work_vectors} working vectors of length {n:,}" if work_vectors else ""
        raise InputError(
            f"{path}: declares a {dims} matrix ({kind}); holding it{work} needs about "
            f"{need / _GIB:,.1f} GiB, but {avail / _GIB:,.1f} GiB of memory are available")
    return dec


def _read_mtx(path: Path) -> Any:
    import scipy.io

    return scipy.io.mmread(str(path))


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _read(path: Path) -> Any:
    path = Path(path)
    ext = _suffix(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a matrix file")
    _check_regular(path)
    check_memory(path)
    readers = {".npy": (_read_npy, "a .npy array"), ".npz": (_read_npz, "a .npz archive"),
               ".mtx": (_read_mtx, "a Matrix Market file"),
               ".mtx.gz": (_read_mtx, "a gzipped Matrix Market file")}
    read, kind = readers[ext]
    try:
        return read(path)
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Exception as err:  # any failure to parse the user's file is a bad file
        raise InputError(f"{path}: cannot read it as {kind} ({type(err).__name__}: "
                         f"{_one_line(err)})") from None


def _as_float(A: Any, path: Path) -> Any:
    """Real float32/float64 values; integers and booleans become float64."""
    dtype = A.dtype
    if dtype.kind == "c":
        raise InputError(f"{path}: complex entries ({dtype}); allowed: real numbers "
                         "(float32, float64, or integers, which are converted to float64)")
    if dtype.kind not in "fiub":
        raise InputError(f"{path}: entries of type {dtype} are not numbers")
    if dtype in (np.float32, np.float64):
        return A
    return A.astype(np.float64)


def _check_finite(A: Any, path: Path, sparse: bool) -> None:
    values = A.data if sparse else A
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise InputError(f"{path}: {bad:,} entries are NaN or Inf; the matrix must be finite")


def _symmetry_defect(A: Any, sparse: bool) -> tuple[float, float]:
    """``max |A - A^T|`` and ``max |A|``."""
    if sparse:
        D = abs(A - A.T)
        scale = float(abs(A).max()) if A.nnz else 0.0
        return (float(D.max()) if D.nnz else 0.0), scale
    return float(np.abs(A - A.T).max()), float(np.abs(A).max())


def load_matrix(path: str | Path, *, square: bool = True, symmetric: bool = False,
                what: str = "this command") -> MatrixFile:
    """Read a matrix file and check it.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file (``numpy.save``), a ``.npz`` archive holding one dense array
        (``numpy.savez``) or a scipy sparse matrix (``scipy.sparse.save_npz``; detected
        by its ``format``/``shape``/``data`` entries), or a Matrix Market file (``.mtx``,
        ``.mtx.gz``; ``scipy.io.mmread``).
    square : bool
        Require a square matrix.
    symmetric : bool
        Require ``max |A - A^T| <= 1e-10 max |A|`` (1e-5 for float32).
    what : str
        Names the requirement in the error message (e.g. ``"density"``).

    Returns
    -------
    MatrixFile
        Dense matrices as ndarrays, sparse ones as CSR; integer and boolean entries are
        converted to float64.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown extension, not 2-d, empty, non-square,
        complex or non-numeric entries, NaN or Inf, not symmetric (when required).
    """
    path = Path(path)
    return _validate(_read(path), path, square, symmetric, what)


def _validate(A: Any, path: Path, square: bool, symmetric: bool, what: str) -> MatrixFile:
    sparse = hasattr(A, "tocsr") and not isinstance(A, np.ndarray)
    if sparse:
        A = A.tocsr()
    elif not isinstance(A, np.ndarray):
        raise InputError(f"{path}: holds a {type(A).__name__}, not an array")
    if A.ndim != 2:
        raise InputError(f"{path}: a matrix file must hold a 2-d array, this one is {A.ndim}-d "
                         f"with shape {tuple(A.shape)}")
    if min(A.shape) == 0:
        raise InputError(f"{path}: the matrix is empty (shape {tuple(A.shape)})")
    if square and A.shape[0] != A.shape[1]:
        raise InputError(f"{path}: {what} needs a square matrix, this one is "
                         f"{A.shape[0]:,} x {A.shape[1]:,}")
    A = _as_float(A, path)
    _check_finite(A, path, sparse)
    if symmetric:
        defect, scale = _symmetry_defect(A, sparse)
        tol = (1e-5 if A.dtype == np.float32 else 1e-10) * max(scale, 1e-300)
        if defect > tol:
            raise InputError(
                f"{path}: {what} needs a symmetric matrix, but max |A - A^T| = {defect:.3g} "
                f"(relative {defect / max(scale, 1e-300):.2g}); symmetrise it, e.g. "
                "(A + A.T) / 2")
    return MatrixFile(A, path, sparse)


def load_sample(path: str | Path) -> tuple[np.ndarray, str]:
    """Read the sample of a free decompression.

    Parameters
    ----------
    path : str or Path
        Eigenvalues of a principal submatrix (a 1-d ``.npy``/``.npz`` array), or the
        symmetric submatrix itself (2-d, any format of :func:`load_matrix`; sparse ones
        are made dense).

    Returns
    -------
    sample : ndarray
        1-d eigenvalues or a dense symmetric 2-d matrix (float64).
    kind : {"eigenvalues", "submatrix"}

    Raises
    ------
    InputError
        As :func:`load_matrix`, and for arrays that are neither 1-d nor 2-d.
    """
    path = Path(path)
    A = _read(path)
    if isinstance(A, np.ndarray) and A.ndim == 1:
        if A.size == 0:
            raise InputError(f"{path}: no eigenvalues in the file")
        e = _as_float(A, path)
        _check_finite(e, path, False)
        return np.sort(e.astype(np.float64)), "eigenvalues"
    if isinstance(A, np.ndarray) and A.ndim != 2:
        raise InputError(f"{path}: a sample is 1-d (eigenvalues) or 2-d (a symmetric "
                         f"submatrix), this one is {A.ndim}-d with shape {A.shape}")
    mf = _validate(A, path, True, True, "decompress")
    M = mf.matrix.toarray() if mf.sparse else mf.matrix
    return np.asarray(M, dtype=np.float64), "submatrix"
