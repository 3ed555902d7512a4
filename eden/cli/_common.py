"""Shared pieces of the command line: the error boundary, DNN and error-model options, atomic outputs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from eden.errors import EdenConfigError, EdenError


class EdenGroup(click.Group):
    """The root command group and eden's one error boundary.

    An :class:`eden.errors.EdenError` (bad input: a spec, a file, data that do not fit) raised by
    any command becomes a one-line ``Error: ...`` message with exit status 1, like :func:`fail`.
    Every other exception is a bug and propagates with its traceback; click's usage errors keep
    their own handling (exit 2).
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdenError as exc:
            raise click.ClickException(str(exc)) from exc


class LazyChoice(click.Choice):
    """A ``click.Choice`` whose names come from a registry or a mode enum, read when needed.

    ``names`` is called each time click needs the choices (help, conversion), so the library
    module holding the registry is imported only by the commands that use it (``import eden.cli``
    stays light) and names registered later are offered too.

    Example::

        def _policies():
            from eden.workflows.mapping import MAPPING_POLICIES
            return sorted(MAPPING_POLICIES)

        click.option("--policy", type=LazyChoice(_policies), default="milp")
    """

    def __init__(self, names: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        # click.Choice.__init__ would store a fixed tuple; ``choices`` is a property here instead.
        self._names = names
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(str(n) for n in self._names())

    @choices.setter
    def choices(self, value: Iterable[Any]) -> None:
        # click.Choice's ``choices`` is a writable attribute: assigning fixes the names, as click would.
        fixed = tuple(value)
        self._names = lambda: fixed


def mode_choice(module: str, enum_name: str) -> LazyChoice:
    """Choices from a mode enum (``eden.core.validate.Mode``) of ``module``, imported when a command needs
    them: a new member is offered with no CLI edit, and ``import eden.cli`` stays light."""

    def names() -> tuple[str, ...]:
        import importlib

        return getattr(importlib.import_module(module), enum_name).values()

    return LazyChoice(names)


def mapping_policies() -> list[str]:
    """The registered mapping policies (``eden.workflows.mapping.MAPPING_POLICIES``), for --policy."""
    from eden.workflows.mapping import MAPPING_POLICIES

    return sorted(MAPPING_POLICIES)


def fail(message: str) -> None:
    """Stop with a one-line error message (exit status 1)."""
    raise click.ClickException(message)


def load_error_model(spec: str, param_hint: str = "--error-model"):
    """An ErrorModel from a spec string or an HDF5 file, or a BadParameter (exit 2)."""
    from eden.errormodels.model import ErrorModel

    try:
        return ErrorModel.coerce(spec)
    except EdenError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


# ------------------------------------------------------------------ DNN model and data
def model_options(f):
    """Add --model/--weights/--data/--batch-size/--device, shared by every DNN command.

    The command receives ``model_spec``, ``weights``, ``data_spec``, ``batch_size`` and ``device``
    and passes them to :func:`build_model_and_data`.
    """
    options = [
        click.option("--model", "model_spec", default="digits-lenet", show_default=True,
                     help="Bundled model name (digits-lenet, tiny-lm, ...), hf:DIR (a local Hugging Face causal "
                          "LM), torchvision:NAME, or package.module:factory returning an nn.Module."),
        click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="State dict (.pt) to load into the model."),
        click.option("--data", "data_spec", default="digits", show_default=True,
                     help="Bundled dataset name (digits, pydoc-topics), text:FILE[:N] (a local text file in windows "
                          "of N tokens, tokenized by the model), or package.module:factory returning a DataLoader."),
        click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True,
                     help="Evaluation batch size (bundled data only)."),
        click.option("--device", default=None, help="torch device (default: cuda if available, else cpu)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def build_model_and_data(model_spec: str, weights: Path | None, data_spec: str, batch_size: int,
                         device: str | None):
    """(model on the device, model id, test-split loader, torch.device) from the options of :func:`model_options`.

    Bad specs, weights or data raise :class:`eden.errors.EdenError` (one-line message at the boundary).
    """
    import torch

    from eden.nn import zoo

    model, model_id = zoo.build_model(model_spec, weights)
    loader = zoo.build_data(data_spec, split="test", batch_size=batch_size, model=model)
    try:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as exc:  # torch's own message names the device string it cannot parse
        raise EdenConfigError(f"--device {device!r}: {exc}") from None
    return model.to(dev), model_id, loader, dev


