"""Wall time of one characterization sweep: local (one process) vs Ray workers, side by side in one run.

    python scripts/bench_sweep.py [--workers 2] [--mode both] [--seeds 2] [--resolution 0.3]
                                  [--select 'classifier.*'] [--images 359] [--repeat 1]
    python scripts/bench_sweep.py --project-resnet50 [--seeds 5] [--resolution 0.1] [--eval-s 25]

The bundled digits-lenet on its test split, em0 shape, fp32 with zero correction. The same sweep runs
locally, then on a Ray cluster started here (``num_cpus`` = workers, no dashboard) with that many workers;
it prints the evaluations, the wall times, their ratio (local / Ray: the speedup) and checks that the
two tolerance records are identical but for their time stamp. The Ray time is given with and without
the cluster's start (paid once per session: ``eden run`` and a cluster started with ``ray start`` pay it
once for every sweep). Requires ``pip install "eden-dram[ray]"``.

``--project-resnet50`` runs nothing on Ray: it counts the data types eden finds in a ResNet-50 (built
here, torchvision's layers) and the evaluations of a coarse + fine + joint characterization with the
points per search of a digits-lenet sweep made here (eden's own search), and prints the wall time for
N workers at ``--eval-s`` seconds per evaluation (one pass over ImageNet's 50,000 validation images on
one GPU: the user's number), round by round as :class:`eden.workflows.characterize.Characterizer`
schedules them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from eden.nn import zoo
from eden.workflows.characterize import characterize
from eden.workflows.executor import import_ray, make_executor


def resnet50(num_classes: int = 1000) -> torch.nn.Module:
    """ResNet-50 (He et al. 2016) with torchvision's layers (25.6 M parameters), no torchvision needed."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    layers, cin = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
            cin = width * 4
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


def project_resnet50(seeds: int, resolution: float, eval_s: float) -> None:
    """Evaluations and wall time of a ResNet-50/ImageNet characterization on N workers (see the docstring)."""
    import math

    from eden.nn.emulate import datatypes

    net = resnet50().eval()
    n_dt = len(datatypes(net, torch.zeros(1, 3, 224, 224)))
    n_params = sum(p.numel() for p in net.parameters())
    model = zoo.load_model("digits-lenet")
    loader = zoo.digits_loader("test", batch_size=512)
    rec = characterize(model, loader, "em0:p=1e-3", mode="both", seeds=1, resolution_decades=resolution,
                       correction="zero")
    fine_pts = [len(r["points"]) for r in rec["fine"].values()]
    coarse_pts, joint_steps = len(rec["coarse"]["points"]), len(rec["joint"]["steps"])
    mean_fine = sum(fine_pts) / len(fine_pts)
    # rounds: the coarse and every fine search advance together (one point each per round), then the joint
    # check one step per round; a round takes ceil(tasks / workers) evaluation times.
    rounds = max(max(fine_pts), coarse_pts)
    evals = 1 + seeds * (coarse_pts + n_dt * mean_fine + joint_steps)
    print(f"ResNet-50 ({n_params / 1e6:.1f} M parameters): {n_dt} data types (weights, batch-norm parameters, "
          f"IFMs); digits-lenet search at resolution {resolution}: {coarse_pts} coarse points, "
          f"{mean_fine:.1f} points per fine search (max {max(fine_pts)}), {joint_steps} joint step(s)")
    print(f"evaluations: 1 + {seeds} seeds x ({coarse_pts} + {n_dt} x {mean_fine:.1f} + {joint_steps}) = "
          f"{evals:.0f}; at {eval_s:g} s each: {evals * eval_s / 3600:.1f} h serial")
    print(f"{'workers':>8s} {'wall (h)':>10s} {'speedup':>8s} {'efficiency':>10s}")
    serial = evals * eval_s
    for w in (1, 8, 64, 256, 1024, 4096):
        # fine phase: each round evaluates (searches still open) x seeds tasks; searches finish after their own
        # point counts; the joint steps and the baseline are one point each.
        t = math.ceil(1 / w) * eval_s
        for r in range(rounds):
            open_searches = (coarse_pts > r) + n_dt * sum(p > r for p in fine_pts) / len(fine_pts)
            t += math.ceil(open_searches * seeds / w) * eval_s
        t += joint_steps * math.ceil(seeds / w) * eval_s
        print(f"{w:>8d} {t / 3600:>10.2f} {serial / t:>8.1f} {serial / t / w:>10.0%}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", default="both")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--resolution", type=float, default=0.3)
    ap.add_argument("--select", action="append", default=None, help="data types (glob; repeatable; default all)")
    ap.add_argument("--images", type=int, default=359, help="test images per evaluation (at most 359)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, the best time counts")
    ap.add_argument("--project-resnet50", action="store_true", help="print the projection (see the docstring)")
    ap.add_argument("--eval-s", type=float, default=25.0, help="seconds per ResNet-50/ImageNet evaluation")
    args = ap.parse_args(argv)
    if args.project_resnet50:
        project_resnet50(args.seeds, args.resolution, args.eval_s)
        return 0
    ray = import_ray()
    model = zoo.load_model("digits-lenet")
    x, y = zoo.digits_split("test")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:args.images], y[:args.images]),
                                         batch_size=512)
    sweep = dict(mode=args.mode, seeds=args.seeds, resolution_decades=args.resolution, select=args.select,
                 correction="zero", model_id="digits-lenet", data_id=f"digits[:{args.images}]")

    def timed(executor) -> tuple[float, dict]:
        best, rec = float("inf"), {}
        for _ in range(args.repeat):
            t = time.perf_counter()
            rec = characterize(model, loader, "em0:p=1e-3", executor=executor, **sweep)
            best = min(best, time.perf_counter() - t)
        return best, rec

    t_local, local = timed("local")
    t = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, configure_logging=False, log_to_driver=False)
    t_start = time.perf_counter() - t
    try:
        with make_executor("ray", workers=args.workers) as ex:
            t_ray, on_ray = timed(ex)
    finally:
        ray.shutdown()
    same = json.dumps({**local, "created_utc": ""}) == json.dumps({**on_ray, "created_utc": ""})
    n = local["evaluations"]
    print(f"sweep: digits-lenet, {args.images} images, mode {args.mode}, {args.seeds} seeds, resolution "
          f"{args.resolution} decades, select {args.select or 'all'}: {n} evaluations")
    print(f"local (1 process)      {t_local:8.2f} s  ({t_local / n * 1e3:.0f} ms per evaluation)")
    print(f"ray ({args.workers} workers)        {t_ray:8.2f} s  (+ {t_start:.1f} s to start the cluster)")
    print(f"speedup local / ray    {t_local / t_ray:8.2f} x  ({t_local / (t_ray + t_start):.2f} x with the start)")
    print(f"records identical but for the time stamp: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
