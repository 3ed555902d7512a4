"""Tests of eden's HDF5 error-model files (eden/errormodels/h5.py, docs/formats.md)."""

from __future__ import annotations

import datetime
import json
import pickle

import h5py
import numpy as np
import pytest

from eden.core.resources import resource_dir
from eden.errormodels import h5 as _h5
from eden.errormodels.components import DataDependent, Uniform, WeakBitlines, WeakWordlines
from eden.errormodels.model import ErrorModel
from eden.errors import EdenTypeError

ALL_KINDS = [
    Uniform(p=1e-4),
    WeakBitlines(fraction=0.01, p=0.05, p_else=1e-6),
    WeakWordlines(fraction=0.02, p=0.125, p_else=3e-7),
    DataDependent(p10=1e-3, p01=1e-5),
]


def _valid_file(tmp_path, name="model.h5", spec="em1:fraction=0.01,p=0.05+em0:p=1e-7"):
    path = tmp_path / name
    ErrorModel.from_spec(spec).save(path)
    return path


def _files(directory):
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("component", ALL_KINDS, ids=lambda c: c.kind)
def test_round_trip_each_kind(tmp_path, component):
    model = ErrorModel((component,))
    path = tmp_path / f"{component.kind}.h5"
    model.save(path)
    loaded = ErrorModel.load(path)
    assert loaded == model
    assert loaded.components[0].params() == component.params()  # exact float64
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "eden.error_model"
        assert f.attrs["format_version"] == 1
        assert f["components/0"].attrs["kind"] == component.kind
        for name, value in component.params().items():
            ds = f[f"components/0/{name}"]
            assert ds.shape == () and ds.dtype == np.float64 and ds[()] == value


def test_round_trip_composite_fixed(tmp_path):
    model = ErrorModel(tuple(ALL_KINDS), persistence="fixed")
    path = tmp_path / "composite.h5"
    model.save(path, provenance={"source": "unit test", "chips": [1, 2]})
    loaded = ErrorModel.load(path)
    assert loaded == model
    assert loaded.persistence == "fixed"
    assert [c.kind for c in loaded.components] == ["em0", "em1", "em2", "em3"]
    meta = _h5.read_metadata(path)
    assert meta["format_version"] == 1
    assert meta["persistence"] == "fixed"
    assert meta["provenance"] == {"source": "unit test", "chips": [1, 2]}
    assert meta["spec"] == model.to_spec()
    assert meta["eden_version"]
    created = datetime.datetime.fromisoformat(meta["created_utc"])
    assert created.utcoffset() == datetime.timedelta(0)


def test_component_order_kept_beyond_ten(tmp_path):
    # "10" sorts before "2" as a string; the order must be numeric.
    model = ErrorModel(tuple(Uniform(p=i / 100) for i in range(12)))
    path = tmp_path / "many.h5"
    model.save(path)
    assert ErrorModel.load(path) == model


def test_default_provenance_is_empty_json_object(tmp_path):
    path = _valid_file(tmp_path)
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["provenance"]) == {}
    assert _h5.read_metadata(path)["provenance"] == {}


def test_unknown_root_members_and_attributes_are_ignored(tmp_path):
    path = _valid_file(tmp_path)
    with h5py.File(path, "r+") as f:
        f.create_group("fit").create_dataset("residuals", data=np.arange(3.0))
        f.attrs["future_attribute"] = "whatever"
    assert ErrorModel.load(path) == ErrorModel.from_spec("em1:fraction=0.01,p=0.05+em0:p=1e-7")


def test_integer_scalar_parameter_is_accepted(tmp_path):
    path = _valid_file(tmp_path, spec="em0:p=0")
    with h5py.File(path, "r+") as f:
        del f["components/0/p"]
        f["components/0"].create_dataset("p", data=np.int64(1))
    assert ErrorModel.load(path) == ErrorModel.uniform(1.0)


def test_coerce_accepts_paths(tmp_path):
    path = _valid_file(tmp_path)
    assert ErrorModel.coerce(path) == ErrorModel.load(path)
    assert ErrorModel.coerce(str(path)) == ErrorModel.load(path)


# ----------------------------------------------------------- malformed files
def _set_attr(name, value):
    def mutate(f):
        f.attrs[name] = value
    return mutate


def _del_attr(name, where="/"):
    def mutate(f):
        del f[where].attrs[name]
    return mutate


def _delete(h5path):
    def mutate(f):
        del f[h5path]
    return mutate


def _replace_param(h5path, value):
    def mutate(f):
        del f[h5path]
        f[h5path] = value
    return mutate


def _rename(src, dst):
    def mutate(f):
        f.move(src, dst)
    return mutate


