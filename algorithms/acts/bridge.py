"""The bridge between recotrig's event data model and ACTS's examples framework.

recotrig runs its own event loop; ACTS algorithms (seeding, CKF, fitting, vertexing) are driven
inside it, one event at a time, through ACTS's own whiteboard:

* ``ActsEvent`` (or the one-shot ``run_event``) is one event's fresh ``acts.examples.WhiteBoard``
  + ``AlgorithmContext``. Objects go in with ``put`` (an ACTS write handle), results come out with
  ``get`` (a read handle), and ``run`` executes a chain of configured ACTS algorithms on it,
  recording CPU seconds per stage.
* ``hits_to_measurements`` turns recotrig ``Hits`` (``geometry_id``, ``loc0``/``loc1`` and their
  variances) into an ACTS ``MeasurementContainer``: measurement *i* is hit row *i*, so a source
  link index maps straight back to ``hits.hit_id[i]``.
* ``tracks_from_acts`` turns an ACTS track container into recotrig ``Tracks`` (hit ids per track,
  perigee parameters, full 6x6 covariance, chi2, ndf).
* ``write_track_parameters_csv`` writes track parameters in the layout of ACTS's
  ``CsvTrackParameterReader`` (the one way, with these Python bindings, to hand externally made
  track parameters with full covariance to ACTS's vertexing); ``read_vertices_csv`` reads what
  ``CsvVertexWriter`` writes.

The geometry, field and calibration context are owned by ``recotrig.detector`` (a cached
``detector_context`` per process); ``ActsSetup`` adds what the ACTS algorithms need on top (the
sensitive surfaces' geometry ids) and is built once per process. ACTS algorithm objects are built
once in each recotrig algorithm's ``initialize``; per event only the whiteboard is new.

Floating-point traps: ACTS's ``Sequencer`` installs an FPE monitor (``trackFpes``); driving
algorithms through ``internalExecute`` installs none, so numpy code before and after ACTS runs
under numpy's own error handling. ``tests/test_acts.py`` checks that.

Units: ACTS measures time in mm/c (``acts.UnitConstants.ns`` = 299.79...); recotrig uses ns. The
conversions below divide or multiply by that constant; lengths (mm) and momenta (GeV) agree.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acts
import acts.examples
import awkward as ak
import numpy as np

from recotrig.detector import DetectorContext, DetectorSpec, detector_context
from recotrig.edm import TRACK_PARAMETERS, FittedTracks, Hits, Tracks

__all__ = [
    "ACTS_NS",
    "MEASUREMENT_COLUMNS",
    "ActsEvent",
    "ActsSetup",
    "StageTimer",
    "acts_setup",
    "fitted_rows",
    "hits_to_measurements",
    "log_level",
    "proto_tracks",
    "put_measurements",
    "read_vertices_csv",
    "require_columns",
    "run_event",
    "timed",
    "tracks_from_acts",
    "write_track_parameters_csv",
]

#: Hits columns ACTS needs to rebuild the identical measurements
MEASUREMENT_COLUMNS = ("geometry_id", "loc0", "loc1", "var_loc0", "var_loc1")
#: one nanosecond in ACTS's internal unit of time
ACTS_NS = float(acts.UnitConstants.ns)

_LEVELS = ("VERBOSE", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL")


def log_level(name: str) -> Any:
    """ACTS logging level from its name (``"WARNING"``...)."""
    key = name.upper()
    if key not in _LEVELS:
        raise ValueError(f"unknown ACTS log level {name!r}; use one of {list(_LEVELS)}")
    return getattr(acts.logging, key)


# -- set-up shared by all ACTS algorithms of a process ----------------------------------------------


@dataclass(frozen=True)
class ActsSetup:
    """What every ACTS-backed algorithm needs: the detector context (kept alive here) and the
    geometry ids of its sensitive surfaces (to check hits against before ACTS sees them), as
    ``acts.GeometryIdentifier`` objects keyed by their integer value."""

    detector: DetectorContext
    surfaces: dict[int, Any]

    @property
    def sensitive(self) -> frozenset[int]:
        return frozenset(self.surfaces)

    @property
    def tracking_geometry(self) -> Any:
        return self.detector.tracking_geometry

    @property
    def field(self) -> Any:
        return self.detector.field

    @property
    def bfield_z(self) -> float:
        """Solenoid field in ACTS's internal units (what the seeders call ``bFieldInZ``)."""
        return self.detector.spec.field_T * acts.UnitConstants.T


