"""Shared by the ACTS sequences: the detector and field a store records, as ACTS options."""

from __future__ import annotations

from typing import Any

from recotrig.detector import DetectorSpec
from recotrig.io.errors import StoreError
from recotrig.io.fileset import expand
from recotrig.io.store import read_metadata


def acts_options(input: str) -> dict[str, Any]:
    """``detector``/``field_T`` options from the metadata of the (first) input store, so ACTS
    refits with the store's own geometry and field; a bad record is blamed on the store."""
    first = expand(input)[0]
    try:
        return DetectorSpec.from_metadata(read_metadata(first)).acts_options()
    except (TypeError, ValueError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"its metadata does not describe a detector: {err}", path=first) from None
