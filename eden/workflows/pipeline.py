"""`eden run`: the whole EDEN pipeline on one model and one DRAM profile, resumable.

Stages (each writes its result into the run directory atomically; a rerun with
the same settings skips every finished stage, so an interrupted run resumes
from the last finished one):

1. ``clean``            clean accuracy of the model
2. ``tolerance_before`` fine-grained characterization (+ coarse) -> tolerance_before.json
3. ``retrain``          curricular retraining to ``retrain_gain`` x the coarse tolerable BER
                        -> retrained.pt, retrain_report.json (checkpoint: retrain.ckpt)
4. ``tolerance_after``  characterization of the retrained model -> tolerance_after.json
5. ``map_baseline``     mapping of the original model, validated by emulation -> mapping_baseline.json
6. ``map_retrained``    mapping of the retrained model, validated by emulation -> mapping.json
7. ``pareto``           energy saving vs validated accuracy for several accuracy targets -> pareto.json
8. ``report``           summary.json, report.md and plots

``run.json`` records the settings; a run directory made with other settings is
refused (choose another directory or pass ``restart=True`` to start it over).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from eden._version import __version__
from eden.core.io import write_json, write_text
from eden.core.validate import check_int, check_number
from eden.engine.correct import CorrectionMode
from eden.errors import EdenConfigError, EdenDataError, EdenFileError
from eden.nn.quant import NumericFormat
from eden.workflows.retrain import Schedule

STAGES = ("clean", "tolerance_before", "retrain", "tolerance_after", "map_baseline", "map_retrained", "pareto",
          "report")
PARETO_TARGETS_PP = (0.5, 1.0, 2.0, 5.0)
RUN_FORMAT = "eden-run"

# EDEN (Koppula et al., MICRO 2019), reported averages, for context only: a different device and workload.
EDEN_PUBLISHED = {"dram_energy_saving_cpu": 0.21, "dram_energy_saving_gpu": 0.37, "speedup_cpu": 0.08}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of an ``eden run`` (all recorded in run.json)."""

    model: str = "digits-lenet"
    data: str = "digits"
    # One vendor's chain (a device that exists), not the pooled average of three vendors: vendor C's
    # BER grows step by step with falling VDD, so a more tolerant (retrained) model reaches deeper points.
    profile: str = "ddr4-2400-8gb-x8-vendor-c"
    error_model: str = "profile"  # "profile": the shape of the profile's error models; or a spec/file
    format: str = "fp32"
    correction: str = "zero"
    target_drop_pp: float = 1.0
    seeds: int = 5
    resolution_decades: float = 0.1
    retrain_epochs: int = 60
    retrain_gain: float = 10.0
    retrain_schedule: str = "geometric"
    retrain_lr: float = 3e-3
    retrain_batch_size: int = 32
    policy: str = "milp"
    inference_batch: int = 1
    memory_bound_fraction: float = 0.5
    alpha: float = 1.0
    seed: int = 0
    eval_batch_size: int = 512
    workload: str = "inference"  # or "generation": a language model's prefill + decode steps (per-token energy)
    prompt_tokens: int = 64
    new_tokens: int = 64
    decode_memory_bound_fraction: float = 0.9
    # ECC of the memory (eden.engine.ecc): characterization, retraining and validation all inject post-ECC
    # errors (BERs are raw, before ECC); the mapping's energy includes the check bits (eden.power.ecc)
    ecc: str = "none"
    # The correction's plausible range (eden.workflows.characterize.CorrectionBounds): each data type's
    # range calibrated in advance on the first calibration_batches batches of the train split (what a
    # deployed system has; the default when there is a correction), or each IFM's own per-batch
    # min/max; stored in the tolerance records and used by their mappings' validation. None: calibrated
    # with a correction, batch (no range at all is used) without one.
    correction_bounds: str | None = None
    calibration_batches: int = 4

    def __post_init__(self):
        check_number("target_drop_pp", self.target_drop_pp, lo=0.0, hi=100.0, lo_open=True, hi_open=True)
        check_int("seeds", self.seeds, lo=1)
        check_int("retrain_epochs (a ramp and the target)", self.retrain_epochs, lo=2)
        check_number("retrain_gain", self.retrain_gain, lo=1.0, lo_open=True)
        check_int("retrain_batch_size", self.retrain_batch_size, lo=1)
        # Names that stage 1 would only meet after minutes of work are checked now.
        NumericFormat.parse(self.format)
        CorrectionMode.coerce(self.correction, "correction")
        from eden.workflows.characterize import CorrectionBounds

        if self.correction_bounds is None:
            object.__setattr__(self, "correction_bounds", "batch" if self.correction == "none" else "calibrated")
        bounds = CorrectionBounds.coerce(self.correction_bounds, "correction_bounds")
        object.__setattr__(self, "correction_bounds", bounds.value)
        if bounds is CorrectionBounds.CALIBRATED and self.correction == "none":
            raise EdenConfigError("correction_bounds 'calibrated' is the range of a correction: set correction "
                                  "to zero or clamp")
        check_int("calibration_batches", self.calibration_batches, lo=1)
        Schedule.coerce(self.retrain_schedule, "retrain_schedule")
        from eden.workflows.deploy import Workload

        Workload.coerce(self.workload, "workload")
        if self.ecc != "none":
            from eden.engine.ecc import get_code

            get_code(self.ecc)  # an unknown code fails now, naming the known ones


