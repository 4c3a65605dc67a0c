"""Card schemas: what the runtime reads from a model card, one frozen dataclass per family.

A card is JSON (``<name>.card.json``, written by the trainings as a dict); ``registry.load``
checks it once against its family's schema and gives the typed card beside the raw dict
(``Model.typed_card``), so a card missing a field or holding a wrongly typed one fails when the
model is loaded — at an algorithm's ``initialize`` — with one ``ModelError`` naming the file and
the field (``sectors.n``, ``binning.bins``). Fields the runtime does not read (the training
command, held-out figures, ...) stay in the raw dict; the JSON format is unchanged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AnomalyCard",
    "Binning",
    "Card",
    "FixedPointFiles",
    "PVFinderCard",
    "PeakFinder",
    "SectorSpec",
    "TrackFormerCard",
    "TrackFormerClasses",
    "TrackFormerNormalisation",
    "parse_card",
]


@dataclass(frozen=True, kw_only=True)
class Card:
    """What every card holds."""

    name: str
    family: str
    #: required of a shipped or trained model by ``registry.load``; a card being written may lack it
    onnx_sha256: str = ""
    features: list[str] = field(default_factory=list)
    kind: str = ""
    summary: str = ""
    headline: str = ""
    parameters: int | None = None
    held_out: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrackFormerNormalisation:
    features_mean: list[float]
    features_std: list[float]


@dataclass(frozen=True, kw_only=True)
class SectorSpec:
    n: int
    overlap: float


@dataclass(frozen=True, kw_only=True)
class TrackFormerClasses:
    top_k: int


@dataclass(frozen=True, kw_only=True)
class TrackFormerCard(Card):
    """TrackFormer (EncReg or EncCla): normalisation, sectors, window capacity, track building."""

    kind: str
    normalisation: TrackFormerNormalisation
    sectors: SectorSpec
    max_hits: int
    #: tuned track-building parameters, checked by ``models.trackformer.inference.params_of``
    clustering: dict[str, Any] | None = None
    #: EncCla only
    classes: TrackFormerClasses | None = None


@dataclass(frozen=True, kw_only=True)
class Binning:
    z_min: float
    z_max: float
    bins: int


@dataclass(frozen=True, kw_only=True)
class PeakFinder:
    """Peak-finder settings. A named operating point also gives ``kde_scale``: the 90th percentile
    over its tuning events of the KDE's sum (``kde_a`` summed over z, about 40 per track the KDE
    used), where PVFinder's per-event choice (``operating_point="auto"``) places it. ``score``: what
    ``threshold`` applies to (``peaks.SCORES``; cards written before it existed mean the height).
    ``vertex_area``: the area of one vertex, by which a peak is split (``peaks.find_peaks``; 0, as
    on cards written before it existed: never), ``split_spread`` the least spread of a split peak."""

    threshold: float
    min_integral: float
    min_prominence: float
    score: str = "height"
    kde_scale: float | None = None
    vertex_area: float = 0.0
    split_spread: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PVFinderCard(Card):
    """PV-Finder: the KDE binning it was trained on and its tuned peak finder(s)."""

    binning: Binning
    peak_finder: PeakFinder
    operating_points: dict[str, PeakFinder] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FixedPointFiles:
    spec: str
    spec_sha256: str


@dataclass(frozen=True, kw_only=True)
class AnomalyCard(Card):
    """L1 anomaly models: the fixed-point spec file, the thresholds per zero-bias rate [kHz] (none
    for a model whose background is not zero bias) and the held-out figures (``held_out``:
    ``float`` and ``quantised``, per signal, with the thresholds at fixed false-positive rates)."""

    fixed_point: FixedPointFiles
    thresholds_khz: dict[str, float] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)


SCHEMAS: dict[str, type[Card]] = {"trackformer": TrackFormerCard, "pvfinder": PVFinderCard, "anomaly": AnomalyCard}


class CardFieldError(ValueError):
    """A card field is missing or of the wrong type (``field``: its dotted path)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"the card's field {path!r} {problem}")


def parse_card(raw: dict[str, Any]) -> Card:
    """The typed card of ``raw`` (its family's schema, else the common one); ``CardFieldError``
    naming the first missing or mistyped field."""
    if not isinstance(raw, dict):
        raise CardFieldError("", f"must be a JSON object, not {type(raw).__name__}")
    schema = SCHEMAS.get(raw.get("family"), Card)  # type: ignore[arg-type]
    return _convert(schema, raw, "")


def _convert(kind: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise CardFieldError(path, f"must be an object, got {value!r}")
        hints = typing.get_type_hints(kind)
        out = {}
        for f in dataclasses.fields(kind):
            where = f"{path}.{f.name}" if path else f.name
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if f.name not in value:
                if not has_default:
                    raise CardFieldError(where, "is missing")
                continue
            out[f.name] = _convert(hints[f.name], value[f.name], where)
        return kind(**out)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if kind is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise CardFieldError(path, f"must be a list, got {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise CardFieldError(path, f"must be an object, got {value!r}")
        return {k: _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise CardFieldError(path, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
