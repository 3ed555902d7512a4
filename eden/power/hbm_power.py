"""HBM-Power configuration folders (``organization.json``, ``timing.json``, ``power.json``) -> a :class:`MemSpec`.

CMU-SAFARI/HBM-Power (@ 318d3d1) describes an HBM device as a folder of three JSON files, read by
its runners (``src/cli/main/HBM{2,3}_runner.cpp``), which fill absent fields with their
defaults (HBM2 / HBM3)::

    organization.json  bankgroups_per_pseudochannel (4), banks_per_bankgroup (4), dataRate (2/4),
                       width (64/32), channels_per_stack (8/16), pseudochannels_per_channel (2)
    timing.json        {"timing": {tCK_ps (1666.7/625), nBL (4/8), nRAS (20/45), nRP (9/26),
                       nRCD (9/31), nRL (7/20), nWL (7/10), nWR (10/33), nRFC (210/560), nREFI}}
    power.json         {"voltage": {"VDD": (1.2/1.1), "VDDQ" (HBM3; default VDD)},
                        "IDD": {IDD0, IDD2N, IDD3N1, IDD3N16, IDD4R, IDD4W, IDD5B (mA)},
                        "datapattern": {enabled, floor_pJbit, coef_T_DQ, coef_T_2bit, coef_busflip,
                                        dq_rate, tsv_rate, bg_rate, ref_*_rate, apply_to_writes}}

The currents are required (the runners have no defaults for them); so is ``power.json``. The
standard is HBM3 when ``dataRate`` is 4 or ``power.json`` gives a VDDQ, else HBM2 (or as given).
One memspec is one pseudo-channel (``eden.dram.standards.hbm2``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eden.core.validate import check_int, check_number
from eden.dram import standards
from eden.errors import EdenConfigError, EdenFileNotFoundError, EdenTypeError
from eden.power.memspec import MemSpec, VoltageDomain

__all__ = ["read_hbm_power_dir", "RUNNER_DEFAULTS", "DATAPATTERN_OFF"]

RUNNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "HBM2": {"bankgroups_per_pseudochannel": 4, "banks_per_bankgroup": 4, "dataRate": 2, "width": 64,
             "channels_per_stack": 8, "pseudochannels_per_channel": 2, "tCK_ps": 1666.7, "nBL": 4, "nRAS": 20,
             "nRP": 9, "nRCD": 9, "nRL": 7, "nWL": 7, "nWR": 10, "nRFC": 210, "VDD": 1.2},
    "HBM3": {"bankgroups_per_pseudochannel": 4, "banks_per_bankgroup": 4, "dataRate": 4, "width": 32,
             "channels_per_stack": 16, "pseudochannels_per_channel": 2, "tCK_ps": 625.0, "nBL": 8, "nRAS": 45,
             "nRP": 26, "nRCD": 31, "nRL": 20, "nWL": 10, "nWR": 33, "nRFC": 560, "VDD": 1.1},
}
"""The HBM-Power runners' defaults for absent organization, timing and voltage fields."""

DATAPATTERN_OFF: dict[str, Any] = {"enabled": False, "floor_pJbit": 1.0, "coef_T_DQ": 0.0, "coef_T_2bit": 0.0,
                                   "coef_busflip": 0.0, "dq_rate": 0.0, "tsv_rate": 0.0, "bg_rate": 0.0,
                                   "ref_dq_rate": 0.0, "ref_tsv_rate": 0.0, "ref_bg_rate": 0.0,
                                   "apply_to_writes": False}
"""The data-pattern section when ``power.json`` has none: the model off (IDD4R/IDD4W as measured)."""

_IDD = ("IDD0", "IDD2N", "IDD3N1", "IDD3N16", "IDD4R", "IDD4W", "IDD5B")
_IDD_KEYS = ("i0", "i2n", "i3n1", "i3n16", "i4r", "i4w", "i5b")


