"""Several prepared injections run by one engine call (e.g. every weight of a model per forward).

:class:`InjectorGroup` takes :class:`eden.engine.ops.Injector` objects and injects all their
tensors for one access. The numba (``cpu``) injectors of one word type go through a single
compiled call (``_cpu_kernels.inject_many``: the plans concatenated once, only the per-access
keys refreshed per call); any other injector is called on its own. Every tensor gets exactly
the bits and the log its :class:`Injector` would give (tested): the streams belong to the plans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eden.engine.backends import cpu
from eden.engine.ops import FlipLog, Injector

_PLAN_PARTS = 10  # _cpu_kernels.MANY_* columns
_ZERO_OFF = np.zeros(1, np.int64)  # a log of one segment starting at 0 (read only)


class _Bucket:
    """The numba injectors of one word dtype: their plans concatenated (everything but the keys)."""

    def __init__(self, members: list[int], injectors: Sequence[Injector]):
        k = cpu.kernels()
        self.members = members
        self.dtype = np.dtype(injectors[members[0]].format.word)
        plans = [injectors[i].compiled.plan for i in members]
        J = len(plans)
        self.nwords = np.array([injectors[i].nbytes // self.dtype.itemsize for i in members], np.int64)
        self.idx_dtype = np.int32 if int(self.nwords.max(initial=0)) < 2**31 else np.int64
        scal = np.zeros((J, 8), np.int64)
        offs = np.zeros((J + 1, _PLAN_PARTS), np.int64)
        parts: dict[str, list[np.ndarray]] = {}
        caps: list[int] = []

        def put(name: str, a: np.ndarray, dtype) -> None:
            parts.setdefault(name, []).append(np.ascontiguousarray(a, dtype=dtype).reshape(-1))

        for j, pl in enumerate(plans):
            S, T = pl.n_subpasses, pl.n_tiles
            n_wl, n_bl, bls = pl.tile_wlclass.shape[0], pl.bl_offsets.shape[0], pl.bl_offsets.shape[1]
            scal[j] = (pl.row_bits, pl.bit_lo, pl.bit_hi, T, S, n_wl, n_bl, bls)
            sizes = (T, n_wl * T, len(pl.grp_t0), S, S + 1, len(pl.tab_t), len(pl.tab_guide), n_bl * bls,
                     len(pl.bl_cols), n_bl * (T + 1))
            offs[j + 1] = offs[j] + np.array(sizes, np.int64)
            rate, _, _, _, _, off, nd0 = cpu._launch(pl, False, self.idx_dtype, k)
            caps.append(int(off[-1]))
            for name, a, dt in (("tile_row_id", pl.tile_row_id, np.uint32), ("tile_group", pl.tile_group, np.int32),
                                ("tile_wl", pl.tile_wlclass, np.uint8), ("grp_off", pl.grp_off, np.int64),
                                ("grp_t0", pl.grp_t0, np.int64), ("grp_t1", pl.grp_t1, np.int64),
                                ("grp_cls", pl.grp_cls, np.uint8), ("sp_thin", pl.sp_thin, np.uint8),
                                ("sp_pop", pl.sp_pop, np.int32), ("sp_wl", pl.sp_wl, np.int32),
                                ("sp_gbits", pl.sp_gbits, np.int32), ("sp_active", pl.sp_active, np.uint8),
                                ("sp_L", pl.sp_L, np.float64), ("sp_rate", rate, np.float64),
                                ("sp_nd0", nd0, np.int64), ("sp_A", pl.sp_A, np.uint64),
                                ("sp_tab", pl.sp_tab, np.int64), ("tab_goff", pl.tab_goff, np.int64),
                                ("tab_t", pl.tab_t, np.uint64), ("guide", pl.tab_guide, np.int32),
                                ("bl_off", pl.bl_offsets, np.int64), ("bl_cols", pl.bl_cols, np.int32),
                                ("pop_cum", pl.pop_cum, np.int64)):
                put(name, a, dt)
        self.scal, self.offs = scal, offs
        cat = {name: np.concatenate(v) for name, v in parts.items()}
        self.args = tuple(cat[n] for n in ("tile_row_id", "tile_group", "tile_wl", "grp_off", "grp_t0", "grp_t1",
                                           "grp_cls"))
        self.sp_args = tuple(cat[n] for n in ("sp_thin", "sp_pop", "sp_wl", "sp_gbits", "sp_active", "sp_L",
                                              "sp_rate", "sp_nd0", "sp_A", "sp_tab", "tab_goff", "tab_t", "guide",
                                              "bl_off", "bl_cols", "pop_cum"))
        self.out_off = np.zeros(J + 1, np.int64)
        np.cumsum(caps, out=self.out_off[1:])
        self.keys = np.zeros(2 * int(offs[-1, 3]), np.uint32)
        self.proto = np.zeros(0, self.dtype)


class InjectorGroup:
    """Inject several tensors for one access with one engine call per backend and word type.

    Args:
        injectors: prepared :class:`Injector` objects (any backends, formats and corrections).

    Call ``group(targets, words, access, plausible=None)`` with, per injector, its target
    tensor, its storage view (``Injector.words(target)``) and, where it corrects, the plausible
    range: a list of :class:`FlipLog` in the injectors' order, each equal (bits, log, counts) to
    ``injector(target, words, access, plausible)``.
    """

    def __init__(self, injectors: Sequence[Injector]):
        self.injectors = tuple(injectors)
        by_dtype: dict[np.dtype, list[int]] = {}
        self._alone: list[int] = []
        for i, inj in enumerate(self.injectors):
            # (an ECC step runs per Injector; line events are added by cpu.inject, not inject_many)
            if inj.backend == "cpu" and inj.ecc is None and not inj.compiled.plan.has_events:
                by_dtype.setdefault(np.dtype(inj.format.word), []).append(i)
            else:
                self._alone.append(i)
        self._buckets = [_Bucket(m, self.injectors) for m in by_dtype.values()]

    def __len__(self) -> int:
        return len(self.injectors)

    def __call__(self, targets: Sequence, words: Sequence, access: int,
                 plausible: Sequence[tuple[float, float] | None] | None = None) -> list[FlipLog]:
        n = len(self.injectors)
        if len(targets) != n or len(words) != n or (plausible is not None and len(plausible) != n):
            raise ValueError(f"internal error: {n} injectors, {len(targets)} targets, {len(words)} word views")
        ranges = list(plausible) if plausible is not None else [None] * n
        logs: list[FlipLog | None] = [None] * n
        k = cpu.kernels() if self._buckets else None
        for b in self._buckets:
            J = len(b.members)
            addrs = np.empty(J, np.int64)
            for j, i in enumerate(b.members):
                w = words[i]
                if w.dtype != b.dtype or len(w) != b.nwords[j] or not w.flags.c_contiguous:
                    raise ValueError(f"internal error: word view {i} is not {b.nwords[j]} contiguous {b.dtype}")
                addrs[j] = w.ctypes.data
                cp = self.injectors[i].compiled
                s0, s1 = 2 * b.offs[j, 3], 2 * b.offs[j + 1, 3]
                b.keys[s0:s1] = cp.at(access).sp_key.reshape(-1)
            total = int(b.out_off[-1])
            idx = np.empty(total, b.idx_dtype)
            mask = np.empty(total, b.dtype)
            cnt = np.zeros(J, np.int64)
            assert k is not None
            (thin, pop, wl, gbits, active, L, rate, nd0, A, tab, goff, tab_t, guide, bl_off, bl_cols,
             pop_cum) = b.sp_args
            k.inject_many(addrs, b.nwords, b.proto, b.dtype.itemsize * 8, b.scal, b.offs, *b.args, b.keys, thin, pop,
                          wl, gbits, active, L, rate, nd0, A, tab, goff, tab_t, guide, bl_off, bl_cols, pop_cum,
                          b.out_off, idx, mask, cnt)
            for j, i in enumerate(b.members):
                inj = self.injectors[i]
                if cnt[j] < 0:  # its log would overflow: words untouched, the Injector re-runs it
                    logs[i] = inj(targets[i], words[i], access, ranges[i])
                    continue
                o = int(b.out_off[j])
                logs[i] = inj.log(targets[i], words[i], idx[o:o + cnt[j]], mask[o:o + cnt[j]], _ZERO_OFF,
                                 np.array([cnt[j]], np.int64), access, ranges[i])
        for i in self._alone:
            logs[i] = self.injectors[i](targets[i], words[i], access, ranges[i])
        return [log for log in logs if log is not None]