def _empty_components(f):
    del f["components"]
    f.create_group("components")


def _components_as_dataset(f):
    del f["components"]
    f["components"] = np.arange(3.0)


def _param_as_group(f):
    del f["components/1/p"]
    f["components/1"].create_group("p")


def _extra_param(f):
    f["components/1/q"] = np.float64(0.5)


def _component_as_dataset(f):
    del f["components/1"]
    f["components/1"] = np.float64(0.0)


# (id, mutation, HDF5 location expected in the message, other expected text)
MALFORMED = [
    ("wrong-format", _set_attr("format", "something.else"), "/ (attribute 'format')", "'something.else'"),
    ("missing-format", _del_attr("format"), "/ (attribute 'format')", "no such attribute"),
    ("missing-version", _del_attr("format_version"), "/ (attribute 'format_version')", "no such attribute"),
    ("newer-version", _set_attr("format_version", np.int64(2)), "/ (attribute 'format_version')",
     "newer eden"),
    ("zero-version", _set_attr("format_version", np.int64(0)), "/ (attribute 'format_version')",
     "unsupported version 0"),
    ("string-version", _set_attr("format_version", "1"), "/ (attribute 'format_version')", "'1'"),
    ("float-version", _set_attr("format_version", 1.5), "/ (attribute 'format_version')", "1.5"),
    ("bad-persistence", _set_attr("persistence", "sometimes"), "/ (attribute 'persistence')",
     "'sometimes'"),
    ("missing-persistence", _del_attr("persistence"), "/ (attribute 'persistence')", "no such attribute"),
    ("missing-components", _delete("components"), "/components", "found nothing"),
    ("components-not-group", _components_as_dataset, "/components", "dataset"),
    ("no-components", _empty_components, "/components", "found none"),
    ("non-consecutive", _rename("components/1", "components/2"), "/components", "found 0, 2"),
    ("non-numeric-name", _rename("components/1", "components/b"), "/components", "found 0, b"),
    ("component-not-group", _component_as_dataset, "/components/1", "dataset"),
    ("missing-kind", _del_attr("kind", "components/1"), "/components/1 (attribute 'kind')",
     "no such attribute"),
    ("unknown-kind", lambda f: f["components/1"].attrs.__setitem__("kind", "em9"),
     "/components/1 (attribute 'kind')", "em0, em1, em2, em3"),
    ("missing-param", _delete("components/0/p_else"), "/components/0/p_else", "found nothing"),
    ("unexpected-param", _extra_param, "/components/1/q", "unexpected"),
    ("param-array", _replace_param("components/1/p", np.array([1e-7, 2e-7])), "/components/1/p",
     "shape (2,)"),
    ("param-string", _replace_param("components/1/p", "1e-7"), "/components/1/p", "scalar number"),
    ("param-bool", _replace_param("components/1/p", np.bool_(True)), "/components/1/p", "scalar number"),
    ("param-group", _param_as_group, "/components/1/p", "a group"),
    ("param-out-of-range", _replace_param("components/1/p", np.float64(1.5)), "/components/1",
     "em0.p must be in [0, 1], got 1.5"),
    ("param-nan", _replace_param("components/1/p", np.float64(np.nan)), "/components/1", "em0.p"),
    ("invalid-model", _replace_param("components/0/p_else", np.float64(0.5)), "/components/0",
     "must be >= em1.p_else"),
]