def _read(folder: Path, name: str, required: bool) -> Mapping[str, Any]:
    path = folder / name
    if not path.is_file():
        if required:
            raise EdenFileNotFoundError(f"HBM-Power config folder {str(folder)!r} has no {name} (expected "
                                        f"organization.json, timing.json and power.json)")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdenConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise EdenTypeError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_hbm_power_dir(folder: str | os.PathLike, *, standard: str | None = None) -> MemSpec:
    """The pseudo-channel memspec of an HBM-Power config folder.

    Args:
        folder: the folder holding ``power.json`` (required), ``timing.json`` and
            ``organization.json`` (absent fields take the runner's defaults).
        standard: ``"HBM2"`` or ``"HBM3"``; None: HBM3 if ``dataRate`` is 4 or a VDDQ is
            given, else HBM2.

    Raises:
        EdenFileNotFoundError: the folder, or its ``power.json``, does not exist.
        EdenConfigError: a missing current or a bad value (the message names file and field).
    """
    path = Path(os.fspath(folder))
    if not path.is_dir():
        raise EdenFileNotFoundError(f"HBM-Power config folder {str(path)!r} not found")
    power = _read(path, "power.json", True)
    timing_file = _read(path, "timing.json", False)
    org = _read(path, "organization.json", False)
    timing = timing_file.get("timing", timing_file)
    voltage = power.get("voltage", {})
    idd = power.get("IDD")
    if not isinstance(voltage, Mapping):
        raise EdenTypeError(f"{path / 'power.json'}: 'voltage' must be a JSON object, got {type(voltage).__name__}")
    if not isinstance(idd, Mapping):
        raise EdenConfigError(f"{path / 'power.json'}: missing section 'IDD' (the currents "
                              f"{', '.join(_IDD)} in mA)")
    if standard is None:
        standard = "HBM3" if org.get("dataRate") == 4 or "VDDQ" in voltage else "HBM2"
    std = standards.get(standard)
    if std.name not in RUNNER_DEFAULTS:
        raise EdenConfigError(f"{path}: an HBM-Power folder describes HBM2 or HBM3, not {std.name}")
    defaults = RUNNER_DEFAULTS[std.name]

    def value(data: Mapping[str, Any], file: str, key: str, *, integer: bool = False, lo: float = 0.0) -> Any:
        label = f"{path / file}: {key}"
        raw = data.get(key, defaults.get(key))
        if raw is None:
            raise EdenConfigError(f"{path / file}: missing field {key!r}")
        if integer:
            return check_int(label, raw, lo=int(lo))
        return check_number(label, raw, lo=lo)

    currents = []
    for name, key in zip(_IDD, _IDD_KEYS, strict=True):
        if idd.get(name) is None:
            raise EdenConfigError(f"{path / 'power.json'}: missing field 'IDD.{name}' (current in mA; the "
                                  "HBM-Power runners have no default for it)")
        current = check_number(f"{path / 'power.json'}: IDD.{name}", idd[name], lo=0.0)
        currents.append((key, current / 1000.0))
    unit = idd.get("unit", "mA")
    if unit != "mA":
        raise EdenConfigError(f"{path / 'power.json'}: IDD.unit must be 'mA', got {unit!r}")
    vdd = value(voltage, "power.json", "VDD", lo=0.0)
    domains = [VoltageDomain("VDD", vdd, (*currents, ("ibeta", currents[1][1])))]  # HBM-Power: I_beta = IDD2N
    if "VDDQ" in std.domain_names:
        vddq = voltage.get("VDDQ", vdd)
        domains.append(VoltageDomain("VDDQ", check_number(f"{path / 'power.json'}: voltage.VDDQ", vddq), ()))

    bank_groups = value(org, "organization.json", "bankgroups_per_pseudochannel", integer=True, lo=1)
    banks = bank_groups * value(org, "organization.json", "banks_per_bankgroup", integer=True, lo=1)
    pcs = (value(org, "organization.json", "channels_per_stack", integer=True, lo=1)
           * value(org, "organization.json", "pseudochannels_per_channel", integer=True, lo=1))
    dp = power.get("datapattern", DATAPATTERN_OFF)
    if not isinstance(dp, Mapping):
        raise EdenTypeError(f"{path / 'power.json'}: 'datapattern' must be a JSON object")
    params: dict[str, Any] = {"bank_groups": bank_groups, "pseudo_channels": pcs}
    for p in std.params:
        if not p.json or not p.json[0].startswith("datapattern."):
            continue
        key = p.json[0].split(".", 1)[1]
        raw = dp.get(key, DATAPATTERN_OFF[key] if not dp.get("enabled", True) else None)
        if raw is None:
            raise EdenConfigError(f"{path / 'power.json'}: missing field 'datapattern.{key}' ({p.doc})")
        if p.kind == "bool":
            if not isinstance(raw, bool):
                raise EdenTypeError(f"{path / 'power.json'}: datapattern.{key} must be true or false, got {raw!r}")
            params[p.key] = raw
        else:
            params[p.key] = check_number(f"{path / 'power.json'}: datapattern.{key}", raw, lo=0.0)
    if params["dp_enabled"] and params["dp_floor"] + params["dp_ref_dq"] * params["dp_c_dq"] <= 0:
        raise EdenConfigError(f"{path / 'power.json'}: datapattern: the reference pattern energy must be > 0")
    tck_s = value(timing, "timing.json", "tCK_ps", lo=0.0) * 1e-12
    refi = timing.get("nREFI")
    try:
        return MemSpec(
            standard=std.name, banks=banks, burst_length=value(timing, "timing.json", "nBL", integer=True, lo=1),
            data_rate=value(org, "organization.json", "dataRate", integer=True, lo=1), tck_s=tck_s,
            ras=value(timing, "timing.json", "nRAS", integer=True, lo=1),
            rp=value(timing, "timing.json", "nRP", integer=True, lo=1),
            rcd=value(timing, "timing.json", "nRCD", integer=True, lo=0),
            rfc=value(timing, "timing.json", "nRFC", integer=True, lo=1),
            refi=None if not refi else check_int(f"{path / 'timing.json'}: nREFI", refi, lo=1),
            domains=tuple(domains), name=path.name, params=tuple(params.items()), source=str(path))
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise EdenConfigError(f"{path}: {exc}") from None
