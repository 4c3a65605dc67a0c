"""The detector: which ACTS geometry and magnetic field a store was made with.

A store records a ``DetectorSpec`` in its metadata; ``detector_context(spec)`` rebuilds the ACTS
objects from it. The context is built once per process and cached, so simulation and every ACTS
algorithm in a sequence share one geometry (ACTS's GenericDetector object must stay alive while
its tracking geometry is used, which the cache guarantees).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DetectorSpec:
    """What detector and field: ``generic`` is ACTS's GenericDetector (a TrackML-like silicon
    tracker: pixel, short-strip and long-strip barrels and end caps); the field is a constant
    solenoid field along z, in tesla."""

    name: str = "generic"
    field_T: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSpec:
        return cls(**{k: data[k] for k in ("name", "field_T") if k in data})

    def acts_options(self) -> dict[str, Any]:
        """The options every ACTS-backed algorithm takes to rebuild this detector."""
        return {"detector": self.name, "field_T": self.field_T}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> DetectorSpec:
        """The detector a store's metadata records (the default one if it records none)."""
        recorded = metadata.get("detector")
        if recorded is None:
            return cls()
        if not isinstance(recorded, dict):
            raise ValueError(f"metadata 'detector' must be an object, got {recorded!r}")
        spec = cls.from_dict(recorded)
        if isinstance(spec.field_T, bool) or not isinstance(spec.field_T, (int, float)):
            raise ValueError(f"metadata 'detector.field_T' must be a number in tesla, got {spec.field_T!r}")
        return spec


@dataclass(frozen=True)
class DetectorContext:
    """ACTS objects for one detector: keep the whole context alive while any is used."""

    spec: DetectorSpec
    detector: Any
    tracking_geometry: Any
    field: Any
    geometry_context: Any

    def volume_layer_module(self, geometry_id: int) -> tuple[int, int, int]:
        """ACTS geometry id -> (volume, layer, sensitive) numbers, the TrackML-style ids."""
        import acts

        gid = acts.GeometryIdentifier(int(geometry_id))
        return gid.volume, gid.layer, gid.sensitive


@functools.lru_cache(maxsize=4)
def detector_context(spec: DetectorSpec = DetectorSpec()) -> DetectorContext:
    """Build (once per process) the ACTS geometry and field for ``spec``."""
    if spec.name != "generic":
        raise ValueError(f"unknown detector {spec.name!r}; recotrig knows: 'generic'")
    import acts
    import acts.examples

    config = acts.examples.GenericDetector.Config()
    config.logLevel = acts.logging.WARNING  # the INFO lines would go to stdout
    detector = acts.examples.GenericDetector(config)
    field = acts.ConstantBField(acts.Vector3(0.0, 0.0, spec.field_T * acts.UnitConstants.T))
    return DetectorContext(
        spec=spec,
        detector=detector,
        tracking_geometry=detector.trackingGeometry(),
        field=field,
        geometry_context=acts.GeometryContext.dangerouslyDefaultConstruct(),
    )
