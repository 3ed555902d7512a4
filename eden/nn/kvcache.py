"""The KV cache of a transformer as data types of its own: ``<attention module>.k_cache`` / ``.v_cache``.

A cached key/value entry is written once, when its token passes through the attention
module, and read by every later token. :mod:`eden.nn.lm` defines the cache convention
(an attention module with an integer ``layer_idx`` gets the cache as the keyword
``cache`` or ``past_key_values`` and calls ``cache.update(key, value, layer_idx)``);
this module wraps ``update`` of every cache the attention modules receive while an
emulation is active and puts approximate-DRAM errors into what it returns.

**Two semantics** (:class:`KVSemantics`):

* ``access`` (access persistence, the default): the stored cache stays clean; every
  read of a layer's cache (one ``update`` call: a prefill reads it once, every decode
  step once) gets its own corrupted copy, with errors drawn for that read (access index
  = the data type's read count), as a DRAM read error that does not stick.
* ``stored`` (stored corruption): the new entries are corrupted once, when they are
  written (access index = the data type's write count), in the cache itself; every
  later read sees the same corrupted values. The corruption is undone when the
  emulation ends (the flip logs are kept, O(errors): the clean values come back
  bit-exactly), also for caches that later ``update`` calls have grown by
  concatenation, since the logs are addressed by token position. Under autograd
  (retraining) the errors go into a copy with straight-through gradients instead.

With a ``fixed``-persistence error model the weak cells of an address fail on every
access, so the two semantics differ only in how the draws are keyed (with ``two_level``,
which of those weak cells fail is drawn per access, keyed like ``access``).

**Placement.** The caches take the upper half of the DRAM left after the weights (the
IFMs the lower half); each attention module gets two equal row-aligned slots (K then V,
in model order). Entries are stored token-major: the entry of token position ``p`` (all
sequences of the batch, all KV heads, ``[batch, heads, head_dim]``) is at
``slot + p * entry_bytes``. A cache longer than its slot raises EdenInfeasibleError.

**Layouts.** ``update`` must return 4-D tensors ``[batch, kv_heads, tokens, head_dim]`` whose
last ``new`` tokens are the ones just passed in; anything else is an unknown cache layout
(EdenDataError naming the module). A format other than the cache's own dtype is applied
on the way (quantized, corrupted, decoded); under ``stored`` semantics the clean entries
are then kept aside to be restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from eden.core.validate import Mode
from eden.dram.address import AddressMap
from eden.engine.ops import Injector, finite_range
from eden.errors import EdenDataError, EdenInfeasibleError
from eden.nn.quant import FLOAT_FORMATS

__all__ = ["KVSemantics", "CACHE_KWARGS", "attention_modules", "kv_names", "recording", "kv_datatype_rows",
           "KVCacheEmulation", "semantics_of", "set_semantics"]

CACHE_KWARGS = ("cache", "past_key_values")
"""Keywords under which an attention module receives the KV cache."""
KV_SUFFIXES = ("k_cache", "v_cache")


class KVSemantics(Mode):
    """How errors of the KV cache behave (see the module docstring)."""

    ACCESS = "access"
    STORED = "stored"


def set_semantics(model: nn.Module, semantics: KVSemantics | str) -> None:
    """Make ``semantics`` the KV semantics of every emulation of ``model`` (attribute ``eden_kv_semantics``)."""
    setattr(model, "eden_kv_semantics", KVSemantics.coerce(semantics, "KV cache semantics").value)  # noqa: B010


def semantics_of(model: nn.Module) -> KVSemantics:
    return KVSemantics.coerce(getattr(model, "eden_kv_semantics", KVSemantics.ACCESS.value), "KV cache semantics")


# ------------------------------------------------------------------- discovery
def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with an integer ``layer_idx`` and no descendant that has one, in model order."""
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(getattr(m, "layer_idx", None), int) and not isinstance(m.layer_idx, bool)]
    names = [n for n, _ in found]
    inner = []
    for n, m in found:
        prefix = f"{n}." if n else ""
        if not any(o != n and o.startswith(prefix) for o in names):
            inner.append((n, m))
    return inner


def _qual(module_name: str, leaf: str) -> str:
    return f"{module_name}.{leaf}" if module_name else leaf


def kv_names(module_name: str) -> tuple[str, str]:
    return _qual(module_name, KV_SUFFIXES[0]), _qual(module_name, KV_SUFFIXES[1])


def _layer_table(model: nn.Module) -> dict[int, str]:
    """layer_idx -> attention module name (EdenDataError when two modules share one)."""
    table: dict[int, str] = {}
    for name, mod in attention_modules(model):
        idx = int(getattr(mod, "layer_idx"))  # noqa: B009 (an int, checked by attention_modules)
        if idx in table:
            raise EdenDataError(f"unknown cache layout: attention modules {table[idx]!r} and {name!r} share "
                                f"layer_idx {idx}, so their KV caches cannot be told apart")
        table[idx] = name
    return table


