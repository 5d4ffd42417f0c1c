"""Compiled (Numba) cores of :mod:`spectra`, grouped by the family that uses them.

:mod:`spectra._numba.densities` (Gaussian smoothing, Chebyshev series),
:mod:`spectra._numba.krylov` (the fused Lanczos recurrence) and
:mod:`spectra._numba.kernels` (kernel-matrix products). Each module switches Numba to a
thread-safe threading layer (:func:`spectra.backend.prefer_threadsafe_layer`) before it
compiles anything; importing this package itself imports no Numba.
"""
