"""The open event-data model: registered types, schemas, integrity, relations, read-only columns."""

from __future__ import annotations

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

from recotrig.edm import KDE, L1Objects, Tracks, Vertices
from recotrig.framework import Collection, ColumnError, TypeRegistryError, registered_type
from recotrig.io.store import open_store, write_store


# -- registry ----------------------------------------------------------------------------------------
def test_types_are_registered_by_stable_name():
    assert registered_type("Tracks") is Tracks and registered_type("KDE") is KDE
    assert Tracks.schema()["columns"] == {"hit_ids": "var*i8"}
    assert Vertices.schema()["relations"] == {"track_index": "Tracks"}


def test_a_duplicate_type_name_fails_at_registration():
    with pytest.raises(TypeRegistryError, match=r"'Tracks' is taken by recotrig.edm.tracker.Tracks"):

        class Tracks(Collection):
            columns = {"x": "f8"}

    # a name of its own is fine
    class OtherTracks(Collection, type_name="test_edm.OtherTracks"):
        columns = {"x": "f8"}

    assert registered_type("test_edm.OtherTracks") is OtherTracks


# -- integrity -------------------------------------------------------------------------------------------
def test_required_column_given_as_none_is_an_error():
    with pytest.raises(ColumnError, match=r"Tracks: missing required column\(s\) \['hit_ids'\]"):
        Tracks(hit_ids=None)


def test_parallel_jagged_columns_must_agree_row_by_row():
    with pytest.raises(ColumnError, match=r"'track_index' and 'track_weight'.*row 0 has 2 and 1"):
        Vertices(x=[0.0], y=[0.0], z=[1.0], track_index=[[0, 1]], track_weight=[[0.5]])
    ok = Vertices(x=[0.0, 1.0], y=[0.0, 0.0], z=[1.0, 2.0], track_index=[[0, 1], []], track_weight=[[0.5, 1.0], []])
    assert len(ok) == 2