def _cache_of(kwargs: Mapping[str, Any]):
    for key in CACHE_KWARGS:
        c = kwargs.get(key)
        if c is not None:
            return c
    return None


def _check_layout(module: str, key: torch.Tensor, k_all: torch.Tensor, v_all: torch.Tensor) -> None:
    ok = (isinstance(k_all, torch.Tensor) and isinstance(v_all, torch.Tensor) and key.dim() == 4
          and k_all.dim() == 4 and v_all.dim() == 4 and k_all.shape[:2] == key.shape[:2]
          and k_all.shape[-1] == key.shape[-1] and v_all.shape[:3] == k_all.shape[:3]
          and k_all.shape[-2] >= key.shape[-2] and torch.is_floating_point(k_all))
    if not ok:
        got = tuple(getattr(k_all, "shape", ())) if isinstance(k_all, torch.Tensor) else type(k_all).__name__
        raise EdenDataError(f"unknown cache layout in {module!r}: cache.update must return float keys and values "
                            f"[batch, kv_heads, tokens, head_dim] ending with the {tuple(key.shape)} just given; "
                            f"got keys {got}")


class _Wrapped:
    """Wraps ``cache.update`` (an instance attribute, removed again by :meth:`unwrap`)."""

    def __init__(self, cache, on_update: Callable):
        self.cache_ref = weakref.ref(cache)
        self.orig = cache.update
        self.on_update = on_update
        self.states: dict[str, _Stored] = {}  # stored corruption of this cache, per data type

        def update(key, value, layer_idx, *args, **kwargs):
            k_all, v_all = self.orig(key, value, layer_idx, *args, **kwargs)
            return self.on_update(self, key, k_all, v_all, layer_idx)

        cache.update = update

    def unwrap(self) -> None:
        cache = self.cache_ref()
        if cache is not None and "update" in vars(cache):
            del cache.update


def _install(model: nn.Module, table: dict[int, str], on_update: Callable, wrapped: dict[int, _Wrapped]) -> list:
    """Forward pre-hooks on the attention modules that wrap each new cache they receive."""
    hooks = []

    def pre(module, args, kwargs):
        cache = _cache_of(kwargs)
        if cache is None:
            return None
        key = id(cache)
        w = wrapped.get(key)
        if w is None or w.cache_ref() is not cache:
            for k in [k for k, o in wrapped.items() if o.cache_ref() is None]:
                del wrapped[k]  # caches that are gone (their stored tensors went with them)
            if not callable(getattr(cache, "update", None)):
                raise EdenDataError(f"unknown cache layout: the cache given to {table.get(module.layer_idx)!r} "
                                    f"({type(cache).__name__}) has no update(key, value, layer_idx) method")
            wrapped[key] = _Wrapped(cache, on_update)
        return None

    for _, mod in attention_modules(model):
        hooks.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
    return hooks


@contextlib.contextmanager
def recording(model: nn.Module) -> Iterator[dict[str, tuple[int, ...]]]:
    """Within the block, record the shape of every layer's cache as read (last read wins):
    ``{k/v data-type name: (batch, kv_heads, tokens, head_dim)}``."""
    table = _layer_table(model)
    shapes: dict[str, tuple[int, ...]] = {}
    wrapped: dict[int, _Wrapped] = {}

    def on_update(wrapper, key, k_all, v_all, layer_idx):
        module = table.get(layer_idx)
        if module is None:
            raise EdenDataError(f"unknown cache layout: cache.update was called with layer_idx {layer_idx!r}, "
                                f"which no attention module has (known: {sorted(table)})")
        _check_layout(module, key, k_all, v_all)
        kn, vn = kv_names(module)
        shapes[kn], shapes[vn] = tuple(k_all.shape), tuple(v_all.shape)
        return k_all, v_all

    hooks = _install(model, table, on_update, wrapped)
    try:
        yield shapes
    finally:
        for h in hooks:
            h.remove()
        for w in wrapped.values():
            w.unwrap()


def kv_datatype_rows(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, str, int, tuple]]:
    """``(name, attention module, numel, shape)`` of every cache data type, K then V per module,
    with the measured shapes (numel 0 and shape () when not measured)."""
    rows = []
    for mname, _ in attention_modules(model):
        for name in kv_names(mname):
            shape = tuple(shapes.get(name, ()))
            rows.append((name, mname, int(np.prod(shape)) if shape else 0, shape))
    return rows