@functools.lru_cache(maxsize=4)
def acts_setup(spec: DetectorSpec | None = None) -> ActsSetup:
    """The per-process ACTS set-up for ``spec`` (default: ``DetectorSpec()``; built once, then cached)."""
    context = detector_context(spec if spec is not None else DetectorSpec())
    surfaces = context.tracking_geometry.geoIdSurfaceMap()
    return ActsSetup(detector=context, surfaces={int(g.value): g for g in surfaces})


# -- one event on ACTS's whiteboard -------------------------------------------------------------------


class _HandleOwner(acts.examples.IAlgorithm):
    """The ACTS element that owns recotrig's read/write handles (handles need a parent)."""

    def __init__(self) -> None:
        super().__init__("recotrig-bridge", acts.logging.WARNING)

    def execute(self, context: Any) -> Any:  # never scheduled
        return acts.examples.ProcessCode.SUCCESS


@functools.lru_cache(maxsize=1)
def _owner() -> _HandleOwner:
    return _HandleOwner()


@functools.cache
def _handle(kind: str, type_: Any, key: str) -> Any:
    cls = acts.examples.ReadDataHandle if kind == "read" else acts.examples.WriteDataHandle
    handle = cls(_owner(), type_, f"{kind}:{key}")
    handle.initialize(key)
    return handle


@dataclass
class StageTimer:
    """CPU seconds (``time.process_time``) per named stage, summed over ``events`` events."""

    seconds: dict[str, float] = field(default_factory=dict)
    events: int = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def per_event(self) -> dict[str, float]:
        """Mean CPU seconds per event of each stage."""
        return {k: v / max(self.events, 1) for k, v in self.seconds.items()}

    def reset(self) -> None:
        self.seconds.clear()
        self.events = 0


@contextlib.contextmanager
def timed(timer: StageTimer | None, stage: str) -> Iterator[None]:
    """Add the CPU seconds spent in the ``with`` block to ``timer[stage]``."""
    start = time.process_time()
    try:
        yield
    finally:
        if timer is not None:
            timer.add(stage, time.process_time() - start)


class ActsEvent:
    """One event in a fresh ACTS whiteboard.

    ``put(key, obj)`` moves ``obj`` into the whiteboard (ACTS takes ownership: the Python object
    is empty afterwards), ``get(key, Type)`` returns a view into the whiteboard (copy what you need
    to numpy before the event is dropped), ``run`` executes ACTS algorithms in order.
    """

    def __init__(self, event_number: int = 0, *, level: Any = None, timer: StageTimer | None = None):
        self.whiteboard = acts.examples.WhiteBoard(level if level is not None else acts.logging.WARNING)
        self.context = acts.examples.AlgorithmContext(0, int(event_number), self.whiteboard, 0)
        self.timer = timer

    def put(self, key: str, obj: Any) -> None:
        _handle("write", type(obj), key)(self.context, obj)

    def get(self, key: str, type_: Any) -> Any:
        if not self.whiteboard.exists(key):
            raise KeyError(f"ACTS whiteboard has no {key!r}; it has {sorted(self.whiteboard.keys)}")
        return _handle("read", type_, key)(self.whiteboard)

    def __contains__(self, key: str) -> bool:
        return self.whiteboard.exists(key)

    def run(self, chain: Iterable[tuple[str, Any]]) -> None:
        """Execute ``(stage, element)`` pairs in order; readers are read, algorithms executed,
        writers written. A non-success return code raises ``RuntimeError`` naming the stage."""
        for stage, element in chain:
            start = time.process_time()
            if isinstance(element, acts.examples.IReader):
                code = element.read(self.context)
            elif hasattr(element, "write") and not isinstance(element, acts.examples.IAlgorithm):
                code = element.write(self.context)
            else:
                code = element.internalExecute(self.context)
            if self.timer is not None:
                self.timer.add(stage, time.process_time() - start)
            if code != acts.examples.ProcessCode.SUCCESS:
                raise RuntimeError(f"ACTS stage {stage!r} ({element.name()}) returned {code}")


