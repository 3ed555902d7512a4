"""eden.core.io and eden.core.resources: user-facing file problems raise eden.errors classes
that still derive from the built-in exception callers caught before (FileExistsError, ...)."""

import json

import pytest

from eden.core.io import (OutputExistsError, OutputIsDirectoryError, OutputPermissionError, read_json_record,
                          write_json, write_with)
from eden.core.resources import resource_dir
from eden.errors import EdenConfigError, EdenError, EdenFileError, EdenFileNotFoundError


def test_output_errors_are_eden_errors_and_os_errors(tmp_path):
    out = tmp_path / "r.json"
    write_json(out, {"a": 1})
    with pytest.raises(FileExistsError, match="pass overwrite=True") as info:
        write_json(out, {"a": 2})
    assert isinstance(info.value, OutputExistsError) and isinstance(info.value, EdenError)
    assert json.loads(out.read_text()) == {"a": 1}
    with pytest.raises(IsADirectoryError) as info:
        write_json(tmp_path, {})
    assert isinstance(info.value, OutputIsDirectoryError)
    with pytest.raises(EdenFileNotFoundError, match="directory for the JSON file does not exist"):
        write_json(tmp_path / "no" / "r.json", {})


def test_permission_denied_names_the_output(tmp_path):
    def writer(tmp):
        raise PermissionError(13, "Permission denied", str(tmp))

    with pytest.raises(PermissionError, match="cannot write the plot: Permission denied") as info:
        write_with(tmp_path / "p.png", writer, what="plot")
    assert isinstance(info.value, OutputPermissionError) and info.value.filename == str(tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_read_json_record_names_file_and_field(tmp_path):
    p = tmp_path / "t.json"
    with pytest.raises(EdenFileNotFoundError, match="no such tolerance file"):
        read_json_record(p, "eden-tolerance", 1, "tolerance file")
    p.write_text("{not json")
    with pytest.raises(EdenFileError, match="at /: not a readable JSON tolerance file"):
        read_json_record(p, "eden-tolerance", 1, "tolerance file")
    p.write_text(json.dumps({"format": "eden-tolerance", "format_version": 99}))
    with pytest.raises(EdenFileError, match="at format_version: tolerance file format_version 99") as info:
        read_json_record(p, "eden-tolerance", 1, "tolerance file")
    assert info.value.file == str(p) and info.value.location == "format_version"
    p.write_text(json.dumps({"format": "eden-tolerance", "format_version": 1}))
    with pytest.raises(EdenFileError, match="lacks the field 'fine'"):
        read_json_record(p, "eden-tolerance", 1, "tolerance file", ("fine",))


def test_resource_dir_unknown_name():
    with pytest.raises(EdenConfigError, match="unknown resource folder 'cudaa'; known: .*did you mean 'cuda'"):
        resource_dir("cudaa")
