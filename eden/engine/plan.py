"""Compile (error model, tensor placement, seed, access) into a backend-neutral plan.

The sampling scheme every backend implements (the NumPy oracle in ``sampling.py`` and
``backends/reference.py`` is the executable specification):

* A *tile* is the part of one DRAM row that the tensor occupies. Rows are
  identified by ``row_id = bank * rows + row``.
* Each error-model component becomes one or more *sub-passes* (its ``sub_passes()``). A sub-pass
  draws candidates from a *population* of positions of each tile, either all ``row_bits``
  bitlines (``pop = -1``) or the sorted list of weak bitlines of the row's
  subarray of weak-bitline map ``m`` (``pop = m``), at rate ``c[cls]``, where ``cls`` is the
  row's weak-wordline class of weak-wordline map ``wl`` (0 when ``wl = -1``). A component
  draws a weak-bitline map (em1), a weak-wordline map (em2) or both (emc, whose weak-bitline
  sub-pass is by weak-wordline class: the cells where the maps intersect); maps are keyed by
  (seed, component index, map tag), so a component's two maps are independent.
* *Stream groups* (what makes a sweep cost O(candidates + runs), not O(tiles)): the tiles of
  a sub-pass are cut into runs of consecutive tiles of one class, and each run into groups of
  at most ``2**k`` tiles, ``k = sp_gbits[s, cls]``, at tile indices that are multiples of
  ``2**k`` (a group never crosses such a boundary nor a class change). With ``n`` the mean
  tile population (``row_bits``, or the mean weak-bitline list), ``k = 0`` (a group is one
  tile) when ``c * n >= GROUP_SINGLE``, else the largest ``k`` (capped at ``GROUP_MAX_BITS``)
  with ``2**k * c * n <= GROUP_TARGET`` candidates expected per group (``group_bits``).
  Groups of an inactive class are not walked.
  Each group is *one* geometric walk over the concatenation of its tiles' populations (in
  tile order), with its own Philox stream: draw ``j`` of the group whose first tile has row id
  ``r`` uses counter ``(j, r, 0, k)`` under the sub-pass key when
  ``thin`` (53-bit U from words 0-1, 53-bit V from words 2-3), else counter
  ``(j // 2, r, 0, k)`` with U from words 0-1 (j even) or 2-3 (j odd).
  Groups are a property of the plan (error model, placement, seed), never of how a backend
  splits the work: a backend that cuts a group walks it from the group's start.
  Skip ``G``: for ``c < 2^-10``, ``G = floor(max(ln U / L, 0))`` with
  ``L = log1p(-c)`` (software log, ``rng.ln_u53``). For ``c >= 2^-10`` (the
  table method) ``G`` = number of thresholds ``t_k = floor((1-c)^k 2^53)``,
  ``k = 1..K``, above the 53-bit draw, found through a 4096-entry guide table;
  if all ``K`` are above it (probability <= 1/64), ``K`` is added and another
  draw is taken (memorylessness). Integer-only, so exact and fast. The
  candidate is at population index ``prev + G + 1`` of the group; the last draw's V decides
  acceptance.
* A candidate that lands in the tensor is kept iff ``V < A[cls, stored bit]``
  (always when not ``thin``). A bit flips iff some sub-pass keeps it (union).
* ``access`` persistence: one sub-pass per component part, keyed by
  ``(seed, access, component, part)``, rate ``max_v q``, acceptance ``q_v / max``.
* ``fixed`` persistence: each part is split into dyadic bands
  ``(0, 2^-24], (2^-24, 2^-23], ..., (1/2, 1]`` keyed by
  ``(seed, component, part, band)``; band rate ``(hi - lo) / (1 - lo)`` over all
  cells; acceptance ``(q_v - lo) / (hi - lo)`` clipped to [0, 1]. A cell's
  first band gives it a threshold uniform in that band, so the set of failing
  cells grows monotonically with ``q`` (nested maps). The groups of a band depend on its rate
  ``c`` and on the classes, never on ``q``: the nesting holds group by group.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
from typing import Any

import numpy as np

from eden.dram.address import AddressMap
from eden.engine import rng, sampling
from eden.engine.sampling import TAG_ACCESS, TAG_EVENT, TAG_FIXED, TAG_MEMBER, TAG_SLOT, TWO53, fixed_bands
from eden.errormodels.component import Persistence, Population, WeakLines
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError


@dataclasses.dataclass
class Plan:
    """Everything a backend needs, as plain arrays (shapes in comments)."""

    word_bits: int
    row_bits: int
    n_tiles: int
    bit_lo: int                     # tensor start, in bits from tile 0's row start
    bit_hi: int                     # tensor end (exclusive), same origin
    tile_row_id: np.ndarray         # uint32[n_tiles]
    tile_group: np.ndarray          # int32[n_tiles]: (bank, subarray) group of the tile
    tile_wlclass: np.ndarray        # uint8[n_wl, n_tiles]: weak-wordline class per weak-wordline map
    sp_key: np.ndarray              # uint32[S, 2]
    sp_thin: np.ndarray             # uint8[S]
    sp_pop: np.ndarray              # int32[S]: -1 = all bitlines, m = weak-bitline list m
    sp_wl: np.ndarray               # int32[S]: -1 = no wordline classes, m = weak-wordline map m
    sp_active: np.ndarray           # uint8[S, 2]
    sp_L: np.ndarray                # float64[S, 2]: log1p(-c) per class
    sp_A: np.ndarray                # uint64[S, 2, 2]: acceptance thresholds [class, stored bit]
    sp_tab: np.ndarray              # int64[S, 2, 2]: (offset, K) of the skip table; K = 0: log method
    tab_t: np.ndarray               # uint64[...]: concatenated thresholds t_1..t_K
    tab_guide: np.ndarray           # int32[...]: 4096 guide entries per table
    tab_goff: np.ndarray            # int64[S, 2]: offset of each table's guide entries
    bl_offsets: np.ndarray          # int64[n_bl, n_groups + 1]
    bl_cols: np.ndarray             # int32[...]: concatenated sorted weak bitlines
    sp_gbits: np.ndarray            # int32[S, 2]: stream groups of up to 2**gbits tiles, per class
    grp_off: np.ndarray             # int64[S + 1]: sub-pass s walks groups grp_off[s] .. grp_off[s + 1] - 1
    grp_t0: np.ndarray              # int64[G]: first tile of each (active) stream group
    grp_t1: np.ndarray              # int64[G]: its end tile (exclusive)
    grp_cls: np.ndarray             # uint8[G]: its weak-wordline class (0 when sp_wl = -1)
    grp_sp: np.ndarray              # int32[G]: its sub-pass
    pop_cum: np.ndarray             # int64[n_bl, n_tiles + 1]: weak-bitline population before each tile
    expected_candidates: float      # upper bound on the mean number of kept candidates
    # Line events (``events.py``; none unless a component has ``line_events``), E passes:
    ev_key: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.uint32))  # uint32[E, 2]
    # uint64[E]: an event iff U53 < thr
    ev_thr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.uint64))
    ev_wl: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))  # int32[E]: weak-row map
    ev_block: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))  # int32[E]: block bits
    ev_blk_off: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 1), np.int64))  # [E, n_groups+1]
    ev_blk: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))  # weak block indices
    ev_mem_off: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1, np.int64))  # per ev_blk entry + 1
    ev_mem: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))  # member bitlines (row pos)
    # What a backend derives from the plan alone (launch sizes, work estimates), memoized by
    # the backend under its own keys; shared by the plans of every access of one CompiledPlan
    # (only ``sp_key`` differs between them, and no backend derives anything from the keys).
    derived: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def n_subpasses(self) -> int:
        return len(self.sp_thin)

    @property
    def has_events(self) -> bool:
        """Whether the plan has line-event passes (every backend adds ``events.line_event_bits``)."""
        return len(self.ev_thr) > 0


TABLE_MIN_RATE = 2.0 ** -10
GUIDE_BITS = 12
#: Stream groups: at most GROUP_TARGET candidates expected per group and 2**GROUP_MAX_BITS tiles;
#: a tile that expects GROUP_SINGLE or more is a group of its own (at such rates a tile's own
#: stream is what the kernels walk fastest, and the GPU gets one thread per tile).
GROUP_TARGET = 256.0
GROUP_SINGLE = 24.0
GROUP_MAX_BITS = 20


def group_bits(rate: float, mean_pop: float) -> int:
    """``k`` of a stream group: 0 when a tile expects ``GROUP_SINGLE`` candidates or more, else
    the largest ``k <= GROUP_MAX_BITS`` with ``2**k * rate * mean_pop <= GROUP_TARGET``."""
    e = rate * mean_pop
    if not e > 0.0 or e >= GROUP_SINGLE:
        return 0
    k = 0
    while k < GROUP_MAX_BITS and (2.0 ** (k + 1)) * e <= GROUP_TARGET:
        k += 1
    return k


def stream_groups(cls: np.ndarray, gbits: np.ndarray, active: np.ndarray):
    """(t0, t1, cls) int64/int64/uint8 arrays of the active stream groups of one sub-pass.

    ``cls``: class per tile; ``gbits[c]``/``active[c]``: group bits and activity per class. A
    group starts at tile 0, at a class change, and at multiples of ``2**gbits[cls]``."""
    T = len(cls)
    if T == 0:
        e = np.zeros(0, np.int64)
        return e, e.copy(), np.zeros(0, np.uint8)
    t = np.arange(T, dtype=np.int64)
    k = np.asarray(gbits, np.int64)[cls]
    start = (t & ((np.int64(1) << k) - 1)) == 0
    start[0] = True
    start[1:] |= cls[1:] != cls[:-1]
    t0 = np.flatnonzero(start).astype(np.int64)
    t1 = np.append(t0[1:], np.int64(T))
    c = cls[t0]
    keep = np.asarray(active, bool)[c]
    return t0[keep], t1[keep], c[keep].astype(np.uint8)


def skip_table(c: float) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds t_k = floor((1-c)^k 2^53), k = 1..K with (1-c)^K <= 1/64, and the guide.

    ``guide[b]`` = number of k with ``t_k >= (b + 1) << 41``: every draw in bucket
    ``b`` lies below those thresholds.
    """
    if c >= 1.0:
        t = np.zeros(1, np.uint64)
    else:
        L = math.log1p(-c)
        K = max(1, math.ceil(math.log(64.0) / -L))
        k = np.arange(1, K + 1, dtype=np.float64)
        t = np.floor(np.exp(k * L) * float(TWO53)).astype(np.uint64)
    edges = (np.arange(1, (1 << GUIDE_BITS) + 1, dtype=np.uint64) << np.uint64(53 - GUIDE_BITS))
    # t is non-increasing: count of t_k >= edge via searchsorted on the reversed array
    rev = t[::-1]
    guide = (len(t) - np.searchsorted(rev, edges, side="left")).astype(np.int32)
    return t, guide