def config_dict(cfg: RunConfig) -> dict:
    """The settings as recorded (run.json, summary.json); without ECC and with per-batch bounds the keys runs
    always had."""
    d = dataclasses.asdict(cfg)
    if d["ecc"] == "none":
        del d["ecc"]
    if d["correction_bounds"] == "batch":  # (and the calibration set size, which then plays no part)
        del d["correction_bounds"], d["calibration_batches"]
    return d


def shape_model(cfg: RunConfig, profile):
    """The error-model shape characterization and retraining scale: the profile's, or the given one.

    For ``"profile"``: the model of the reduced-VDD operating point with the
    highest BER below 1e-2 (the points characterization can use); failing that,
    any point with errors.
    """
    from eden.errormodels.model import ErrorModel

    if cfg.error_model != "profile":
        return ErrorModel.coerce(cfg.error_model), cfg.error_model
    ops = [op for op in profile.operating_points if 0 < op.ber < 1e-2]
    if not ops:
        ops = [op for op in profile.operating_points if op.ber > 0]
    if not ops:
        raise EdenConfigError(f"profile {profile.name} has no operating point with errors; give an error model")
    vdd_ops = [op for op in ops if op.vdd_v < profile.nominal.vdd_v]
    op = max(vdd_ops or ops, key=lambda o: o.ber)
    return profile.error_model(op), f"{profile.name}:{op.name}"


@dataclasses.dataclass
class _Inputs:
    """What every stage reads: the profile, the error-model shape, the model, its data, the seeds."""

    profile: object
    em: object
    em_label: str
    device: torch.device
    model: torch.nn.Module
    model_id: str
    loader: Iterable[Any]
    seeds: list[int]


