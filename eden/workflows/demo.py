"""The bundled demo: every error model, every storage format, one real layer.

The tensor is the weight of a freshly initialised ``torch.nn.Conv2d(64, 128, 3)``
(Kaiming-uniform init, seeded), stored as fp32, fp16, bf16, int8 and packed int4
(symmetric per-tensor quantization). Each error model is scaled to the same
expected BER; the demo injects, measures the damage, undoes and checks that the
weights are restored bit-exactly.
"""

from __future__ import annotations

import numpy as np

#: Error-model shapes; each is scaled to the demo's expected BER with at_ber().
DEMO_MODELS = {
    "em0 uniform": "em0:p=1e-3",
    "em1 weak bitlines": "em1:fraction=0.01,p=0.1",
    "em2 weak wordlines": "em2:fraction=0.5,p=0.01",
    "em3 data-dependent": "em3:p10=1e-3,p01=1e-4",
}


def _layer_weight(seed: int):
    import torch

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        conv = torch.nn.Conv2d(64, 128, 3)
    finally:
        torch.random.set_rng_state(gen_state)
    return conv.weight.detach().contiguous()


def _quantize(w, bits: int):
    qmax = 2 ** (bits - 1) - 1
    scale = float(w.abs().max()) / qmax
    codes = np.clip(np.round(w.numpy() / scale), -qmax, qmax).astype(np.int8)
    return codes, scale


def run_demo(seed: int = 0, ber: float = 1e-3) -> list[dict]:
    """Inject each demo model into each format; returns one row per (model, format)."""
    import torch

    from eden.engine.ops import inject_
    from eden.errormodels.model import ErrorModel
    from eden.formats import pack_int4, unpack_int4

    w = _layer_weight(seed)
    ref = w.numpy().ravel()
    codes8, s8 = _quantize(w, 8)
    codes4, s4 = _quantize(w, 4)
    stores = {
        "fp32": (lambda: w.clone(), lambda t: t.numpy().ravel().copy()),
        "fp32+clamp": (lambda: w.clone(), lambda t: t.numpy().ravel().copy()),
        "fp16": (lambda: w.half(), lambda t: t.float().numpy().ravel()),
        "bf16": (lambda: w.bfloat16(), lambda t: t.float().numpy().ravel()),
        "int8": (lambda: torch.from_numpy(codes8.copy()), lambda t: t.numpy().astype(np.float32).ravel() * s8),
        "int4": (lambda: torch.from_numpy(pack_int4(codes4)),
                 lambda t: unpack_int4(t.numpy()).astype(np.float32) * s4),
    }
    rows = []
    for label, spec in DEMO_MODELS.items():
        model = ErrorModel.from_spec(spec).at_ber(ber)
        for fmt, (make, decode) in stores.items():
            t = make()
            clean_bytes = t.view(torch.uint8).numpy().tobytes()
            clean_vals = decode(t)
            log = inject_(t, model, seed=seed, correction="clamp" if fmt == "fp32+clamp" else None)
            vals = decode(t)
            with np.errstate(invalid="ignore", over="ignore"):
                err = np.abs(vals.astype(np.float64) - clean_vals.astype(np.float64))
            finite = np.isfinite(err)
            log.undo()
            restored = t.view(torch.uint8).numpy().tobytes() == clean_bytes
            rows.append({
                "model": label, "spec": model.to_spec(), "format": fmt, "values": int(ref.size),
                "bits": log.total_bits, "flipped_bits": log.n_error_bits,
                "realized_ber": log.n_error_bits / log.total_bits,
                "expected_ber": model.expected_ber(), "values_changed": log.n_words if fmt != "int4" else
                int(np.count_nonzero(err)),
                "non_finite": int((~finite).sum()),
                "max_abs_error": float(err[finite].max()) if finite.any() else 0.0,
                "corrected": log.n_corrected, "restored_bit_exact": bool(restored),
            })
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'model':20s} {'format':11s} {'flipped':>8s} {'BER':>9s} {'expected':>9s} "
            f"{'changed':>8s} {'NaN/Inf':>7s} {'max|err|':>10s} {'fixed':>6s}  undo")
    lines = [f"Weights of Conv2d(64, 128, 3): {rows[0]['values']} values; each model scaled to "
             f"BER {rows[0]['expected_ber']:.3g}", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:20s} {r['format']:11s} {r['flipped_bits']:8d} {r['realized_ber']:9.3g} "
                     f"{r['expected_ber']:9.3g} {r['values_changed']:8d} {r['non_finite']:7d} "
                     f"{r['max_abs_error']:10.3g} {r['corrected']:6d}  "
                     f"{'bit-exact' if r['restored_bit_exact'] else 'FAILED'}")
    return "\n".join(lines)