def run_event(
    chain: Iterable[tuple[str, Any]],
    inputs: dict[str, Any] | None = None,
    *,
    event_number: int = 0,
    level: Any = None,
    timer: StageTimer | None = None,
) -> ActsEvent:
    """Run ``chain`` (``(stage, ACTS algorithm/reader/writer)`` pairs) on one event: a fresh
    whiteboard, ``inputs`` put under their keys, the elements executed in order. Returns the
    event; read results with ``event.get(key, Type)`` before dropping it."""
    event = ActsEvent(event_number, level=level, timer=timer)
    for key, obj in (inputs or {}).items():
        event.put(key, obj)
    event.run(chain)
    return event


# -- recotrig -> ACTS ----------------------------------------------------------------------------------


def require_columns(collection: Any, name: str, columns: Sequence[str], why: str) -> None:
    """Raise ``ValueError`` naming the collection and the missing columns."""
    missing = [c for c in columns if c not in collection]
    if missing:
        raise ValueError(
            f"{type(collection).__name__} {name!r} lacks column(s) {missing} ({why}); it has {collection.names}"
        )


def hits_to_measurements(hits: Hits, setup: ActsSetup, *, name: str = "hits") -> Any:
    """recotrig ``Hits`` -> ACTS ``MeasurementContainer`` (measurement i = hit row i).

    Each hit becomes a 2D measurement (loc0, loc1) on surface ``geometry_id`` with diagonal
    covariance (``var_loc0``, ``var_loc1``); a hit whose ``var_loc1`` is not finite and positive
    becomes a 1D (loc0) measurement. Raises ``ValueError`` if the ACTS columns are missing, if a
    variance is not positive, or if a geometry id is not a sensitive surface of the detector.
    """
    require_columns(
        hits,
        name,
        MEASUREMENT_COLUMNS,
        "the store lacks ACTS measurement columns; simulate with recotrig.sim or read a store "
        "written with geometry_id/loc0/loc1/var_loc0/var_loc1",
    )
    gid = np.asarray(hits.geometry_id, dtype=np.uint64)
    loc0 = np.asarray(hits.loc0, dtype=float)
    loc1 = np.asarray(hits.loc1, dtype=float)
    var0 = np.asarray(hits.var_loc0, dtype=float)
    var1 = np.asarray(hits.var_loc1, dtype=float)
    bad_var = ~(np.isfinite(var0) & (var0 > 0))
    if bad_var.any():
        row = int(np.flatnonzero(bad_var)[0])
        raise ValueError(f"Hits {name!r}: var_loc0 must be finite and > 0; row {row} has {var0[row]}")
    surfaces = setup.surfaces
    unknown = sorted(g for g in np.unique(gid).tolist() if g not in surfaces)
    if unknown:
        raise ValueError(
            f"Hits {name!r}: {len(unknown)} geometry_id value(s) are not sensitive surfaces of the "
            f"'{setup.detector.spec.name}' detector (first: {unknown[0]}); were the hits made with another geometry?"
        )
    two_d = np.isfinite(var1) & (var1 > 0)
    container = acts.examples.MeasurementContainer()
    container.reserve(len(hits))
    emplace = container.emplaceMeasurement
    loc, one = [0, 1], [0]
    for g, l0, l1, v0, v1, is2 in zip(
        gid.tolist(), loc0.tolist(), loc1.tolist(), var0.tolist(), var1.tolist(), two_d.tolist()
    ):
        if is2:
            emplace(surfaces[g], loc, [l0, l1], [v0, v1])
        else:
            emplace(surfaces[g], one, [l0], [v0])
    return container


