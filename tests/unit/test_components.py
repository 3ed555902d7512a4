"""The error-model component registry (eden/errormodels/component.py, components/).

Every registered component round-trips through its spec, and its declared expected BER equals
what the engine's compiled sub-passes flip; unknown names list the known ones; a component
registered by a test (one class) works through specs, HDF5 files and injection.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from eden.dram.address import DEFAULT_ADDRESS_MAP, DramOrganization
from eden.dram.fit import MODELS, N_PARAMS, fit, simulate_records
from eden.dram.raw import RawCharacterization
from eden.engine.ops import inject_
from eden.engine.plan import compile_plan
from eden.errormodels import component as registry
from eden.errormodels.component import Component, Persistence, SubPass, WeakLines, rate_param, register
from eden.errormodels.components import component_class, component_kinds, fit_model
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError

TWO53 = float(1 << 53)


def _example(cls) -> Component:
    """An instance with every parameter set, probabilities decreasing (so p >= p_else holds)."""
    values, rate = {}, 0.05
    for f in dataclasses.fields(cls):
        if f.metadata["scales"]:
            values[f.name], rate = rate, rate / 7
        elif f.metadata.get("integer"):  # a count parameter: inside its range
            values[f.name] = int(f.metadata["range"][1]) - 1
        else:
            values[f.name] = 0.125
    return cls(**values)


@pytest.mark.parametrize("kind", component_kinds())
def test_spec_round_trip(kind):
    comp = _example(component_class(kind))
    for persistence in Persistence:
        q = 0.0625 if persistence is Persistence.TWO_LEVEL else None  # (two_level needs its q)
        model = ErrorModel((comp, comp), persistence, q)
        again = ErrorModel.from_spec(model.to_spec())
        assert again == model and again.components[0].params() == comp.params()  # exact floats
    assert ErrorModel.from_spec(kind + ":").components == (component_class(kind)(),)  # defaults


def _plan_ber(model: ErrorModel, ones_fraction: float) -> float:
    """Mean flip probability of a cell, from the compiled plan's sub-pass rates and acceptances."""
    (comp,) = model.components
    plan = compile_plan(model, word_bits=32, nbytes=1 << 16, seed=1, access=0, base_address=0,
                        address_map=DEFAULT_ADDRESS_MAP)
    fractions = comp.weak_fractions()
    f_bl = fractions.get(WeakLines.BITLINES, 0.0)
    f_wl = fractions.get(WeakLines.WORDLINES, 0.0)
    total = 0.0
    for weak_b, pb in ((False, 1 - f_bl), (True, f_bl)):
        for weak_w, pw in ((False, 1 - f_wl), (True, f_wl)):
            for stored, pv in ((0, 1 - ones_fraction), (1, ones_fraction)):
                keep = 1.0
                for s in range(plan.n_subpasses):
                    if plan.sp_pop[s] >= 0 and not weak_b:
                        continue  # a weak-bitline sub-pass does not walk this cell
                    cls = int(weak_w) if plan.sp_wl[s] >= 0 else 0
                    if not plan.sp_active[s, cls]:
                        continue
                    rate = -math.expm1(plan.sp_L[s, cls])
                    keep *= 1.0 - rate * float(plan.sp_A[s, cls, stored]) / TWO53
                events = comp.line_events()
                if weak_b and weak_w and any(ev.slot_bits for ev in events):
                    # grouped events: per row share, a cell is in a weak slot's group with (slot fraction)
                    # * K / slot bits, and flips if any of the share's passes (slot, whole line) fires
                    shares: dict = {}
                    for e, ev in enumerate(events):
                        shares.setdefault(ev.rows, []).append(e)
                    p_event = 0.0
                    for (lo, hi), idx in shares.items():
                        ev = events[idx[0]]
                        slot = (1 - ev.dense[0]) * ev.slot_fraction + ev.dense[0] * ev.dense[1]
                        quiet = math.prod(1.0 - float(plan.ev_thr[e]) / TWO53 for e in idx)
                        p_event += (hi - lo) * slot * ev.members / ev.slot_bits * (1.0 - quiet)
                    keep *= 1.0 - p_event
                elif weak_b and weak_w:  # line events: a cell of a weak tile-line is a member with member_fraction
                    for e, ev in enumerate(events):
                        keep *= 1.0 - float(plan.ev_thr[e]) / TWO53 * ev.member_fraction
                total += pb * pw * pv * (1.0 - keep)
    return total


@pytest.mark.parametrize("kind", component_kinds())
def test_expected_ber_matches_the_compiled_sub_passes(kind):
    model = ErrorModel((_example(component_class(kind)),))
    for ones in (0.5, 0.2):
        assert _plan_ber(model, ones) == pytest.approx(model.expected_ber(ones), rel=1e-9)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(EdenConfigError,
                       match=r"unknown error model 'em9'; known: em0, em1, em2, em3, emc, emg, eml; did you mean"):
        ErrorModel.from_spec("em9:p=1e-3")
    with pytest.raises(EdenConfigError, match=r"unknown error model 'emm1'.*did you mean 'em1'"):
        component_class("emm1")
    with pytest.raises(EdenConfigError, match=r"unknown model 'em1\+em3'.*did you mean 'em1\+em2'"):
        fit_model("em1+em3")
    with pytest.raises(EdenConfigError, match=r"unknown persistence 'fixd'.*did you mean 'fixed'"):
        ErrorModel.from_spec("em0:p=1e-3;persistence=fixd")


