"""`eden inject`, `eden demo`, `eden doctor`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from eden._version import __version__
from eden.cli import main
from eden.cli._common import (atomic_save_npy, ecc_options, error_model_options, fail, mode_choice,
                              resolve_model_choice)
from eden.errors import EdenError, EdenFileError


@main.command()
@click.argument("input_path", metavar="IN.npy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the corrupted array (.npy).")
@error_model_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Device/draw seed.")
@click.option("--access", type=click.IntRange(min=0), default=0, show_default=True,
              help="Access index (per-access persistence redraws errors for each).")
@click.option("--base-address", type=click.IntRange(min=0), default=0, show_default=True,
              help="Byte address of the array in the DRAM partition.")
@click.option("--correction", type=mode_choice("eden.engine.correct", "CorrectionMode"),
              default="none", show_default=True,
              help="Implausible-value correction for float arrays.")
@ecc_options
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def inject(input_path, output_path, error_model, profile, op, seed, access, base_address, correction, ecc,
           ecc_policy, force, as_json):
    """Flip bits of the array in IN.npy as approximate DRAM would; write OUT.npy.

    The error model is --error-model/-m, or the model of a DRAM profile's
    operating point (--profile NAME --op OP).
    """
    import numpy as np

    from eden.engine.ops import inject_

    if output_path.exists() and not force:
        fail(f"{output_path} exists; pass --force to overwrite it")
    choice = resolve_model_choice(error_model, profile, op)
    model = choice.model
    try:
        array = np.load(input_path, allow_pickle=False)
    except (ValueError, OSError) as exc:  # unreadable, pickled objects, not .npy
        raise EdenFileError(input_path, "/", f"cannot be read as a .npy array: {exc}") from None
    array = np.ascontiguousarray(array)
    try:
        log = inject_(array, model, seed=seed, access=access, base_address=base_address, correction=correction,
                      address_map=choice.address_map(), ecc=ecc, ecc_policy=ecc_policy)
    except EdenError as exc:  # name the array the error is about
        fail(f"{input_path}: {exc}")
    atomic_save_npy(output_path, array, force)
    summary = {
        "input": str(input_path), "output": str(output_path), "model": str(model), "seed": seed,
        "access": access, "dtype": str(array.dtype), "elements": int(array.size),
        "bits": log.total_bits, "flipped_bits": log.n_bits, "words_changed": log.n_words,
        "realized_ber": log.ber, "expected_ber": model.expected_ber(), "corrected_values": log.n_corrected,
    }
    summary["ecc"] = ecc
    if log.ecc is not None:
        summary.update({k: v for k, v in log.ecc.to_dict().items() if k != "code"})
    if choice.profile is not None:
        summary.update({k: v for k, v in choice.to_dict().items() if k != "model"})
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"{output_path}: flipped {log.n_bits} of {log.total_bits} bits in {log.n_words} "
                   f"{array.dtype} values (BER {log.ber:.3g}, model expects {model.expected_ber():.3g}); "
                   f"corrected {log.n_corrected}; seed {seed}, access {access}, {choice.describe()}")
        if log.ecc is not None:
            e = log.ecc
            click.echo(f"ECC {ecc}: {e.codewords} codewords, {e.raw_bit_errors} raw bit errors (data and check "
                       f"bits) in {e.codewords_with_errors}: corrected {e.corrected}, detected {e.detected}, "
                       f"miscorrected {e.miscorrected}, undetected {e.undetected}; post-ECC BER "
                       f"{e.post_ecc_ber:.3g}, SDC {e.sdc_rate:.3g} and DUE {e.due_rate:.3g} per codeword")


@main.command()
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--ber", type=click.FloatRange(min=0, max=1, min_open=True), default=1e-3, show_default=True,
              help="Expected BER each error model is scaled to.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo(seed, ber, as_json):
    """Inject every error model into a real layer's weights in every format, then undo."""
    from eden.workflows.demo import run_demo

    rows = run_demo(seed=seed, ber=ber)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from eden.workflows.demo import format_table

    click.echo(format_table(rows))


@main.command()
def doctor():
    """Print versions and backend status; check the CPU kernel against the NumPy oracle."""
    import numpy as np
    import torch

    click.echo(f"eden {__version__}, python {sys.version.split()[0]}, torch {torch.__version__}, "
               f"numpy {np.__version__}")
    try:
        import numba

        click.echo(f"numba {numba.__version__} ({numba.get_num_threads()} threads)")
    except ImportError:
        click.echo("numba: missing (pip install numba); the slow NumPy oracle will be used")
    from eden.engine.contract import registered_backends
    from eden.engine.ops import inject_

    # Every registered backend against the NumPy oracle, on the same array, seed and error model.
    spec = "em0:p=1e-2+em3:p10=1e-2,p01=1e-3"
    clean = np.random.default_rng(0).standard_normal(1 << 14).astype(np.float32)
    oracle = clean.copy()
    inject_(oracle, spec, seed=1, backend="reference")
    mismatch = False
    for be in registered_backends():
        if be.name == "reference":
            continue
        try:
            be.require()
            if be.device == "cpu":
                got = clean.copy()
                inject_(got, spec, seed=1, backend=be.name)
            else:
                t = torch.from_numpy(clean.copy()).to(be.device)
                inject_(t, spec, seed=1, backend=be.name)
                got = t.cpu().numpy()
        except Exception as exc:  # report, do not crash: doctor is a diagnostic (no GPU, no CuPy, ...)
            click.echo(f"{be.name} ({be.device}): not available here: {exc}")
            continue
        same = np.array_equal(got.view(np.uint32), oracle.view(np.uint32))
        mismatch |= not same
        click.echo(f"{be.name} kernel ({be.device}) vs NumPy oracle: {'bit-identical' if same else 'MISMATCH'}")
    if mismatch:
        sys.exit(1)


