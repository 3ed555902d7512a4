"""eden: run neural networks on emulated approximate DRAM.

Public API (imports stay light: no CuPy, no CUDA initialisation, numba compiles
on first injection; the submodules below load on first use):

Error models, DRAM placement and profiles
    ErrorModel, AddressMap, DramOrganization, DramProfile, load_profile
Injection
    inject_, FlipLog, Correction
Storage and numeric formats
    FORMATS, pack_int4, unpack_int4, NumericFormat
DNN emulation and evaluation
    emulate, EmulationPlan, DataTypeConfig, datatypes, evaluate
Workflows
    characterize, retrain, RetrainConfig, deploy, DeployOptions, map_datatypes, run_pipeline
Power model
    MemSpec (see also eden.traffic, eden.fit for fitting error models to raw data)
"""

from __future__ import annotations

import importlib

from eden._version import __version__
from eden.address import AddressMap, DramOrganization
from eden.error_models import ErrorModel
from eden.formats import FORMATS, pack_int4, unpack_int4
from eden.inject import Correction, FlipLog, inject_

# Functions named like their modules are imported eagerly: importing a submodule sets the
# package attribute of the same name, which would otherwise shadow the function.
from eden.emulate import DataTypeConfig, EmulationPlan, datatypes, emulate  # noqa: E402
from eden.evaluate import evaluate  # noqa: E402
from eden.characterize import characterize  # noqa: E402
from eden.retrain import RetrainConfig, retrain  # noqa: E402
from eden.deploy import DeployOptions, deploy  # noqa: E402

_LAZY = {
    "DramProfile": "eden.profiles", "load_profile": "eden.profiles",
    "NumericFormat": "eden.quant",
    "map_datatypes": "eden.mapping",
    "run_pipeline": "eden.pipeline",
    "MemSpec": "eden.power",
}


_SUBMODULES = ("zoo", "profiles", "mapping", "power", "traffic", "fit", "raw", "quant", "pipeline", "plots")


def __getattr__(name: str):
    if name in _SUBMODULES and name not in _LAZY:
        return importlib.import_module(f"eden.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eden' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    # error models, placement, profiles
    "ErrorModel", "AddressMap", "DramOrganization", "DramProfile", "load_profile",
    # injection
    "inject_", "FlipLog", "Correction",
    # formats
    "FORMATS", "pack_int4", "unpack_int4", "NumericFormat",
    # DNN emulation
    "emulate", "EmulationPlan", "DataTypeConfig", "datatypes", "evaluate",
    # workflows
    "characterize", "retrain", "RetrainConfig", "deploy", "DeployOptions", "map_datatypes", "run_pipeline",
    # power
    "MemSpec",
]