def put_measurements(event: ActsEvent, hits: Hits, setup: ActsSetup, *, name: str = "hits") -> None:
    """Store ``measurements`` (container) and ``measurement_subset`` (all of them; what seeding
    and the CKF read) in the event, as ACTS's digitization does."""
    event.put("measurements", hits_to_measurements(hits, setup, name=name))
    stored = event.get("measurements", acts.examples.MeasurementContainer)
    event.put("measurement_subset", acts.examples.MeasurementSubset(stored, list(range(len(stored)))))


def proto_tracks(hit_index_lists: Iterable[Sequence[int]]) -> Any:
    """Lists of measurement indices -> ACTS ``ProtoTrackContainer``."""
    return acts.examples.ProtoTrackContainer(
        [acts.examples.ProtoTrack([int(i) for i in lst]) for lst in hit_index_lists]
    )


# -- ACTS -> recotrig ----------------------------------------------------------------------------------


def _track_measurements(track: Any, *, outliers: bool) -> list[int]:
    """Measurement indices of a track's states, innermost first.

    ACTS links a track's states from the last one added back to the first; for CKF and fitted
    tracks that walk goes from the outermost state inwards, so it is reversed here (the tests
    check that the radius grows along the returned list). Outlier flags are only read for tracks
    that have outliers.
    """
    from_sl = acts.examples.IndexSourceLink.fromSourceLink
    check_flags = track.nOutliers > 0
    found = []
    for state in track.trackStatesReversed:
        if not state.hasUncalibratedSourceLink:
            continue  # holes and material-only states
        if check_flags and not outliers and state.typeFlags.isOutlier:
            continue
        found.append(from_sl(state.uncalibratedSourceLink).index())
    found.reverse()
    return found


def tracks_from_acts(container: Any, hit_ids: np.ndarray, *, outliers: bool = False) -> tuple[Tracks, list[list[int]]]:
    """ACTS ``ConstTrackContainer`` -> (recotrig ``Tracks``, measurement indices per track).

    ``hit_ids[i]`` is the hit id of measurement i. Hit ids are those of the track's measurement
    states (and outliers with ``outliers=True``), innermost first.
    Parameters are those at the track's reference surface (a perigee at the origin for the CKF and
    the fitter: d0, z0, phi, theta, q/p, t) with time converted to ns; tracks without reference
    surface get NaN. ``cov`` is ACTS's full 6x6 bound covariance (time rows/columns in ns).
    """
    n = len(container)
    measurement_lists = [_track_measurements(t, outliers=outliers) for t in container]
    params = np.full((n, 6), np.nan)
    cov = np.full((n, 6, 6), np.nan)
    if n:
        params[:] = np.asarray(container.parameters, dtype=float).reshape(n, 6)
        cov[:] = np.asarray(container.covariance, dtype=float).reshape(n, 6, 6)
        has_ref = np.array([t.hasReferenceSurface for t in container], dtype=bool)
        params[~has_ref] = np.nan
        cov[~has_ref] = np.nan
    scale = np.array([1, 1, 1, 1, 1, 1.0 / ACTS_NS])
    params = params * scale
    cov = cov * scale[:, None] * scale[None, :]
    ids = np.asarray(hit_ids, dtype=np.int64)
    hits_per_track = ak.Array([ids[np.asarray(m, dtype=np.int64)].tolist() for m in measurement_lists])
    columns: dict[str, Any] = {name: params[:, k] for k, name in enumerate(TRACK_PARAMETERS)}
    chi2 = np.asarray(container.chi2, dtype=float) if n else np.zeros(0)
    ndf = np.asarray(container.ndf, dtype=np.int32) if n else np.zeros(0, np.int32)
    tracks = FittedTracks(hit_ids=hits_per_track if n else [], **columns, cov=cov, chi2=chi2, ndf=ndf)
    return tracks, measurement_lists


