"""The registry of models: a model is ``<name>.onnx`` plus its card ``<name>.card.json`` (and
``<name>.card.md``, the same card for people).

Shipped models live in ``models/shipped/``. An algorithm's ``model`` option takes a shipped
model's name or a path to an ``.onnx`` file (its card beside it): a model trained with
``recotrig train`` (written to ``recotrig-models/`` unless ``--output`` says otherwise; the
shipped folder only with ``--replace-shipped``, ``models.training``) runs by its path,
``--TrackFormerFinder.model recotrig-models/NAME.onnx``. The card is the JSON
the code reads — how to remake the model (data, command, seeds), sizes and hyper-parameters,
training time and machine, held-out metrics, the input and output names and shapes, units, the
features and their normalisation — and ``card.md`` renders it for people (``recotrig models``).

``load`` finds a model, reads and checks its card, and verifies the ONNX file's sha256 against
the card: a missing file, a corrupted file or a card that does not match what the algorithm
feeds fails with ``ModelError`` naming the file, before any event runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recotrig.models.cards import Card, CardFieldError, parse_card

__all__ = [
    "SHIPPED",
    "Model",
    "ModelError",
    "available",
    "cache_dir",
    "card_markdown",
    "card_path",
    "load",
    "locate",
    "sha256",
    "write_card",
]

SHIPPED = Path(__file__).resolve().parent / "shipped"
_REQUIRED = ("name", "family", "inputs", "outputs", "features", "normalisation", "training", "onnx_sha256")


class ModelError(ValueError):
    """A model cannot be used: named file, reason."""


def cache_dir(family: str) -> Path:
    """Where training keeps its simulated stores, data sets and checkpoints for a model family:
    ``$RECOTRIG_CACHE_DIR/<family>``, else ``~/.cache/recotrig/<family>``."""
    base = os.environ.get("RECOTRIG_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "recotrig")
    return Path(base) / family


def sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Model:
    """A located, checked model: its ONNX file and its card."""

    name: str
    onnx: Path
    card: dict[str, Any]
    #: the card checked against its family's schema (``models.cards``): what the runtime reads
    typed_card: Card

    @property
    def family(self) -> str:
        return str(self.card["family"])

    def expect(self, key: str, value: Any) -> None:
        """The card's ``key`` must equal what the algorithm feeds (features, classes, ...)."""
        if self.card.get(key) != value:
            raise ModelError(
                f"{self.onnx}: the card's {key!r} is {self.card.get(key)!r}, but the algorithm feeds {value!r}"
            )


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in SHIPPED.glob("*.onnx"))


def card_path(onnx: str | os.PathLike[str], kind: str = "json") -> Path:
    """The card beside an ONNX file: ``<name>.card.json`` (or ``.card.md``)."""
    onnx = Path(onnx)
    return onnx.with_name(f"{onnx.stem}.card.{kind}")


def locate(spec: str) -> Path:
    """The ONNX file of the shipped model named ``spec``, or ``spec`` itself as a path."""
    path = Path(spec)
    if spec.endswith(".onnx") or path.exists():
        onnx = path
    else:
        onnx = SHIPPED / f"{spec}.onnx"
        if not onnx.exists():
            raise ModelError(
                f"no shipped model {spec!r}; shipped: {', '.join(available()) or 'none'} "
                "(or give a path to an .onnx file)"
            )
    if not onnx.is_file():
        raise ModelError(f"{onnx}: no such model file")
    return onnx


def load(spec: str, *, family: str | None = None) -> Model:
    """The model named ``spec`` (shipped) or at path ``spec``, its card read and checked."""
    onnx = locate(spec)
    card_file = card_path(onnx)
    try:
        card = json.loads(card_file.read_text())
    except FileNotFoundError:
        raise ModelError(f"{onnx}: its card {card_file.name} is missing") from None
    except ValueError as err:
        raise ModelError(f"{card_file}: the card is not JSON: {err}") from None
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise ModelError(f"{card_file}: the card lacks {missing}")
    try:
        typed = parse_card(card)
    except CardFieldError as err:
        raise ModelError(f"{card_file}: {err}") from None
    if family is not None and card["family"] != family:
        raise ModelError(f"{onnx}: a {card['family']} model, not a {family} model")
    actual = sha256(onnx)
    if actual != card["onnx_sha256"]:
        raise ModelError(
            f"{onnx}: the file's sha256 {actual[:12]}… differs from its card's "
            f"{str(card['onnx_sha256'])[:12]}… (corrupted or replaced)"
        )
    return Model(name=typed.name, onnx=onnx, card=card, typed_card=typed)


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people."""
    lines = [f"# Model card: {card['name']}", "", card.get("summary", ""), ""]
    for key, value in card.items():
        if key in ("name", "summary"):
            continue
        text = json.dumps(value, indent=1) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"- **{key}**: {text}" if "\n" not in text else f"- **{key}**:\n\n```\n{text}\n```")
    return "\n".join(lines) + "\n"


def write_card(onnx: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Write a model's card beside its ONNX file: JSON for the code, Markdown for people."""
    card_path(onnx).write_text(json.dumps(card, indent=1) + "\n")
    card_path(onnx, "md").write_text(card_markdown(card))
