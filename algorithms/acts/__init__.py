"""ACTS's classic reconstruction as recotrig algorithms: CKF track finding (``ActsCKF``), Kalman
fit of hit-assigned tracks (``ActsTrackFit``) and adaptive multi-vertex finding (``ActsAMVF``).

The ACTS Python bindings (PyPI ``pyacts``, extra ``recotrig[acts]``) are imported when an algorithm
is initialized, not when this package is imported. ``bridge`` converts between recotrig's event
data model and ACTS's and drives ACTS algorithms inside recotrig's event loop.
"""

from recotrig.algorithms.acts.amvf import ActsAMVF
from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.algorithms.acts.fit import ActsTrackFit

__all__ = ["ActsAMVF", "ActsCKF", "ActsTrackFit"]
