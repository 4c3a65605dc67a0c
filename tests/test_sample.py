"""The bundled sample: readable, described by its metadata, and reproduced by its command."""

from __future__ import annotations

import pytest

from recotrig.io.store import open_store
from recotrig.sequences.samples import DATA, L1_COMMANDS, SAMPLE_MU20, SAMPLE_MU60, regenerate
from recotrig.sim.reader import SimulationReader

KEYS = ("hits", "particles", "truth", "vertices")


def reader_from_metadata(metadata: dict) -> SimulationReader:
    config = metadata["config"]
    options = {name: config[name] for name in SimulationReader.option_specs() if name in config}
    options["hard_scatter"] = config["hard_scatter"] or "none"
    options["field"] = config["detector"]["field_T"]
    return SimulationReader(**options)


@pytest.mark.parametrize("path,mu,events", [(SAMPLE_MU60, 60.0, 4), (SAMPLE_MU20, 20.0, 3)])
def test_bundled_sample_is_what_its_metadata_says(path, mu, events):
    assert path.stat().st_size < 15e6
    store = open_store(path)
    assert store.n_events == events and store.metadata["mu"] == mu and store.metadata["hard_scatter"] == "ttbar"
    assert set(KEYS) <= set(store.collections)
    assert store.metadata["versions"]["acts"] and store.metadata["versions"]["pythia8mc"]


@pytest.mark.slow
def test_sample_commands_reproduce_the_files_byte_for_byte(tmp_path):
    """`make sample` (sequences.samples.regenerate) remakes every bundled file exactly."""
    made = regenerate(tmp_path)
    assert [p.name for p in made] == [SAMPLE_MU60.name, SAMPLE_MU20.name, *L1_COMMANDS]
    for fresh in made:
        assert fresh.read_bytes() == (DATA / fresh.name).read_bytes(), fresh.name


@pytest.mark.parametrize("path", [SAMPLE_MU60, SAMPLE_MU20])
def test_metadata_rebuilds_the_simulation(path):
    """The settings recorded in the store are complete: they rebuild the same Simulator."""
    metadata = open_store(path).metadata
    rebuilt = reader_from_metadata(metadata).simulator().metadata()["config"]
    # every setting of the simulation, not just the reader's options, is the one recorded
    assert rebuilt == metadata["config"]
