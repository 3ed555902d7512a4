"""eden: run neural networks on emulated approximate DRAM.

Public API. Everything loads on first use, so ``import eden`` imports neither torch, CuPy nor
numba, and the DRAM side (``eden.dram``, ``eden.power``, ``eden.workflows.mapping``) works
without torch installed.

Errors
    EdenError (root), EdenFileError, EdenFileNotFoundError, EdenConfigError, EdenTypeError, EdenDataError,
    EdenInfeasibleError, BackendUnavailableError
Error models, DRAM placement and profiles
    ErrorModel, AddressMap, DramOrganization, DramProfile, load_profile
Injection
    inject_, FlipLog, Correction, CorrectionMode
Storage and numeric formats
    FORMATS, pack_int4, unpack_int4, NumericFormat
DNN emulation and evaluation
    emulate, EmulationPlan, DataTypeConfig, datatypes, evaluate
Workflows
    characterize, retrain, RetrainConfig, deploy, DeployOptions, map_datatypes, run_pipeline
Power model
    MemSpec

Layers, top to bottom (a module imports its own layer or lower ones; ``tests/unit/test_layers.py``
enforces it): ``cli`` > ``workflows`` > ``nn`` > ``engine``, ``power`` > ``dram`` > ``formats``,
``errormodels`` > ``core``. See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from eden._version import __version__
from eden.errors import (EdenConfigError, EdenDataError, EdenError, EdenFileError, EdenFileNotFoundError,
                         EdenInfeasibleError, EdenTypeError)

_LAZY = {
    "ErrorModel": "eden.errormodels.model",
    "AddressMap": "eden.dram.address", "DramOrganization": "eden.dram.address",
    "DramProfile": "eden.dram.profiles", "load_profile": "eden.dram.profiles",
    "inject_": "eden.engine.ops", "FlipLog": "eden.engine.ops", "Correction": "eden.engine.ops",
    "CorrectionMode": "eden.engine.correct", "BackendUnavailableError": "eden.engine.contract",
    "FORMATS": "eden.formats", "pack_int4": "eden.formats", "unpack_int4": "eden.formats",
    "NumericFormat": "eden.nn.quant",
    "emulate": "eden.nn.emulate", "EmulationPlan": "eden.nn.emulate", "DataTypeConfig": "eden.nn.emulate",
    "datatypes": "eden.nn.emulate", "evaluate": "eden.nn.evaluate",
    "characterize": "eden.workflows.characterize",
    "retrain": "eden.workflows.retrain", "RetrainConfig": "eden.workflows.retrain",
    "deploy": "eden.workflows.deploy", "DeployOptions": "eden.workflows.deploy",
    "map_datatypes": "eden.workflows.mapping",
    "run_pipeline": "eden.workflows.pipeline",
    "MemSpec": "eden.power.memspec",
}

# Modules reachable as ``eden.<name>`` (``eden.zoo.load_model`` in the README's API).
_MODULES = {
    "zoo": "eden.nn.zoo", "quant": "eden.nn.quant",
    "profiles": "eden.dram.profiles", "raw": "eden.dram.raw", "fit": "eden.dram.fit",
    "traffic": "eden.power.traffic", "mapping": "eden.workflows.mapping",
    "pipeline": "eden.workflows.pipeline", "plots": "eden.workflows.plots",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'eden' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = [
    "__version__",
    # errors
    "EdenError", "EdenFileError", "EdenFileNotFoundError", "EdenConfigError", "EdenTypeError", "EdenDataError",
    "EdenInfeasibleError", "BackendUnavailableError",
    # error models, placement, profiles
    "ErrorModel", "AddressMap", "DramOrganization", "DramProfile", "load_profile",
    # injection
    "inject_", "FlipLog", "Correction", "CorrectionMode",
    # formats
    "FORMATS", "pack_int4", "unpack_int4", "NumericFormat",
    # DNN emulation
    "emulate", "EmulationPlan", "DataTypeConfig", "datatypes", "evaluate",
    # workflows
    "characterize", "retrain", "RetrainConfig", "deploy", "DeployOptions", "map_datatypes", "run_pipeline",
    # power
    "MemSpec",
]