def test_fit_candidates_come_from_the_registry_in_order():
    # the order seeds each candidate's goodness-of-fit Monte Carlo: the goldens depend on it
    assert MODELS == ("em0", "em1", "em2", "em3", "em1+em2", "emc", "eml", "emg")
    assert N_PARAMS == {"em0": 1, "em1": 3, "em2": 3, "em3": 2, "em1+em2": 5, "emc": 4, "eml": 5, "emg": 14}
    assert fit_model("em1+em2").fit_parts == ("em1", "em2")


def test_persistence_is_a_str_enum_accepted_as_its_spelling():
    assert ErrorModel.uniform(1e-3, "fixed") == ErrorModel.uniform(1e-3, Persistence.FIXED)
    model = ErrorModel.from_spec("em0:p=1e-3", persistence="fixed")
    assert model.persistence is Persistence.FIXED and model.persistence == "fixed"
    assert model.to_spec() == "em0:p=0.001;persistence=fixed"


# ------------------------------------------------------------ a component added by a test
@pytest.fixture
def toy(monkeypatch):
    """Register ``toy`` (stored ones read as 0 with p) in a copy of the registry, for one test."""
    monkeypatch.setattr(registry, "_COMPONENTS", registry._COMPONENTS.copy())

    @register
    @dataclasses.dataclass(frozen=True)
    class OnesFade(Component):
        kind = "toy"
        p: float = rate_param("probability that a stored 1 reads as 0")

        def rate_table(self, weak_bitline, weak_wordline):
            return (0.0, self.p)

        def sub_passes(self):
            q = (0.0, self.p)
            return (SubPass((q, q)),)

    return OnesFade


def test_a_registered_component_works_end_to_end(toy, tmp_path):
    model = ErrorModel.from_spec("toy:p=0.25+em0:p=0")
    assert model.components[0] == toy(0.25)
    assert model.expected_ber(0.5) == pytest.approx(0.125)
    path = tmp_path / "toy.h5"
    model.save(path)
    assert ErrorModel.load(path) == model

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 2**31, size=1 << 14, dtype=np.int64).astype(np.int32))
    clean = x.clone()
    log = inject_(x, "toy:p=0.25", seed=3, backend="reference")
    before, after = clean.numpy().view(np.uint32), x.numpy().view(np.uint32)
    assert np.all(after & ~before == 0)  # only stored ones flip, to 0
    ones = int(np.unpackbits(before.view(np.uint8)).sum())
    assert abs(log.n_bits - 0.25 * ones) < 5 * math.sqrt(0.25 * 0.75 * ones)
    log.undo()
    assert torch.equal(x, clean)

    org = DramOrganization(banks=1, rows=16, row_bytes=64)
    with pytest.raises(EdenConfigError, match="toy does not define simulation_passes"):
        simulate_records(model, org)


def test_the_registry_copy_is_gone_after_the_test():
    assert "toy" not in component_kinds()


def test_register_rejects_a_taken_kind_and_undeclared_parameters(monkeypatch):
    monkeypatch.setattr(registry, "_COMPONENTS", registry._COMPONENTS.copy())

    @dataclasses.dataclass(frozen=True)
    class Again(Component):
        kind = "em0"
        p: float = rate_param("flip probability")

    with pytest.raises(ValueError, match="'em0' is taken"):
        register(Again)

    @dataclasses.dataclass(frozen=True)
    class Plain(Component):
        kind = "plain"
        p: float = 0.0

    with pytest.raises(TypeError, match=r"declare parameters \['p'\] with rate_param"):
        register(Plain)
    assert "plain" not in component_kinds()


def test_a_registered_fit_candidate_is_fitted_from_its_parts(monkeypatch):
    """A composite candidate: fitted after its parts, from their estimates; excluded with them."""
    monkeypatch.setattr(registry, "_FIT_MODELS", registry._FIT_MODELS.copy())
    Uniform, DataDependent = component_class("em0"), component_class("em3")

    class UniformAndDirections:
        name = "em0+em3"
        fit_parts = ("em0", "em3")
        fits_without_errors = False

        @staticmethod
        def fit_param_count():
            return 3

        @staticmethod
        def fit_exclusion(data):
            return None

        @staticmethod
        def fit_records(data, confidence, part_thetas):
            from eden.errormodels.fitting import CandidateFit

            (p,), (p10, p01) = part_thetas["em0"], part_thetas["em3"]
            return CandidateFit((Uniform(p / 2), DataDependent(p10 / 2, p01 / 2)), -1.0, ())

        @staticmethod
        def simulate_margins(components, data, rng):
            return fit_model("em0").simulate_margins(components[:1], data, rng)

    registry.register_fit_model(UniformAndDirections)
    org = DramOrganization(banks=1, rows=256, row_bytes=1024)
    raw = RawCharacterization((simulate_records("em3:p10=1e-3,p01=1e-4", org, seed=1),), org)
    result = fit(raw, models=["em0+em3"])
    (c,) = result.candidates
    em0, em3 = fit(raw, models=["em0"]).model.components[0], fit(raw, models=["em3"]).model.components[0]
    assert c.model == ErrorModel((Uniform(em0.p / 2), DataDependent(em3.p10 / 2, em3.p01 / 2)))
    assert c.n_params == 3 and c.bic == pytest.approx(3 * math.log(org.capacity_bytes * 8) + 2.0)
    assert {g.margin for g in c.gof} == {"row", "column"}

    no_direction = simulate_records("em3:p10=1e-3,p01=1e-4", org, seed=1, record_direction=False)
    result = fit(RawCharacterization((no_direction,), org), gof=False)
    assert result.excluded["em0+em3"].startswith("not identifiable: its part em3 is not")
    with pytest.raises(EdenConfigError, match="unknown model 'em0\\+em4'"):
        fit(raw, models=["em0+em4"])
