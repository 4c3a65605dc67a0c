"""The one way the track building's loops are compiled: numba's ``njit``, its machine code cached
on disk beside the module (the first call in a process loads it; the first ever compiles it, a
few seconds), with IEEE arithmetic (a division by zero gives inf or nan, as in numpy)."""

from __future__ import annotations

import numba

__all__ = ["compiled"]

compiled = numba.njit(cache=True, error_model="numpy")