# ------------------------------------------------------------------ error model or DRAM profile
def error_model_options(f):
    """Add ``--error-model/-m SPEC|FILE.h5``, ``--profile NAME|FILE.json`` and ``--op SPEC``.

    The command receives them as ``error_model``, ``profile`` and ``op`` (strings
    or None) and turns them into a model with :func:`resolve_error_model` (or
    :func:`resolve_model_choice` to also know the profile and operating point).
    None of the three is required by click: the resolver reports what is missing.

    Example::

        @main.command()
        @error_model_options
        def cmd(error_model, profile, op):
            model = resolve_error_model(error_model, profile, op)
    """
    f = click.option("--op", "op", metavar="OP",
                     help='Operating point of --profile: a name ("nominal", "vdd-1.100") or '
                          '"vdd=1.1", "trcd=10", "vdd=1.1,trcd=10" (omitted keys: nominal).')(f)
    f = click.option("--profile", "profile", metavar="NAME|FILE.json",
                     help="DRAM profile (a preset from `eden profiles list` or a .json file); needs --op.")(f)
    f = click.option("--error-model", "-m", "error_model", metavar="SPEC|FILE.h5",
                     help='Error model: a spec like "em0:p=1e-4" or an HDF5 model file '
                          "(or give --profile and --op instead).")(f)
    return f


def ecc_codes() -> tuple[str, ...]:
    """``none`` and the registered ECC codes (``eden.engine.ecc``), for --ecc."""
    from eden.engine.ecc import code_names

    return code_names()


def ecc_option(f):
    """Add ``--ecc none|secded72|ondie136|...`` (received as ``ecc``): the code applied per codeword
    after raw injection (docs/ecc.md); detected, uncorrectable errors are left as read."""
    return click.option("--ecc", "ecc", type=LazyChoice(ecc_codes), default="none", show_default=True,
                        help="ECC applied per codeword after raw injection (raw errors over data and check "
                             "bits); BERs are raw BERs.")(f)


def ecc_options(f):
    """:func:`ecc_option` and ``--ecc-policy leave|zero`` (received as ``ecc_policy``)."""
    f = click.option("--ecc-policy", "ecc_policy", type=mode_choice("eden.engine.ecc.base", "DuePolicy"),
                     default="leave", show_default=True,
                     help="Data of a codeword with a detected, uncorrectable error: left as read, or zeroed.")(f)
    return ecc_option(f)


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """The resolved error model and, when it came from a profile, the profile and operating point."""

    model: Any
    profile: Any = None
    op: Any = None
    spec: str | None = None

    def describe(self) -> str:
        if self.profile is None:
            return f"model {self.model}"
        return f"profile {self.profile.name}, operating point {self.op.describe()}, model {self.model}"

    def address_map(self):
        """The profile's geometry as an AddressMap (None without a profile: eden's default)."""
        if self.profile is None:
            return None
        from eden.dram.address import AddressMap

        return AddressMap(self.profile.organization.to_address())

    def to_dict(self) -> dict:
        d = {"model": str(self.model)}
        if self.profile is not None:
            d.update({"profile": self.profile.name, "profile_file": self.profile.path, "op": self.op.name,
                      "vdd_v": self.op.vdd_v, "trcd_ns": self.op.trcd_ns, "op_ber": self.op.ber})
        return d


def load_profile_or_fail(profile: str, param_hint: str = "--profile", overrides=None):
    """A DramProfile by preset name or file, or a BadParameter (exit 2) naming file and field."""
    from eden.dram.profiles import ProfileError, UnknownProfileError, load_profile

    try:
        return load_profile(profile, overrides)
    except (UnknownProfileError, ProfileError) as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def resolve_model_choice(error_model: str | None, profile: str | None, op: str | None, *,
                         required: bool = True) -> ModelChoice | None:
    """The model the options of :func:`error_model_options` select.

    Raises:
        click.BadParameter (exit 2): both ``--error-model`` and ``--profile``,
            ``--op`` without ``--profile``, ``--profile`` without ``--op`` (lists
            the operating points), neither when ``required``, or any bad model,
            profile or operating point (the message names file and field).
    """
    from eden.dram.profiles import ProfileError

    if error_model is not None and (profile is not None or op is not None):
        raise click.BadParameter("give either --error-model/-m or --profile with --op, not both",
                                 param_hint="--error-model")
    if op is not None and profile is None:
        raise click.BadParameter("--op selects an operating point of a DRAM profile: give --profile too "
                                 "(see `eden profiles list`)", param_hint="--op")
    if error_model is not None:
        return ModelChoice(load_error_model(error_model), spec=error_model)
    if profile is None:
        if required:
            raise click.BadParameter("give an error model: --error-model/-m SPEC|FILE.h5, or --profile NAME "
                                     "with --op OP", param_hint="--error-model")
        return None
    prof = load_profile_or_fail(profile)
    if op is None:
        raise click.BadParameter(f"--profile {profile} needs --op; its operating points: "
                                 f"{', '.join(prof.op_names)}", param_hint="--op")
    try:
        point = prof.operating_point(op)
        model = prof.error_model(point)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--op") from None
    return ModelChoice(model, prof, point)