def test_columns_are_read_only_and_not_aliases_of_the_callers_arrays():
    z = np.array([1.0, 2.0, 3.0])
    vertices = Vertices(x=np.zeros(3), y=np.zeros(3), z=z)
    z[0] = 99.0  # the caller's array is not the collection's
    assert vertices.z[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        vertices.z[1] = 5.0
    picked = vertices.select([0, 2])
    with pytest.raises(ValueError, match="read-only"):
        picked.z[0] = 5.0
    # a read-only column is shared, not copied, when it builds another collection
    again = Vertices(x=vertices.x, y=vertices.y, z=vertices.z)
    assert np.shares_memory(again.z, vertices.z)


def test_a_jagged_column_from_an_awkward_array_is_a_read_only_copy_of_its_rows():
    flat = np.arange(10, dtype=np.int64)
    given = ak.unflatten(flat, [3, 0, 7])[1:]  # offsets that do not start at 0
    tracks = Tracks(hit_ids=given)
    flat[5] = -1  # the caller's buffer is not the collection's
    assert tracks.hit_ids.to_list() == [[], [3, 4, 5, 6, 7, 8, 9]]
    with pytest.raises(ValueError, match="read-only"):
        ak.to_numpy(ak.flatten(tracks.hit_ids))[0] = 5
    with pytest.raises(ColumnError, match=r"'hit_ids', row 1: value 2.5 cannot be read as int64"):
        Tracks(hit_ids=ak.unflatten(np.array([1.0, 2.5]), [1, 1]))
    with pytest.raises(ColumnError, match="'hit_ids': must be jagged"):
        Tracks(hit_ids=ak.Array(["ab", "c"]))  # strings are lists of bytes to awkward, not rows of numbers


def test_relation_names_its_target_and_survives_select_and_with_columns():
    vertices = Vertices(
        x=[0.0, 0.0],
        y=[0.0, 0.0],
        z=[1.0, 2.0],
        track_index=[[0], [1, 2]],
        track_weight=[[1.0], [0.5, 0.5]],
        targets={"track_index": "tracks_ckf"},
    )
    assert vertices.target("track_index") == "tracks_ckf"
    assert vertices.select([1]).target("track_index") == "tracks_ckf"
    assert vertices.with_columns(sigma_z=[0.1, 0.2]).targets == {"track_index": "tracks_ckf"}
    with pytest.raises(ColumnError, match="not relations"):
        Vertices(x=[0.0], y=[0.0], z=[0.0], targets={"z": "tracks"})


def test_extra_columns_are_added_by_the_algorithm_that_makes_them():
    tracks = Tracks(hit_ids=[[1, 2, 3], [4]], extra={"hit_prob": ak.Array([[0.9, 0.8, 0.7], [0.6]])})
    assert tracks.specs == {"hit_ids": "var*i8", "hit_prob": "var*f8"} and tracks.extra_columns == ["hit_prob"]
    more = tracks.with_columns(score=np.array([0.5, 0.25], dtype=np.float32))
    assert more.specs["score"] == "f4" and "hit_prob" in more
    with pytest.raises(ColumnError, match="unknown column"):
        Tracks(hit_ids=[[1]], hit_prob=[[0.5]])  # undeclared names must be passed as extras (typos are caught)


def test_concat_accepts_the_same_columns_in_another_order():
    a = Vertices(x=[0.0], y=[1.0], z=[2.0])
    b = Vertices({"z": [5.0], "x": [3.0], "y": [4.0]})
    joined = Vertices.concat([a, b])
    assert joined.z.tolist() == [2.0, 5.0] and joined.y.tolist() == [1.0, 4.0]
    with pytest.raises(ColumnError, match="different columns"):
        Vertices.concat([a, Vertices(x=[0.0], y=[0.0], z=[0.0], sigma_z=[1.0])])


def test_kde_and_hardware_l1_words_fit():
    kde = KDE(z=np.linspace(-100, 100, 5), kde_a=np.ones(5), kde_b=np.ones(5), xmax=np.zeros(5), ymax=np.zeros(5))
    assert kde.z.dtype == np.float32 and len(kde) == 5
    l1 = L1Objects(
        kind=[0, 3], pt=[25.0, 40.5], eta=[0.0, 1.2], phi=[0.1, -2.0], hw_pt=[50, 81], hw_eta=[0, 28], hw_phi=[2, -46]
    )
    assert l1.hw_pt.dtype == np.int32


# -- stores record schemas ---------------------------------------------------------------------------
def test_store_keeps_extras_targets_and_new_types(tmp_path):
    tracks = Tracks(hit_ids=[[1, 2], [3]], extra={"hit_prob": [[0.5, 0.25], [1.0]]})
    vertices = Vertices(
        x=[0.0], y=[0.0], z=[1.0], track_index=[[0, 1]], track_weight=[[1.0, 0.5]], targets={"track_index": "tracks_ml"}
    )
    kde = KDE(z=[0.0, 0.1], kde_a=[1.0, 2.0], kde_b=[1.0, 4.0])
    path = write_store(tmp_path / "s.root", [{"tracks_ml": tracks, "vertices_ml": vertices, "kde": kde}])
    event = open_store(path).read()[0]
    assert event["tracks_ml"].equals(tracks) and event["tracks_ml"].specs["hit_prob"] == "var*f8"
    assert event["vertices_ml"].target("track_index") == "tracks_ml"
    assert isinstance(event["kde"], KDE) and event["kde"].equals(kde)


def test_a_store_of_an_unimported_type_is_readable_everywhere(tmp_path):
    """A type defined in a module the reader never imports comes back as a generic collection with
    the recorded columns, and ``recotrig info`` lists it."""
    script = (
        "import sys\n"
        "from recotrig.framework import Collection\n"
        "from recotrig.io.store import write_store\n"
        "class Posterior(Collection, type_name='myexp.Posterior'):\n"
        "    columns = {'p': 'f4', 'bins': 'f8[3]'}\n"
        "write_store(sys.argv[1], [{'post': Posterior(p=[0.5, 0.25], bins=[[1, 2, 3], [4, 5, 6]])}])\n"
    )
    path = tmp_path / "posterior.root"
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert registered_type("myexp.Posterior") is None
    post = open_store(path).read()[0]["post"]
    assert type(post).type_name == "myexp.Posterior" and post.p.tolist() == [0.5, 0.25]
    assert post.bins.shape == (2, 3)
    info = subprocess.run(
        [sys.executable, "-m", "recotrig.sequences.cli", "info", str(path)], capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stderr
    assert "myexp.Posterior" in info.stdout and "bins" in info.stdout