def fitted_rows(tracks: Tracks) -> np.ndarray:
    """Mask of tracks with finite perigee parameters and a positive-definite 5x5 covariance
    (d0, z0, phi, theta, q/p) -- what ACTS's vertexing can use."""
    if not tracks.fitted or "cov" not in tracks:
        return np.zeros(len(tracks), dtype=bool)
    params = np.stack([np.asarray(tracks[p], dtype=float) for p in TRACK_PARAMETERS[:5]], axis=1)
    ok = np.isfinite(params).all(axis=1)
    cov5 = np.asarray(tracks.cov, dtype=float)[:, :5, :5]
    ok &= np.isfinite(cov5).all(axis=(1, 2))
    if ok.any():
        with np.errstate(all="ignore"):
            eig = np.full((len(tracks), 5), -1.0)
            eig[ok] = np.linalg.eigvalsh(cov5[ok])
        ok &= eig.min(axis=1) > 0
    return ok


# -- CSV layouts ACTS reads and writes -----------------------------------------------------------------

_PARAM_NAMES = ("d0", "z0", "phi", "theta", "qop")


def _track_parameter_header() -> list[str]:
    cols = ["trackId", *_PARAM_NAMES, *(f"var_{p}" for p in _PARAM_NAMES)]
    for i, a in enumerate(_PARAM_NAMES):
        cols += [f"cov_{a}{b}" for j, b in enumerate(_PARAM_NAMES) if j != i]
    return cols


def _per_event_file(directory: Path, stem: str, event_number: int) -> Path:
    # ACTS's perEventFilepath: event<9-digit number>-<stem>
    return directory / f"event{event_number:09d}-{stem}"


def write_track_parameters_csv(
    directory: Path, stem: str, event_number: int, params: np.ndarray, cov: np.ndarray
) -> Path:
    """Write ``params`` (n, 5: d0, z0, phi, theta, q/p) and ``cov`` (n, 5, 5) where ACTS's
    ``CsvTrackParameterReader(inputDir=directory, inputStem=stem)`` finds event ``event_number``.
    Time is not part of that layout (ACTS sets t = 0 with variance 1)."""
    n = len(params)
    rows = [np.arange(n, dtype=float)[:, None], params, np.diagonal(cov, axis1=1, axis2=2)]
    for i in range(5):
        rows.append(np.delete(cov[:, i, :], i, axis=1))
    table = np.hstack(rows) if n else np.zeros((0, 31))
    path = _per_event_file(directory, f"{stem}.csv", event_number)
    with open(path, "w") as out:
        out.write(",".join(_track_parameter_header()) + "\n")
        if n:
            np.savetxt(out, table, delimiter=",", fmt=["%d"] + ["%.17g"] * 30)
    return path


def read_vertices_csv(directory: Path, stem: str, event_number: int) -> np.ndarray:
    """(n, 4) array x, y, z, t [mm, mm, mm, ns] of what ACTS's ``CsvVertexWriter`` wrote."""
    path = _per_event_file(directory, f"{stem}.csv", event_number)
    lines = path.read_text().splitlines()[1:]
    if not lines:
        return np.zeros((0, 4))
    data = np.array([[float(v) for v in line.split(",")[:4]] for line in lines if line.strip()], dtype=float).reshape(
        -1, 4
    )
    data[:, 3] /= ACTS_NS
    return data


def start_uncertainties() -> dict[str, Any]:
    """Uncertainties given to track start parameters estimated from seeds (ACTS's seeding
    defaults): shared by the CKF's seeding and the proto-track fit."""
    u = acts.UnitConstants
    return {
        "initialSigmas": [1 * u.mm, 1 * u.mm, 1 * u.degree, 1 * u.degree, 0.0, 1 * u.ns],
        "initialSigmaQoverPt": 0.1 * u.e / u.GeV,
        "initialSigmaPtRel": 0.1,
        "initialVarInflation": [1.0] * 6,
    }


def space_point_maker(setup: ActsSetup, level: Any, selection: list[Any]) -> Any:
    """ACTS's SpacePointMaker on the event's measurement subset, for the chosen surfaces."""
    import acts.examples

    return acts.examples.SpacePointMaker(
        level=level,
        inputMeasurements="measurement_subset",
        outputSpacePoints="spacepoints",
        trackingGeometry=setup.tracking_geometry,
        geometrySelection=selection,
    )