# ------------------------------------------------------------------- emulation
def _align(n: int, a: int) -> int:
    return -(-n // a) * a


_INT_VIEW = {4: torch.int32, 2: torch.int16, 1: torch.uint8}
_NP_VIEW = {4: np.int32, 2: np.int16, 1: np.uint8}


def _xor_(buf: torch.Tensor, idx: np.ndarray, mask: np.ndarray) -> None:
    """XOR ``mask`` into the words ``idx`` of the contiguous tensor ``buf``."""
    if idx.size == 0:
        return
    size = buf.element_size()
    words = buf.view(-1).view(_INT_VIEW[size])
    i = torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)).to(buf.device)
    m = torch.from_numpy(np.ascontiguousarray(mask).view(_NP_VIEW[size])).to(buf.device)
    words[i] ^= m


def _token_major(t: torch.Tensor) -> torch.Tensor:
    """``[B, H, T, D]`` -> a contiguous ``[T, B, H, D]`` copy (the DRAM order of the entries)."""
    return t.permute(2, 0, 1, 3).contiguous()


def _back(buf: torch.Tensor) -> torch.Tensor:
    """``[T, B, H, D]`` -> a ``[B, H, T, D]`` view."""
    return buf.permute(1, 2, 0, 3)


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, clean, corrupted):
        return corrupted

    @staticmethod
    def backward(ctx, grad):
        return grad, None


@dataclasses.dataclass
class _Stored:
    """Stored corruption of one data type in one cache: what to undo, where."""

    last: Any = None  # weakref to the tensor update() returned last (the stored cache)
    logs: list = dataclasses.field(default_factory=list)  # (start, n, idx, mask) or (start, n, None, clean)


