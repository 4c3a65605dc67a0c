"""The bundled sample: readable, described by its metadata, and reproduced by its command."""

from __future__ import annotations

import pytest

from recotrig.io.store import open_store
from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60
from recotrig.sim.reader import SimulationReader

KEYS = {"hits": "hits", "particles": "particles", "truth": "truth", "vertices": "vertices"}


def reader_from_metadata(metadata: dict) -> SimulationReader:
    config = metadata["config"]
    options = {name: config[name] for name in SimulationReader.option_specs() if name in config}
    options["hard_scatter"] = config["hard_scatter"] or "none"
    options["field"] = config["detector"]["field_T"]
    reader = SimulationReader(**options)
    # every setting of the simulation, not just the options above, is the one recorded
    assert reader.simulator().metadata()["config"] == config
    return reader


@pytest.mark.parametrize("path,mu,events", [(SAMPLE_MU60, 60.0, 4), (SAMPLE_MU20, 20.0, 3)])
def test_bundled_sample_is_what_its_metadata_says(path, mu, events):
    assert path.stat().st_size < 15e6
    store = open_store(path)
    assert store.n_events == events and store.metadata["mu"] == mu and store.metadata["hard_scatter"] == "ttbar"
    assert set(KEYS) <= set(store.collections)
    assert store.metadata["versions"]["acts"] and store.metadata["versions"]["pythia8mc"]


@pytest.mark.slow
@pytest.mark.parametrize("path", [SAMPLE_MU20, SAMPLE_MU60])
def test_sample_command_reproduces_the_first_event(path):
    """Regenerating event 0 with the recorded settings gives identical arrays."""
    store = open_store(path)
    stored = store.read(0, 1)[0]
    reader = reader_from_metadata(store.metadata)
    reader.initialize()
    hits, particles, truth, vertices = reader.read(0)
    for name, fresh in (("hits", hits), ("particles", particles), ("truth", truth), ("vertices", vertices)):
        assert fresh.equals(stored[name]), name