class Run:
    """A run directory with its stages (see module docstring).

    :meth:`execute` runs the stages in order; each ``_stage_*`` method does one stage, or, when
    its marker says it finished, reads its result back from the run directory.
    """

    def __init__(self, run_dir: str | Path, cfg: RunConfig, *, restart: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print, executor=None):
        from eden.workflows.executor import make_executor

        # Where characterization and validation evaluate (not a setting of the run: the results are the
        # same on every executor, so a run started on one resumes on another).
        self.executor = make_executor(executor)
        self._own_executor = self.executor is not executor
        self.dir = Path(run_dir)
        self.cfg = cfg
        self.progress = progress
        self.log = log
        meta: dict[str, Any] = {"format": RUN_FORMAT, "format_version": 1, "config": config_dict(cfg)}
        run_json = self.dir / "run.json"
        if run_json.exists() and restart:
            shutil.rmtree(self.dir)
        if run_json.exists():
            try:
                old = json.loads(run_json.read_text())
            except ValueError as exc:
                raise EdenFileError(run_json, "/", f"unreadable ({exc}); remove the run directory or pass "
                                    "--restart") from None
            if old.get("config") != meta["config"]:
                diff = sorted(k for k in set(meta["config"]) | set(old.get("config", {}))
                              if old.get("config", {}).get(k) != meta["config"].get(k))
                raise EdenConfigError(f"run directory {self.dir} holds a run with other settings (differs in "
                                      f"{', '.join(diff)}); use another --run-dir, or --restart to discard it")
        elif self.dir.exists() and any(self.dir.iterdir()):
            raise EdenConfigError(f"{self.dir} exists and is not an eden run directory; choose another --run-dir")
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            meta["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            meta["eden_version"] = __version__
            write_json(run_json, meta, what="run file")

    def path(self, name: str) -> Path:
        return self.dir / name

    def stage_done(self, name: str) -> bool:
        return self.path(f"{name}.done.json").exists()

    def finish_stage(self, name: str, info: dict) -> None:
        write_json(self.path(f"{name}.done.json"), info, overwrite=True, what="stage marker")

    def stage_info(self, name: str) -> dict:
        return json.loads(self.path(f"{name}.done.json").read_text())

    def _begin(self, name: str) -> bool:
        """Log the stage; True when it already finished (its outputs are in the run directory)."""
        done = self.stage_done(name)
        self.log(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}"
                 f"{' (done, resumed from the run directory)' if done else ''}")
        return done

    # ------------------------------------------------------------------ stages
    def execute(self) -> dict:
        """Run every stage not yet finished, in order; returns the summary (see :func:`summarize`)."""
        try:
            return self._execute()
        finally:
            if self._own_executor:
                self.executor.close()

    def _execute(self) -> dict:
        inputs = self._inputs()
        clean = self._stage_clean(inputs)
        tol_before = self._stage_tolerance(inputs, "tolerance_before", inputs.model, inputs.model_id)
        retrained = self._stage_retrain(inputs, tol_before)
        tol_after = self._stage_tolerance(inputs, "tolerance_after", retrained, f"{inputs.model_id}+retrained")
        map_base = self._stage_mapping(inputs, "map_baseline", tol_before, inputs.model, "mapping_baseline.json")
        map_re = self._stage_mapping(inputs, "map_retrained", tol_after, retrained, "mapping.json")
        map_re["pareto"] = self._stage_pareto(inputs, tol_after, retrained)
        return self._stage_report(clean, tol_before, tol_after, map_base, map_re, inputs.em_label)

    def _inputs(self) -> _Inputs:
        from eden.dram.profiles import load_profile
        from eden.nn import zoo

        cfg = self.cfg
        profile = load_profile(cfg.profile)
        em, em_label = shape_model(cfg, profile)
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model, model_id = zoo.build_model(cfg.model)
        loader = zoo.build_data(cfg.data, "test", cfg.eval_batch_size, model=model)
        return _Inputs(profile, em, em_label, dev, model.to(dev), model_id, loader, list(range(cfg.seeds)))

    def _deploy_options(self):
        from eden.workflows.deploy import DeployOptions

        cfg = self.cfg
        return DeployOptions(policy=cfg.policy, batch_size=cfg.inference_batch, alpha=cfg.alpha,
                             memory_bound_fraction=cfg.memory_bound_fraction, workload=cfg.workload,
                             prompt_tokens=cfg.prompt_tokens, new_tokens=cfg.new_tokens,
                             decode_memory_bound_fraction=cfg.decode_memory_bound_fraction, ecc=cfg.ecc)

    def _stage_clean(self, inputs: _Inputs) -> dict:
        """1. Clean accuracy of the model -> clean.done.json."""
        from eden.nn import zoo
        from eden.nn.evaluate import evaluate

        if not self._begin("clean"):
            acc = evaluate(inputs.model, inputs.loader, device=inputs.device)
            self.finish_stage("clean", {"accuracy": acc, "model": inputs.model_id,
                                        "fingerprint": zoo.fingerprint(inputs.model)})
        return self.stage_info("clean")

    def _stage_tolerance(self, inputs: _Inputs, name: str, net, model_id: str) -> dict:
        """2 and 4. Fine-grained (and coarse) characterization -> ``name``.json and .png."""
        from eden.workflows.characterize import characterize, load_tolerance, plot_tolerance, save_tolerance

        cfg = self.cfg
        out, partial = self.path(f"{name}.json"), self.path(f"{name}.partial.json")
        if not self._begin(name):
            calibration = None
            if cfg.correction_bounds == "calibrated":  # profiled on this network (the retrained one: after training)
                from eden.nn import zoo

                calibration = zoo.build_data(cfg.data, "train", cfg.eval_batch_size, model=net)
            rec = characterize(net, inputs.loader, inputs.em, format=cfg.format, correction=cfg.correction,
                               mode="both", target_drop_pp=cfg.target_drop_pp, seeds=inputs.seeds,
                               resolution_decades=cfg.resolution_decades, model_id=model_id, data_id=cfg.data,
                               cache_path=partial, progress=self.progress, device=inputs.device,
                               executor=self.executor, ecc=cfg.ecc, correction_bounds=cfg.correction_bounds or "batch",
                               calibration_loader=calibration, calibration_batches=cfg.calibration_batches)
            rec["error_model_label"] = inputs.em_label
            save_tolerance(rec, out, overwrite=True)
            plot_tolerance(rec, self.path(f"{name}.png"), overwrite=True)
            self.finish_stage(name, {"coarse_tolerable_ber": rec["coarse"]["tolerable_ber"]})
            if partial.exists():
                partial.unlink()
        return load_tolerance(out)

    def _stage_retrain(self, inputs: _Inputs, tol_before: dict):
        """3. Retraining to ``retrain_gain`` x the coarse tolerable BER -> retrained.pt (resumable).

        Returns the retrained model (eval mode), read back from retrained.pt either way.
        """
        from eden.nn import zoo

        cfg = self.cfg
        retrained = zoo.build_model(cfg.model)[0].to(inputs.device)
        if not self._begin("retrain"):
            from eden.workflows.retrain import RetrainConfig, retrain, save_report, save_weights

            target = min(0.5, cfg.retrain_gain * tol_before["coarse"]["tolerable_ber"])
            if target <= 0:
                raise EdenDataError("the model tolerates no errors at all before retraining (coarse tolerable "
                                    "BER 0); retraining has no curriculum to start from")
            rcfg = RetrainConfig(error_model=inputs.em, target_ber=target, format=cfg.format,
                                 correction=cfg.correction, epochs=cfg.retrain_epochs,
                                 schedule=cfg.retrain_schedule, lr=cfg.retrain_lr,
                                 batch_size=cfg.retrain_batch_size, seed=cfg.seed, ecc=cfg.ecc)
            train = zoo.build_data(cfg.data, "train", 64, model=retrained)
            res = retrain(retrained, train, inputs.loader, rcfg, tolerance=None,
                          checkpoint=self.path("retrain.ckpt"), resume=True, model_id=inputs.model_id,
                          data_id=cfg.data, progress=self.progress, device=inputs.device)
            save_weights(res.model, self.path("retrained.pt"), overwrite=True)
            save_report(res.report, self.path("retrain_report.json"), overwrite=True)
            self.finish_stage("retrain", {"target_ber": target})
        zoo.load_weights(retrained, self.path("retrained.pt"))
        retrained.eval()
        return retrained

    def _stage_mapping(self, inputs: _Inputs, name: str, record: dict, net, out_name: str) -> dict:
        """5 and 6. Mapping of a model's data types, validated by emulation -> ``out_name``."""
        from eden.workflows.deploy import deploy

        out = self.path(out_name)
        if not self._begin(name):
            rep = deploy(record, inputs.profile, options=self._deploy_options(), model=net, loader=inputs.loader,
                         seeds=inputs.seeds, device=inputs.device, executor=self.executor)
            write_json(out, rep, overwrite=True, what="mapping report")
            self.finish_stage(name, {"saving": rep["totals"]["energy_saving_fraction"]})
        return json.loads(out.read_text())

    def _stage_pareto(self, inputs: _Inputs, tol_after: dict, retrained) -> list:
        """7. Energy saving vs validated accuracy at PARETO_TARGETS_PP -> pareto.json."""
        if not self._begin("pareto"):
            from eden.workflows.deploy import pareto_sweep

            pts = pareto_sweep(tol_after, inputs.profile, PARETO_TARGETS_PP, options=self._deploy_options(),
                               model=retrained, loader=inputs.loader, seeds=inputs.seeds, device=inputs.device,
                               executor=self.executor)
            write_json(self.path("pareto.json"), pts, overwrite=True, what="Pareto sweep")
            self.finish_stage("pareto", {"points": len(pts)})
        return json.loads(self.path("pareto.json").read_text())

    def _stage_report(self, clean: dict, tol_before: dict, tol_after: dict, map_base: dict, map_re: dict,
                      em_label: str) -> dict:
        """8. summary.json, report.md and mapping.png (always rewritten: they are cheap)."""
        from eden.workflows.plots import plot_deployment

        self._begin("report")
        summary = summarize(self.cfg, clean, tol_before, tol_after, map_base, map_re, em_label,
                            json.loads(self.path("retrain_report.json").read_text()))
        write_json(self.path("summary.json"), summary, overwrite=True, what="run summary")
        text = summary_text(summary)
        write_text(self.path("report.md"), "# eden run\n\n```\n" + text + "\n```\n", overwrite=True,
                   what="run report")
        plot_deployment(map_re, self.path("mapping.png"), overwrite=True)
        self.finish_stage("report", {"summary": "summary.json"})
        return summary