def resolve_error_model(error_model: str | None, profile: str | None, op: str | None, *,
                        required: bool = True):
    """The ErrorModel the options of :func:`error_model_options` select (None if not required and absent)."""
    choice = resolve_model_choice(error_model, profile, op, required=required)
    return None if choice is None else choice.model


def atomic_save_npy(path: Path, array, force: bool) -> None:
    """Write an .npy file atomically; refuse to replace an existing file unless force."""
    import numpy as np

    from eden.core.io import write_with

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            np.save(fh, array, allow_pickle=False)

    try:
        write_with(path, write, overwrite=force, what="output file")
    except FileExistsError:  # appeared after the command's own check
        fail(f"{path} exists; pass --force to overwrite it")


# ------------------------------------------------------------ metadata errors (block formats)
def metadata_errors_option(f):
    """``--no-metadata-errors``: keep the metadata a block format stores in DRAM error-free."""
    return click.option("--no-metadata-errors", "no_metadata_errors", is_flag=True,
                        help="Keep the scales (and zero points) that group-wise and MX formats store in DRAM "
                             "error-free: they keep their place, their bits take no errors (the metadata's share "
                             "of the damage).")(f)


def apply_metadata_errors(fmt: str, no_metadata_errors: bool) -> str:
    """``fmt`` with ``no-metadata-errors`` when the flag is given.

    Raises:
        click.BadParameter: the flag with a format that keeps no metadata in DRAM.
    """
    if not no_metadata_errors:
        return fmt
    from eden.nn.quant import NumericFormat

    nf = NumericFormat.parse(fmt)
    if nf.codec is None:
        raise click.BadParameter(f"{fmt} keeps no metadata in DRAM (group-wise ':group=G' and MX formats do)",
                                 param_hint="--no-metadata-errors")
    return str(nf.without_metadata_errors())


# ------------------------------------------------------------------ executors (local, Ray)
def _executors() -> tuple[str, ...]:
    from eden.workflows.executor import EXECUTORS

    return EXECUTORS.names()


def executor_options(f):
    """Add ``--executor/--workers/--address/--gpus-per-worker`` (where a sweep's evaluations run).

    The command receives ``executor``, ``workers``, ``address`` and ``gpus_per_worker`` and turns them
    into an executor with :func:`executor_from_options`.
    """
    options = [
        click.option("--executor", type=LazyChoice(_executors), default="local", show_default=True,
                     help='Where the evaluations run: this process, or a Ray cluster (pip install "eden-dram[ray]"). '
                          "The results are the same."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Ray workers (default: the cluster's GPUs, else its CPUs)."),
        click.option("--address", default=None, metavar="HOST:PORT",
                     help="A running Ray cluster (`ray start --head` prints it; ray://HOST:PORT, auto). Default: "
                          "start one on this machine."),
        click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=None,
                     help="GPUs per Ray worker (default: 1 when the cluster has GPUs, else 0)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def executor_from_options(executor: str, workers: int | None, address: str | None, gpus_per_worker: float | None):
    """The executor the options of :func:`executor_options` select (a context manager: it closes what it started).

    Raises:
        click.BadParameter (exit 2): ``--workers``, ``--address`` or ``--gpus-per-worker`` with ``--executor local``.
    """
    from eden.workflows.executor import make_executor

    if executor == "local":
        for name, value in (("--workers", workers not in (None, 1)), ("--address", address is not None),
                            ("--gpus-per-worker", gpus_per_worker is not None)):
            if value:
                raise click.BadParameter(f"{name} belongs to --executor ray (local runs one evaluation at a time "
                                         "in this process)", param_hint=name)
    return make_executor(executor, workers=workers, address=address, gpus_per_worker=gpus_per_worker)
