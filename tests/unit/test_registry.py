"""eden.core.registry.Registry: every extension point's name -> implementation table."""

import pytest

from eden.core.registry import Registry
from eden.errors import EdenConfigError


def test_registers_once_and_explains_unknown_names():
    reg: Registry[int] = Registry("mapping policy")
    assert reg.add("greedy", 1) == 1 and reg.add("milp", 2) == 2
    assert reg.names() == ("greedy", "milp") and reg.lookup("milp") == 2
    with pytest.raises(ValueError, match="mapping policy 'greedy' is already registered"):
        reg.add("greedy", 3)
    with pytest.raises(TypeError, match="non-empty name"):
        reg.add("", 3)
    with pytest.raises(EdenConfigError, match="unknown mapping policy 'gredy'; known: greedy, milp; "
                                              "did you mean 'greedy'"):
        reg.lookup("gredy")
    with pytest.raises(EdenConfigError, match="unknown mapping policy 3"):
        reg.lookup(3)
    copy = reg.copy()
    copy.add("other", 4)
    assert "other" not in reg and copy.what == reg.what and isinstance(copy, Registry)


def test_every_extension_point_uses_it():
    from eden.dram import importers, standards
    from eden.engine import contract, ops  # noqa: F401 (ops registers the backends)
    from eden.errormodels import component
    from eden.formats import registry as formats
    from eden.workflows import mapping

    for reg in (importers.IMPORTERS, standards._REGISTRY, component._COMPONENTS, component._FIT_MODELS,
                formats._FORMATS, mapping.MAPPING_POLICIES, contract._BACKENDS):
        assert isinstance(reg, Registry) and len(reg) >= 2, reg.what