class KVCacheEmulation:
    """The KV-cache part of an emulation (built by ``eden.nn.emulate.Emulation``).

    Args:
        model: the model.
        configs: data-type name -> DataTypeConfig (only the listed cache data types get errors).
        stats: data-type name -> DataTypeStats (updated per injection).
        seed_of: data-type name -> injection seed.
        address_map: the DRAM.
        region: ``(start, end)`` bytes for all caches.
        backend: injection backend.
        semantics: :class:`KVSemantics`.
    """

    def __init__(self, model: nn.Module, configs: Mapping, stats: Mapping, seed_of: Callable[[str], int],
                 address_map: AddressMap, region: tuple[int, int], backend: str, semantics: KVSemantics | str):
        self.model, self.configs, self.stats = model, configs, stats
        self.address_map, self.backend = address_map, backend
        self.semantics = KVSemantics.coerce(semantics, "KV cache semantics")
        self.table = _layer_table(model)
        row = address_map.organization.row_bytes
        names = [n for m in self.table.values() for n in kv_names(m)]
        start, end = region
        slot = ((end - start) // max(1, len(names))) // row * row
        self.slot_bytes = slot
        self.base = {n: start + i * slot for i, n in enumerate(names)}
        self.seeds = {n: seed_of(n) for n in names}
        self.reads = dict.fromkeys(names, 0)
        self.writes = dict.fromkeys(names, 0)
        self._wrapped: dict[int, _Wrapped] = {}
        self._injectors: dict[tuple, Injector] = {}
        self._hooks = _install(model, self.table, self._on_update, self._wrapped)

    @staticmethod
    def region_for(model: nn.Module, start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(IFM region, KV region) of ``[start, end)``: the upper half goes to the caches when the
        model has attention modules, else everything stays with the IFMs."""
        if not attention_modules(model):
            return (start, end), (end, end)
        mid = start + (end - start) // 2
        return (start, mid), (mid, end)

    # ---------------------------------------------------------------- injection
    def _injector(self, name: str, storage: torch.Tensor, base: int, cfg) -> Injector:
        from eden.formats import format_of

        key = (name, storage.dtype, storage.numel(), storage.device.type, base)
        inj = self._injectors.get(key)
        if inj is None:
            if len(self._injectors) >= 256:
                self._injectors.clear()
            inj = self._injectors[key] = Injector(
                cfg.error_model, format_of(storage.dtype), storage.numel() * storage.element_size(),
                seed=self.seeds[name], base_address=base, address_map=self.address_map, correction=cfg.correction,
                backend=self.backend, device=storage.device.type)
        return inj

    def _place(self, name: str, start_token: int, tokens: int, entry_bytes: int) -> int:
        if (start_token + tokens) * entry_bytes > self.slot_bytes:
            raise EdenInfeasibleError(f"{name}: {start_token + tokens} cached tokens of {entry_bytes} bytes each do "
                                      f"not fit its {self.slot_bytes}-byte DRAM slot; use a larger DramOrganization or "
                                      "a smaller batch")
        return self.base[name] + start_token * entry_bytes

    def _corrupt(self, name: str, cfg, buf: torch.Tensor, base: int, access: int):
        """Corrupt the token-major ``buf`` (in its format) in place or via a decoded copy;
        returns (values as read, FlipLog or None, encoded-or-None)."""
        fmt = cfg.format
        same = fmt.is_float and FLOAT_FORMATS[fmt.name] == buf.dtype
        plausible = None if cfg.correction == "none" else cfg.bounds if cfg.bounds is not None else finite_range(buf)
        if same:
            storage, enc = buf, None
        elif fmt.is_float:
            storage, enc = buf.to(FLOAT_FORMATS[fmt.name]).contiguous(), None
        else:
            enc = fmt.encode(buf, channel_axis=None)
            storage = enc.storage
        log = None
        if cfg.error_model is not None:
            inj = self._injector(name, storage, base, cfg)
            log = inj(storage, inj.words(storage), access, plausible)
            st = self.stats[name]
            st.injections += 1
            st.flipped_bits += log.n_bits
            st.bits += log.total_bits
            st.corrected_values += log.n_corrected
        if same:
            return buf, log
        if enc is None:
            return storage.to(buf.dtype), log
        return fmt.decode(dataclasses.replace(enc, storage=storage)).to(buf.dtype).reshape(buf.shape), log

    def _entry_bytes(self, cfg, full: torch.Tensor) -> int:
        b, h, _, d = full.shape
        return _align(cfg.format.storage_bytes(b * h * d), cfg.format.storage.word.itemsize)

    def _on_update(self, wrapper: _Wrapped, key, k_all, v_all, layer_idx):
        module = self.table.get(layer_idx)
        if module is None:
            raise EdenDataError(f"unknown cache layout: cache.update was called with layer_idx {layer_idx!r}, "
                                f"which no attention module has (known: {sorted(self.table)})")
        _check_layout(module, key, k_all, v_all)
        new, total = key.shape[-2], k_all.shape[-2]
        out = []
        for name, full in zip(kv_names(module), (k_all, v_all)):
            cfg = self.configs.get(name)
            if cfg is None or (cfg.error_model is None and cfg.format.is_float
                               and FLOAT_FORMATS[cfg.format.name] == full.dtype):
                out.append(full)  # stored as is, read back exactly
                continue
            entry = self._entry_bytes(cfg, full)
            grad = torch.is_grad_enabled() and full.requires_grad
            if self.semantics is KVSemantics.STORED and not grad:
                self._write(wrapper.states.setdefault(name, _Stored()), name, cfg, full, total - new, new, entry)
                out.append(full)
            else:
                base = self._place(name, 0, total, entry)
                access = self.reads[name]
                self.reads[name] += 1
                with torch.no_grad():
                    buf = _token_major(full.detach())
                    read, _ = self._corrupt(name, cfg, buf, base, access)
                    y = _back(read)
                out.append(_StraightThrough.apply(full, y) if grad else y)
        return out[0], out[1]

    def _write(self, state: _Stored, name: str, cfg, full: torch.Tensor, start: int, n: int, entry: int) -> None:
        """Stored corruption of the ``n`` new entries of ``full`` from token ``start``, in place."""
        base = self._place(name, start, n, entry)
        access = self.writes[name]
        self.writes[name] += 1
        with torch.no_grad():
            view = full[:, :, start:start + n, :]
            buf = _token_major(view)
            clean = None if (cfg.format.is_float and FLOAT_FORMATS[cfg.format.name] == buf.dtype) else buf.clone()
            read, log = self._corrupt(name, cfg, buf, base, access)
            view.copy_(_back(read))
        state.last = weakref.ref(full)
        if clean is not None:
            state.logs.append((start, n, None, clean))
        elif log is not None:
            idx, mask = log.word_flips()
            state.logs.append((start, n, np.asarray(idx), np.asarray(mask)))

    # ---------------------------------------------------------------- restore
    def restore(self) -> None:
        """Undo the stored corruption of every cache still alive, bit-exactly."""
        with torch.no_grad():
            for w in self._wrapped.values():
                for st in w.states.values():
                    full = None if st.last is None else st.last()
                    if full is None:
                        st.logs.clear()
                        continue
                    # a cache made under torch.inference_mode is written back under it
                    mode = torch.inference_mode() if full.is_inference() else contextlib.nullcontext()
                    with mode:
                        self._undo(full, st.logs)
                    st.logs.clear()

    @staticmethod
    def _undo(full: torch.Tensor, logs: list) -> None:
        for start, n, idx, payload in reversed(logs):
            view = full[:, :, start:start + n, :]
            if idx is None:
                view.copy_(_back(payload))
            else:
                buf = _token_major(view)
                _xor_(buf, idx, payload)
                view.copy_(_back(buf))

    def release(self) -> None:
        """Remove the hooks and wrappers; restore stored corruption."""
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        try:
            self.restore()
        finally:
            for w in self._wrapped.values():
                w.unwrap()
            self._wrapped.clear()