def _acc(rep):
    v = rep["validation"]
    return v["accuracy"] if v.get("validated") else None


def summarize(cfg, clean, tol_b, tol_a, map_b, map_r, em_label, retrain_report) -> dict:
    def row(rep, tol):
        t = rep["totals"]
        return {"coarse_tolerable_ber": tol["coarse"]["tolerable_ber"],
                "clean_accuracy": tol["baseline"]["clean_fp32"],
                "energy_nominal_j": t["energy_nominal_j"], "energy_mapped_j": t["energy_mapped_j"],
                "energy_saving_fraction": t["energy_saving_fraction"],
                **{k: t[k] for k in ("energy_per_token_nominal_j", "energy_per_token_mapped_j",
                                     "dram_time_per_token_nominal_s", "dram_time_per_token_mapped_s") if k in t},
                "access_time_saving_fraction": t["access_time_saving_fraction"], "speedup": t["speedup"],
                "accuracy_under_mapping": _acc(rep), "target_met": rep["validation"].get("passed"),
                "backoff_steps": len(rep["validation"].get("backoff_steps", [])),
                "partitions": {r["name"]: r["partition"] for r in rep["datatypes"]}}

    b, r = row(map_b, tol_b), row(map_r, tol_a)
    share = None
    if r["energy_saving_fraction"] > 0:
        share = (r["energy_saving_fraction"] - b["energy_saving_fraction"]) / r["energy_saving_fraction"]
    share_note = _share_note(map_b, share)
    return {"format": "eden-run-summary", "format_version": 1, "eden_version": __version__,
            "config": config_dict(cfg), "error_model_shape": em_label,
            "clean_accuracy": clean["accuracy"], "threshold": tol_b["baseline"]["threshold"],
            "without_retraining": b, "with_retraining": r, "retraining_share_of_saving": share,
            "retraining_share_note": share_note,
            "retraining": {"clean_accuracy": retrain_report.get("clean_accuracy"),
                           "curriculum": retrain_report.get("curriculum"),
                           "train_seconds": retrain_report.get("train_seconds")},
            "eden_published_for_context": {**EDEN_PUBLISHED, "note": "EDEN (MICRO 2019) averages on its own DNNs "
                                           "and DDR4 measurements: a different device and workload."},
            "vdd_law": map_r.get("vdd_law"), "profile": map_r["profile"],
            "pareto": map_r.get("pareto", []),
            "assumptions": {"without_retraining": map_b.get("assumptions"),
                            "with_retraining": map_r.get("assumptions")}}