@pytest.mark.parametrize("mutate, location, text", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_file_raises_error_naming_file_and_location(tmp_path, mutate, location, text):
    path = _valid_file(tmp_path, name="broken_model.h5")
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(_h5.ErrorModelFileError) as info:
        ErrorModel.load(path)
    message = str(info.value)
    assert "broken_model.h5" in message
    assert f" at {location}:" in message
    assert text in message
    assert "expected" in message
    assert "found" in message or "expected valid" in message
    assert info.value.location == location
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    path = tmp_path / "does_not_exist.h5"
    with pytest.raises(FileNotFoundError, match="does_not_exist.h5"):
        ErrorModel.load(path)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "text_file.h5"
    path.write_text("em0:p=1e-4\n")
    with pytest.raises(_h5.ErrorModelFileError, match=r"text_file\.h5.* at /: expected an HDF5 file"):
        ErrorModel.load(path)


def test_truncated_file(tmp_path):
    path = _valid_file(tmp_path, name="truncated.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(_h5.ErrorModelFileError, match=r"truncated\.h5.* at /: expected an HDF5 file"):
        ErrorModel.load(path)


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    with pytest.raises(_h5.ErrorModelFileError, match=r"folder\.h5"):
        ErrorModel.load(folder)


def test_read_metadata_rejects_bad_provenance(tmp_path):
    path = _valid_file(tmp_path, name="prov.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["provenance"] = "{not json"
    assert ErrorModel.load(path)  # provenance is informational for the model itself
    with pytest.raises(_h5.ErrorModelFileError, match=r"prov\.h5.*attribute 'provenance'"):
        _h5.read_metadata(path)


def test_error_pickles():
    err = _h5.ErrorModelFileError("f.h5", "/components", "expected x; found y")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.location == "/components"


# ------------------------------------------------------------------ writing
def test_refuses_to_overwrite_and_leaves_file_byte_identical(tmp_path):
    path = _valid_file(tmp_path, name="keep.h5")
    before = path.read_bytes()
    with pytest.raises(FileExistsError) as info:
        ErrorModel.uniform(0.5).save(path)
    assert "keep.h5" in str(info.value)
    assert "overwrite=True" in str(info.value) and "--force" in str(info.value)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["keep.h5"]


def test_overwrite_true_replaces(tmp_path):
    path = _valid_file(tmp_path, name="replace.h5")
    ErrorModel.uniform(0.5, persistence="fixed").save(path, overwrite=True)
    assert ErrorModel.load(path) == ErrorModel.uniform(0.5, persistence="fixed")
    assert _files(tmp_path) == ["replace.h5"]


def test_race_target_created_during_write_is_not_clobbered(tmp_path, monkeypatch):
    path = tmp_path / "race.h5"
    real_write = _h5._write_contents

    def write_and_race(f, *args):
        path.write_bytes(b"someone else's file")
        real_write(f, *args)

    monkeypatch.setattr(_h5, "_write_contents", write_and_race)
    with pytest.raises(FileExistsError, match="race.h5"):
        ErrorModel.uniform(1e-3).save(path)
    assert path.read_bytes() == b"someone else's file"
    assert _files(tmp_path) == ["race.h5"]


def test_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_h5, "_write_contents", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ErrorModel.uniform(1e-3).save(tmp_path / "new.h5")
    assert _files(tmp_path) == []


def test_failed_overwrite_keeps_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = _valid_file(tmp_path, name="old.h5")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("rename failed")

    monkeypatch.setattr(_h5.os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        ErrorModel.uniform(0.5).save(path, overwrite=True)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["old.h5"]


def test_write_onto_a_directory_fails_cleanly(tmp_path):
    target = tmp_path / "adir.h5"
    target.mkdir()
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match="adir.h5"):
            ErrorModel.uniform(1e-3).save(target, overwrite=overwrite)
    assert _files(tmp_path) == ["adir.h5"]
    assert _files(target) == []


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        ErrorModel.uniform(1e-3).save(tmp_path / "no_such_dir" / "m.h5")
    assert _files(tmp_path) == []


def test_unserialisable_provenance_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        ErrorModel.uniform(1e-3).save(tmp_path / "m.h5", provenance={"when": datetime.date.today()})
    with pytest.raises(TypeError, match="mapping"):
        ErrorModel.uniform(1e-3).save(tmp_path / "m.h5", provenance=["not", "a", "dict"])
    assert _files(tmp_path) == []


def test_save_rejects_non_components(tmp_path):
    with pytest.raises(EdenTypeError, match="sequence of components"):
        _h5.save_components(tmp_path / "m.h5", ("em0:p=1e-4",), "access")
    with pytest.raises(EdenTypeError, match="sequence of components"):
        _h5.save_components(tmp_path / "m.h5", (), "access")
    assert _files(tmp_path) == []


def test_persistence_is_stored_as_its_spelling(tmp_path):
    path = tmp_path / "fixed.h5"
    ErrorModel.uniform(1e-3, persistence="fixed").save(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["persistence"] == "fixed" and isinstance(f.attrs["persistence"], str)
        assert f.attrs["spec"] == "em0:p=0.001;persistence=fixed"


# ---------------------------------------------------------- bundled examples
EXAMPLES = {
    "em0_uniform_1e-4.h5": "em0",
    "em1_weak_bitlines.h5": "em1",
    "em2_weak_wordlines.h5": "em2",
    "em3_data_dependent.h5": "em3",
}


@pytest.mark.parametrize("name, kind", EXAMPLES.items())
def test_bundled_examples_load(name, kind):
    path = resource_dir("error_models") / "examples" / name
    model = ErrorModel.load(path)
    assert [c.kind for c in model.components] == [kind]
    provenance = _h5.read_metadata(path)["provenance"]
    assert "illustrative" in json.dumps(provenance).lower()