def _threshold(a: float) -> int:
    """Integer acceptance threshold: accept iff V53 < floor(a * 2**53)."""
    a = min(max(a, 0.0), 1.0)
    return min(TWO53, int(math.floor(a * TWO53)))


def _log1m(c: float) -> float:
    return -math.inf if c >= 1.0 else math.log1p(-c)


def tile_geometry(address_map: AddressMap, base_address: int, nbytes: int):
    """First chunk, tile count, [bit_lo, bit_hi) and per-tile bank/row arrays."""
    org = address_map.organization
    address_map.check_range(base_address, nbytes)
    first_chunk = base_address // org.row_bytes
    last_chunk = (base_address + nbytes - 1) // org.row_bytes
    n_tiles = int(last_chunk - first_chunk + 1)
    bit_lo = (base_address - first_chunk * org.row_bytes) * 8
    bit_hi = bit_lo + nbytes * 8
    chunks = np.arange(first_chunk, last_chunk + 1, dtype=np.int64)
    bank, row = address_map.chunk_to_bank_row(chunks)
    return n_tiles, bit_lo, bit_hi, bank, row


@functools.lru_cache(maxsize=64)
def _placement(address_map: AddressMap, base_address: int, nbytes: int, groups_needed: bool):
    """(n_tiles, bit_lo, bit_hi, row_id, groups, tile_group) of a placement, cached: a model
    is often injected again and again into the same tensor. The arrays are shared: read only."""
    org = address_map.organization
    n_tiles, bit_lo, bit_hi, bank, row = tile_geometry(address_map, base_address, nbytes)
    row_id = (bank * org.rows + row).astype(np.uint32)
    if groups_needed:
        group_global = bank * org.subarrays + row // org.subarray_rows
        groups, tile_group = np.unique(group_global, return_inverse=True)
    else:
        groups, tile_group = np.zeros(0, np.int64), np.zeros(n_tiles, np.int64)
    return n_tiles, bit_lo, bit_hi, row_id, groups, tile_group.astype(np.int32)