def summary_text(s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{x * 100:.1f}%"

    def acc(a):
        if a is None:
            return "not validated"
        return (f"{a['mean'] * 100:.2f}% [{a['ci95'][0] * 100:.2f}, {a['ci95'][1] * 100:.2f}] "
                f"(95% CI, {len(a['values'])} seeds)")

    b, r = s["without_retraining"], s["with_retraining"]
    cfg = s["config"]
    unit = "generation" if cfg.get("workload") == "generation" else "inference"
    lines = [
        f"model {cfg['model']} on {s['profile']}; {cfg['format']} with correction {cfg['correction']}"
        + (f"; ECC {cfg['ecc']} (BERs are raw, before ECC)" if cfg.get("ecc", "none") != "none" else "")
        + "; error-model "
        f"shape {s['error_model_shape']}; target: at most {cfg['target_drop_pp']:g} pp below clean "
        f"(>= {s['threshold'] * 100:.2f}%)",
        f"VDD law: {s['vdd_law']}",
        "",
        f"{'':34s} {'without retraining':>24s} {'with retraining':>24s}",
        f"{'clean accuracy':34s} {b['clean_accuracy'] * 100:>23.2f}% {r['clean_accuracy'] * 100:>23.2f}%",
        f"{'coarse tolerable BER':34s} {b['coarse_tolerable_ber']:>24.3g} {r['coarse_tolerable_ber']:>24.3g}",
        f"{'DRAM energy / ' + unit + ' (uJ)':34s} {b['energy_mapped_j'] * 1e6:>24.4g} "
        f"{r['energy_mapped_j'] * 1e6:>24.4g}",
        f"{'  (nominal DRAM: uJ)':34s} {b['energy_nominal_j'] * 1e6:>24.4g} {r['energy_nominal_j'] * 1e6:>24.4g}",
        *([f"{'DRAM energy / generated token (nJ)':34s} {b['energy_per_token_mapped_j'] * 1e9:>24.4g} "
           f"{r['energy_per_token_mapped_j'] * 1e9:>24.4g}",
           f"{'  (nominal DRAM: nJ / token)':34s} {b['energy_per_token_nominal_j'] * 1e9:>24.4g} "
           f"{r['energy_per_token_nominal_j'] * 1e9:>24.4g}",
           f"{'DRAM time / generated token (ns)':34s} {b['dram_time_per_token_mapped_s'] * 1e9:>24.4g} "
           f"{r['dram_time_per_token_mapped_s'] * 1e9:>24.4g}"] if "energy_per_token_mapped_j" in r else []),
        f"{'DRAM energy saved vs nominal':34s} {pct(b['energy_saving_fraction']):>24s} "
        f"{pct(r['energy_saving_fraction']):>24s}",
        f"{'DRAM access time saved':34s} {pct(b['access_time_saving_fraction']):>24s} "
        f"{pct(r['access_time_saving_fraction']):>24s}",
        f"{'end-to-end speedup (f=' + str(cfg['memory_bound_fraction']) + ')':34s} "
        f"{b['speedup']:>23.3f}x {r['speedup']:>23.3f}x",
        f"{'back-off steps in validation':34s} {b['backoff_steps']:>24d} {r['backoff_steps']:>24d}",
        f"{'target met under emulation':34s} {str(b['target_met']):>24s} {str(r['target_met']):>24s}",
        "",
        f"accuracy under the mapping, without retraining: {acc(b['accuracy_under_mapping'])}",
        f"accuracy under the mapping, with retraining:    {acc(r['accuracy_under_mapping'])}",
        f"retraining's share of the energy saving: {pct(s['retraining_share_of_saving'])}"
        + (f" ({s['retraining_share_note']})" if s.get("retraining_share_note") else ""),
        "",
        "where each data type went (with retraining):",
    ]
    for name, part in r["partitions"].items():
        lines.append(f"  {name:34s} -> {part}")
    if s.get("pareto"):
        lines += ["", "energy-accuracy tradeoff (retrained model; each mapping validated by emulation):"]
        for pt in s["pareto"]:
            lines.append(f"  target {pt['target_drop_pp']:>4g} pp: "
                         f"energy saved {pct(pt['energy_saving_fraction']):>6s}, "
                         f"accuracy {acc(pt['accuracy'])}, target met: {pt['passed']}")
    lines += [""] + _assumption_lines(s.get("assumptions") or {})
    p = s["eden_published_for_context"]
    lines += ["", f"For context only (different device and workload): EDEN (MICRO 2019) reports DRAM energy "
              f"-{p['dram_energy_saving_cpu'] * 100:.0f}% (CPU) / -{p['dram_energy_saving_gpu'] * 100:.0f}% (GPU) "
              f"and an {p['speedup_cpu'] * 100:.0f}% speedup (CPU)."]
    return "\n".join(lines)


def _share_note(map_b: dict, share) -> str | None:
    """Why retraining's share of the saving is small, when it is: the model already reached the
    profile's deepest VDD point without retraining, so there is nothing deeper to unlock."""
    if share is not None and share >= 0.05:
        return None
    vdd_parts = [p for p in map_b["partitions"] if not p.get("nominal") and p.get("vdd_v") is not None]
    if not vdd_parts:
        return None
    deepest = min(p["vdd_v"] for p in vdd_parts)
    used = {r["partition"] for r in map_b["datatypes"]}
    if any(p["name"] in used and p["vdd_v"] == deepest for p in vdd_parts):
        return (f"without retraining the model already tolerates the profile's deepest point ({deepest:g} V): "
                "retraining has no deeper point to unlock")
    return None


def _assumption_lines(a: dict) -> list[str]:
    """The run's assumptions block: the saving at both ends of alpha's range for both mappings, then the
    retrained mapping's operating points and partition model (:func:`eden.workflows.deploy.assumptions`)."""
    from eden.workflows.deploy import assumptions_text

    b, r = a.get("without_retraining"), a.get("with_retraining")
    if not r:
        return ["assumptions: not recorded (mappings made by an older eden; rerun with --restart)"]
    lines = assumptions_text(r)
    if b:
        sb = b["energy_saving_by_alpha"]
        lo, hi = (f"{x:g}" for x in b["alpha_range"])
        lines.insert(2, f"  without retraining: energy saved {sb[lo] * 100:.1f}% at alpha {lo} .. {sb[hi] * 100:.1f}% "
                        f"at alpha {hi}")
        lines[1] = lines[1].replace("  VDD law", "  with retraining, VDD law", 1)
    return lines


def run_pipeline(run_dir: str | Path = "eden-run", cfg: RunConfig = RunConfig(), *, restart: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print, executor=None) -> dict:
    """Run (or resume) the whole pipeline; returns the summary (see :func:`summarize`).

    ``executor``: where characterization and validation evaluate (an ``eden.workflows.executor.Executor``
    or a registered name, "local" by default); the retraining stage is not affected (it scales with
    ``torchrun``).
    """
    return Run(run_dir, cfg, restart=restart, progress=progress, log=log, executor=executor).execute()