_WEAK_BITLINES: collections.OrderedDict = collections.OrderedDict()
_WEAK_BITLINES_BYTES = 64 << 20  # keep recent maps up to this much memory
_WEAK_BITLINES_LOCK = threading.Lock()


def _weak_bitlines(weak_lines, seed: int, component: int, fraction: float, groups: np.ndarray,
                   row_bits: int, block: int = 1) -> list:
    """weak_lines.weak_bitlines, memoized (recent maps; they depend on the seed and the
    placement only, not on the access or the rates). The lists are shared: read only.

    ``block > 1`` (a component's ``bitline_block``): the map draws weak blocks of ``block``
    aligned bitlines (``weak_bitlines`` over the ``row_bits // block`` block positions, the
    same nested streams) and lists every bitline of each weak block."""
    key = (seed, component, fraction, row_bits, block, groups.tobytes())
    with _WEAK_BITLINES_LOCK:
        hit = _WEAK_BITLINES.get(key)
        if hit is not None:
            _WEAK_BITLINES.move_to_end(key)
            return hit[0]
    if block == 1:
        lists = weak_lines.weak_bitlines(seed, component, fraction, groups, row_bits)
    else:
        if row_bits % block:
            raise ValueError(f"weak bitline blocks of {block} bitlines do not divide a row of {row_bits}")
        span = np.arange(block, dtype=np.int64)
        lists = [(np.asarray(b, np.int64)[:, None] * block + span[None, :]).reshape(-1)
                 for b in weak_lines.weak_bitlines(seed, component, fraction, groups, row_bits // block)]
    size = sum(a.nbytes for a in lists)
    with _WEAK_BITLINES_LOCK:
        _WEAK_BITLINES[key] = (lists, size)
        total = sum(v[1] for v in _WEAK_BITLINES.values())
        while total > _WEAK_BITLINES_BYTES and _WEAK_BITLINES:
            total -= _WEAK_BITLINES.popitem(last=False)[1][1]
    return lists


def compile_plan(model: ErrorModel, *, word_bits: int, nbytes: int, seed: int, access: int,
                 base_address: int, address_map: AddressMap, weak_lines=None) -> Plan:
    """Compile a model for one tensor placement. Host-side, O(tiles + weak bitlines) (cached per placement).

    ``weak_lines``: a module with ``weak_bitlines`` and ``weak_wordlines`` equal to
    ``sampling``'s (the oracle's, the default), e.g. the compiled ones of ``backends.cpu``.
    A fresh compilation every call; :func:`cached_plan` reuses one per placement.
    """
    return _compile(model, word_bits=word_bits, nbytes=nbytes, seed=seed, access=access,
                    base_address=base_address, address_map=address_map, weak_lines=weak_lines)[0]


class CompiledPlan:
    """A plan compiled once for one placement, for every access.

    The only part of a plan that depends on ``access`` is ``sp_key`` under ``access``
    persistence: sub-pass ``i`` of (component ``ci``, part ``pi``) is keyed by
    ``derive_key(seed, access, ci, pi, TAG_ACCESS)``. :meth:`at` recomputes just those
    keys (a few microseconds per sub-pass) and shares every other array, so
    ``cp.at(a)`` equals ``compile_plan(..., access=a)`` field for field (tested).
    ``fixed`` persistence plans do not depend on the access at all.
    """

    def __init__(self, plan: Plan, seed: int, access_parts: tuple[tuple[int, int], ...] | None,
                 event_parts: tuple[tuple[int, int], ...] = ()):
        self.plan = plan
        self.seed = seed
        self._access_parts = access_parts  # None: the keys do not depend on the access
        self._event_parts = event_parts if access_parts is not None else ()  # (component, part) of line events
        self._last: tuple[int, Plan] | None = None

    @property
    def per_access(self) -> bool:
        """Whether :meth:`at` changes with the access (``access`` persistence)."""
        return self._access_parts is not None

    def at(self, access: int) -> Plan:
        """The plan of one access (the last one is memoized)."""
        if self._access_parts is None:
            return self.plan
        last = self._last
        if last is not None and last[0] == access:
            return last[1]
        keys = [rng.derive_key(self.seed, access, ci, pi, TAG_ACCESS) for ci, pi in self._access_parts]
        # A shallow copy (every array and ``derived`` shared) but the keys; without
        # copy.copy's reduce protocol, which costs more than the keys here.
        plan = object.__new__(Plan)
        plan.__dict__.update(self.plan.__dict__)
        plan.sp_key = np.array(keys, np.uint32).reshape(len(keys), 2)
        if self._event_parts:
            plan.ev_key = np.array([rng.derive_key(self.seed, access, ci, pi, TAG_EVENT)
                                    for ci, pi in self._event_parts], np.uint32).reshape(-1, 2)
        self._last = (access, plan)
        return plan


_PLANS: collections.OrderedDict = collections.OrderedDict()
_PLANS_MAX = 512
_PLANS_LOCK = threading.Lock()


def cached_plan(model: ErrorModel, *, word_bits: int, nbytes: int, seed: int, base_address: int,
                address_map: AddressMap, weak_lines=None) -> CompiledPlan:
    """The :class:`CompiledPlan` of a placement, compiled on first use and kept (recent
    placements, least recently used dropped first). Key: (error model, word bits, nbytes,
    seed, base address, address map, weak-line module). Shared: read only."""
    key = (model, int(word_bits), int(nbytes), int(seed), int(base_address), address_map, id(weak_lines))
    with _PLANS_LOCK:
        hit = _PLANS.get(key)
        if hit is not None:
            _PLANS.move_to_end(key)
            return hit
    plan, parts, ev_parts = _compile(model, word_bits=word_bits, nbytes=nbytes, seed=seed, access=0,
                                     base_address=base_address, address_map=address_map, weak_lines=weak_lines)
    cp = CompiledPlan(plan, int(seed), parts, ev_parts)
    with _PLANS_LOCK:
        _PLANS[key] = cp
        while len(_PLANS) > _PLANS_MAX:
            _PLANS.popitem(last=False)
    return cp


def _compile(model: ErrorModel, *, word_bits: int, nbytes: int, seed: int, access: int,
             base_address: int, address_map: AddressMap, weak_lines=None):
    """(plan, (component, part) of each sub-pass's access key, or None under fixed persistence,
    (component, part) of each line-event pass)."""
    model = model.weak_map()  # two_level: its fixed weak map (eden/engine/twolevel.py); others: itself
    if weak_lines is None:
        weak_lines = sampling

    org = address_map.organization
    address_map.check_range(base_address, nbytes)
    n_tiles, bit_lo, bit_hi, row_id, groups, tile_group = _placement(
        address_map, int(base_address), int(nbytes),
        any(WeakLines.BITLINES in c.weak_fractions() for c in model.components))

    sp: list[dict[str, Any]] = []
    access_parts: list[tuple[int, int]] = []  # (component, part) of each access-keyed sub-pass
    bl_lists: list[list[np.ndarray]] = []  # per weak-bitline map (component): arrays per group
    wl_classes: list[np.ndarray] = []  # per weak-wordline map (component): uint8[n_tiles]
    ev: list[dict[str, Any]] = []  # line-event passes
    ev_parts: list[tuple[int, int]] = []
    for ci, comp in enumerate(model.components):
        pop, wl = -1, -1
        fractions = comp.weak_fractions()
        events = comp.line_events()
        # (a component with line events lists its weak bitlines only if a sub-pass walks them)
        if WeakLines.BITLINES in fractions and (not events or any(
                sub.population is Population.WEAK_BITLINES for sub in comp.sub_passes())):
            pop = len(bl_lists)
            bl_lists.append(_weak_bitlines(weak_lines, seed, ci, fractions[WeakLines.BITLINES], groups,
                                           org.row_bits, comp.bitline_block))
        if WeakLines.WORDLINES in fractions:
            wl = len(wl_classes)
            wl_classes.append(weak_lines.weak_wordlines(seed, ci, fractions[WeakLines.WORDLINES], row_id))
        for pi, sub in enumerate(comp.sub_passes()):
            q = sub.q
            sp_pop = pop if sub.population is Population.WEAK_BITLINES else -1
            sp_wl = wl if sub.by_wordline_class else -1
            if (sp_pop < 0 and sub.population is not Population.ALL) or (sp_wl < 0 and sub.by_wordline_class):
                raise ValueError(f"{comp.kind}: a sub-pass uses weak lines the component does not declare "
                                 f"(weak_lines = {comp.weak_lines})")
            qmax = [max(q[c]) for c in (0, 1)]
            if max(qmax) <= 0.0:
                continue
            if model.persistence is Persistence.ACCESS:
                key = rng.derive_key(seed, access, ci, pi, TAG_ACCESS)
                access_parts.append((ci, pi))
                active = [qm > 0.0 for qm in qmax]
                L = [_log1m(qm) if qm > 0 else 0.0 for qm in qmax]
                A = [[_threshold(q[c][v] / qmax[c]) if qmax[c] > 0 else 0 for v in (0, 1)] for c in (0, 1)]
                rate = [qm if a else 0.0 for qm, a in zip(qmax, active)]
                sp.append(dict(key=key, pop=sp_pop, wl=sp_wl, active=active, L=L, A=A, rate=rate, grate=rate))
            else:
                for bi, (lo, hi) in enumerate(fixed_bands()):
                    if lo >= max(qmax):
                        break
                    c = (hi - lo) / (1.0 - lo)
                    key = rng.derive_key(seed, ci, pi, bi, TAG_FIXED)
                    active = [lo < qm for qm in qmax]
                    L = [_log1m(c) if a else 0.0 for a in active]
                    A = [[_threshold((q[cl][v] - lo) / (hi - lo)) if active[cl] else 0 for v in (0, 1)]
                         for cl in (0, 1)]
                    # (the groups follow the band rate c in both classes, active or not: the
                    # streams of a band never depend on q)
                    sp.append(dict(key=key, pop=sp_pop, wl=sp_wl, active=active, L=L, A=A,
                                   rate=[c if a else 0.0 for a in active], grate=[c, c]))
        if events:
            ev += _event_passes(model, comp, ci, events, seed, access, groups, wl, org.row_bits, weak_lines,
                                ev_parts, wl_classes, row_id)

    S = len(sp)
    sp_tab = np.zeros((S, 2, 2), np.int64)
    tab_goff = np.zeros((S, 2), np.int64)
    tabs: list[np.ndarray] = []
    guides: list[np.ndarray] = []
    toff = 0
    for i, s in enumerate(sp):
        for cl in (0, 1):
            c = s["rate"][cl]
            if s["active"][cl] and c >= TABLE_MIN_RATE:
                t, guide = skip_table(c)
                sp_tab[i, cl] = (toff, len(t))
                tab_goff[i, cl] = len(guides) * (1 << GUIDE_BITS)
                tabs.append(t)
                guides.append(guide)
                toff += len(t)
    sp_thin = np.zeros(S, np.uint8)
    for i, s in enumerate(sp):
        # Fixed maps always draw (U, V) pairs: the stream layout must not depend on the
        # rate, or a band fully used at a higher rate would draw different cells (nesting).
        sp_thin[i] = model.persistence is Persistence.FIXED or any(
            s["active"][c] and s["A"][c][v] < TWO53 for c in (0, 1) for v in (0, 1))
    n_groups = len(groups)
    bl_offsets = np.zeros((max(len(bl_lists), 1), n_groups + 1), np.int64)
    cols = []
    start = 0
    for m, lists in enumerate(bl_lists):
        for g, arr in enumerate(lists):
            bl_offsets[m, g] = start
            cols.append(arr)
            start += len(arr)
        bl_offsets[m, n_groups] = start
    bl_cols = np.concatenate(cols).astype(np.int32) if cols else np.zeros(0, np.int32)
    tile_wl = np.stack(wl_classes).astype(np.uint8) if wl_classes else np.zeros((1, n_tiles), np.uint8)

    # Stream groups (see the module docstring): group bits per sub-pass and class from the
    # rate and the mean tile population; then the active groups of each sub-pass.
    pop_cum = np.zeros((max(len(bl_lists), 1), n_tiles + 1), np.int64)
    mean_pop = []
    for m in range(len(bl_lists)):
        sizes = (bl_offsets[m, 1:] - bl_offsets[m, :-1])[tile_group.astype(np.int64)]
        np.cumsum(sizes, out=pop_cum[m, 1:])
        mean_pop.append(float(sizes.mean()) if n_tiles else 0.0)
    sp_gbits = np.zeros((S, 2), np.int32)
    g_t0, g_t1, g_cls, g_sp = [], [], [], []
    grp_off = np.zeros(S + 1, np.int64)
    for i, s in enumerate(sp):
        npop = float(org.row_bits) if s["pop"] < 0 else mean_pop[s["pop"]]
        for cl in (0, 1):
            sp_gbits[i, cl] = group_bits(s["grate"][cl], npop)
        cls = tile_wl[s["wl"]].astype(np.int64) if s["wl"] >= 0 else np.zeros(n_tiles, np.int64)
        t0, t1, gc = stream_groups(cls, sp_gbits[i], s["active"])
        g_t0.append(t0)
        g_t1.append(t1)
        g_cls.append(gc)
        g_sp.append(np.full(len(t0), i, np.int32))
        grp_off[i + 1] = grp_off[i] + len(t0)

    # Upper bound on kept candidates (for output buffers): every sub-pass at its
    # highest class rate over its whole population.
    bits = float(nbytes) * 8
    expected = 0.0
    for s in sp:
        pop_frac = 1.0
        if s["pop"] >= 0:
            comp_lists = bl_lists[s["pop"]]
            pop_frac = sum(len(a) for a in comp_lists) / max(n_groups * org.row_bits, 1)
        expected += max(s["rate"]) * bits * pop_frac

    plan = Plan(
        word_bits=word_bits, row_bits=org.row_bits, n_tiles=n_tiles, bit_lo=int(bit_lo),
        bit_hi=int(bit_hi), tile_row_id=row_id, tile_group=tile_group,
        tile_wlclass=tile_wl,
        sp_key=np.array([s["key"] for s in sp], np.uint32).reshape(S, 2),
        sp_thin=sp_thin,
        sp_pop=np.array([s["pop"] for s in sp], np.int32),
        sp_wl=np.array([s["wl"] for s in sp], np.int32),
        sp_active=np.array([s["active"] for s in sp], np.uint8).reshape(S, 2),
        sp_L=np.array([s["L"] for s in sp], np.float64).reshape(S, 2),
        sp_A=np.array([s["A"] for s in sp], np.uint64).reshape(S, 2, 2),
        sp_tab=sp_tab, tab_t=np.concatenate(tabs) if tabs else np.zeros(1, np.uint64),
        tab_guide=np.concatenate(guides) if guides else np.zeros(1, np.int32), tab_goff=tab_goff,
        bl_offsets=bl_offsets, bl_cols=bl_cols, sp_gbits=sp_gbits, grp_off=grp_off,
        grp_t0=np.concatenate(g_t0) if S else np.zeros(0, np.int64),
        grp_t1=np.concatenate(g_t1) if S else np.zeros(0, np.int64),
        grp_cls=np.concatenate(g_cls) if S else np.zeros(0, np.uint8),
        grp_sp=np.concatenate(g_sp) if S else np.zeros(0, np.int32),
        pop_cum=pop_cum, expected_candidates=expected,
    )
    if ev:
        _put_events(plan, ev, n_groups)
    per_access = model.persistence is Persistence.ACCESS
    return plan, (tuple(access_parts) if per_access else None), tuple(ev_parts)


def _event_passes(model, comp, ci, events, seed, access, groups, wl, row_bits, weak_lines, ev_parts,
                  wl_classes, row_id):
    """The line-event passes of component ``ci`` (see ``events.py``): keys, thresholds, its
    weak-row map ``wl`` (or a pass's share of it, appended to ``wl_classes``), weak blocks and
    member bitlines per group."""
    fractions = comp.weak_fractions()
    block = comp.bitline_block
    if set(fractions) != {WeakLines.BITLINES, WeakLines.WORDLINES} or block < 1 or row_bits % block:
        raise ValueError(f"{comp.kind}: line events need both weak-line maps and blocks that divide a row of "
                         f"{row_bits} bits (weak_lines = {comp.weak_lines}, bitline_block = {block})")
    blocks = weak_lines.weak_bitlines(seed, ci, fractions[WeakLines.BITLINES], groups, row_bits // block)
    out = []
    n_sub = len(comp.sub_passes())
    slots: dict[tuple[int, float], tuple[list, list]] = {}
    shares: dict[tuple[float, float], int] = {}
    for ei, e_pass in enumerate(events):
        pi = n_sub + ei
        lo, hi = e_pass.rows
        if e_pass.slot_bits and (e_pass.rate <= 0.0 or hi <= lo):
            continue  # a grouped pass that cannot fire (the others keep their keys: pi is the pass's index)
        if model.persistence is Persistence.ACCESS:
            key = rng.derive_key(seed, access, ci, pi, TAG_EVENT)
            ev_parts.append((ci, pi))
        else:
            key = rng.derive_key(seed, ci, pi, TAG_EVENT)
        pass_wl = wl
        if (lo, hi) != (0.0, 1.0) and (lo, hi) in shares:
            pass_wl = shares[(lo, hi)]
        elif (lo, hi) != (0.0, 1.0):  # this pass's share of the weak rows (nested uniforms: disjoint shares)
            fw = fractions[WeakLines.WORDLINES]
            cls = weak_lines.weak_wordlines(seed, ci, fw * hi, row_id)
            if lo > 0.0:
                cls = cls & (1 - weak_lines.weak_wordlines(seed, ci, fw * lo, row_id))
            pass_wl = shares[(lo, hi)] = len(wl_classes)
            wl_classes.append(cls.astype(np.uint8))
        if e_pass.slot_bits:
            sb = int(e_pass.slot_bits)
            if not 1 <= sb <= 8 or block % sb or not 1 <= e_pass.members <= sb:
                raise EdenConfigError(f"{comp.kind}: event slots of 1..8 bits must divide its {block}-bit blocks "
                                      f"and hold 1..slot bits members, got {sb}-bit slots of {e_pass.members}")
            skey = (sb, e_pass.slot_fraction, e_pass.dense)
            if skey not in slots:
                dense_blocks = (weak_lines.weak_bitlines(seed, ci, fractions[WeakLines.BITLINES] * e_pass.dense[0],
                                                         groups, row_bits // block)
                                if e_pass.dense[0] > 0 else None)
                slots[skey] = _weak_slots(seed, ci, n_sub, e_pass.slot_fraction, groups, blocks, block, sb, row_bits,
                                          dense_blocks, e_pass.dense[1])
            slot_blocks, ranks = slots[skey]
            members = [(s[:, None] * sb + r[:, :e_pass.members]).ravel() if len(s) else np.zeros(0, np.int64)
                       for s, r in zip(slot_blocks, ranks)]
            members = [np.sort(m) for m in members]
            if e_pass.whole_block:  # one event per weak block with weak slots: all their groups
                per = block // sb
                out.append(dict(key=key, thr=_threshold(e_pass.rate), wl=pass_wl, block=block,
                                blocks=[np.unique(s // per) for s in slot_blocks], members=members))
            else:
                out.append(dict(key=key, thr=_threshold(e_pass.rate), wl=pass_wl, block=sb, blocks=slot_blocks,
                                members=members))
            continue
        members = sampling.nested_sample(seed, (ci, pi, TAG_MEMBER), e_pass.member_fraction, groups, row_bits,
                                         sampling.STREAM_BITLINES) if len(groups) else []
        out.append(dict(key=key, thr=_threshold(e_pass.rate), wl=pass_wl, block=block, blocks=blocks,
                        members=members))
    return out


def _weak_slots(seed, ci, part, fraction, groups, blocks, block, slot_bits, row_bits, dense_blocks=None,
                dense_fraction=0.0):
    """Weak slots (``slot_bits``-bitline slots of the weak ``block``-bit blocks, each weak with
    ``fraction``, or ``dense_fraction`` in ``dense_blocks``; nested in both: one uniform per slot)
    of each group, and each weak slot's bitline ranking (offsets in the slot, a member set of ``m``
    bitlines is the first ``m``: nested in ``m``)."""
    def cand(rate):
        return sampling.nested_sample(seed, (ci, part, TAG_SLOT), rate, groups, row_bits // slot_bits,
                                      sampling.STREAM_BITLINES) if len(groups) else []

    sparse = cand(fraction)
    dense = cand(dense_fraction) if dense_blocks is not None else [np.zeros(0, np.int64)] * len(sparse)
    dense_blocks = dense_blocks if dense_blocks is not None else [np.zeros(0, np.int64)] * len(sparse)
    per = block // slot_bits
    k0, k1 = rng.derive_key(seed, ci, part, TAG_SLOT, TAG_MEMBER, 0)  # (six parts: no band key of the slots)
    out_s, out_r = [], []
    for g, s, sd, b, bd in zip(np.asarray(groups, np.int64), sparse, dense, blocks, dense_blocks):
        b, bd = np.asarray(b, np.int64), np.asarray(bd, np.int64)
        s, sd = np.asarray(s, np.int64), np.asarray(sd, np.int64)
        s = np.union1d(s[np.isin(s // per, b) & ~np.isin(s // per, bd)], sd[np.isin(sd // per, bd)])
        # 8 uniform 16-bit keys per slot from one Philox block; ties broken by the bitline offset
        x = rng.philox4x32_10(s, np.full(len(s), g, np.int64), sampling.STREAM_BITLINES, 0, k0, k1)
        words = np.stack([np.asarray(w, np.uint64) for w in x], axis=1)
        u = np.concatenate([words & np.uint64(0xFFFF), words >> np.uint64(16)], axis=1)[:, :slot_bits]
        order = np.argsort(u.astype(np.int64) * slot_bits + np.arange(slot_bits)[None, :], axis=1, kind="stable")
        out_s.append(s)
        out_r.append(order.astype(np.int64))
    return out_s, out_r


def _put_events(plan: Plan, ev: list, n_groups: int) -> None:
    """Fill the plan's ``ev_*`` arrays from the passes of :func:`_event_passes`."""
    E = len(ev)
    blk_off = np.zeros((E, n_groups + 1), np.int64)
    blk, mem_off, mem = [], [np.zeros(1, np.int64)], []
    n_blk = n_mem = 0
    for i, e in enumerate(ev):
        for g in range(n_groups):
            b = np.asarray(e["blocks"][g], np.int64)
            m = np.asarray(e["members"][g], np.int64)
            blk_off[i, g] = n_blk
            blk.append(b)
            # members of each weak block: the member bitlines within its span
            lo, hi = np.searchsorted(m, b * e["block"]), np.searchsorted(m, (b + 1) * e["block"])
            sizes = hi - lo
            mem_off.append(n_mem + np.cumsum(sizes))
            mem += [m[a:z] for a, z in zip(lo, hi)]
            n_blk += len(b)
            n_mem += int(sizes.sum())
        blk_off[i, n_groups] = n_blk
    plan.ev_key = np.array([e["key"] for e in ev], np.uint32).reshape(E, 2)
    plan.ev_thr = np.array([e["thr"] for e in ev], np.uint64)
    plan.ev_wl = np.array([e["wl"] for e in ev], np.int32)
    plan.ev_block = np.array([e["block"] for e in ev], np.int32)
    plan.ev_blk_off = blk_off
    plan.ev_blk = np.concatenate(blk).astype(np.int32) if blk else np.zeros(0, np.int32)
    plan.ev_mem_off = np.concatenate(mem_off).astype(np.int64)
    plan.ev_mem = np.concatenate(mem).astype(np.int32) if mem else np.zeros(0, np.int32)
