"""Which data types cost a model its accuracy at one BER: each alone, and all but each.

At a fixed BER (and format, correction, error-model shape), every data type is
corrupted alone ("only": its own cost) and every data type but one ("without":
what removing it saves), each averaged over --seeds device seeds. The fine-grained
characterization (`eden characterize --mode fine`) asks a different question (the
highest BER each data type tolerates alone); this one explains a failure at a given
BER, e.g. why a retrained model misses its target.

    python scripts/leave_one_out.py --model digits-resnet --weights resnet-fp32.pt \\
        --ber 2.9e-3 --correction zero
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="digits-lenet", help="bundled model, torchvision:NAME or module:factory")
    ap.add_argument("--weights", default=None, help="state dict (.pt) to load, e.g. from `eden retrain -o`")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--ber", type=float, required=True)
    ap.add_argument("--error-model", default="em0:p=1e-3", help="the shape, scaled to --ber")
    ap.add_argument("--format", default="fp32")
    ap.add_argument("--correction", default="none", choices=["none", "zero", "clamp"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--skip-biases", action="store_true", help="leave out the rows of biases")
    args = ap.parse_args()
    if not 0.0 < args.ber <= 0.5:
        ap.error(f"--ber must be in (0, 0.5], got {args.ber}")

    import torch

    from eden.nn import zoo
    from eden.nn.emulate import DataTypeConfig, EmulationPlan, datatypes, emulate
    from eden.errormodels.model import ErrorModel
    from eden.nn.evaluate import evaluate

    model, _ = zoo.build_model(args.model, args.weights)
    model.eval()
    loader = zoo.build_data(args.data, "test", args.batch_size)
    example = next(iter(loader))[0][:1]
    names = [d.name for d in datatypes(model, example)]
    config = DataTypeConfig(ErrorModel.coerce(args.error_model).at_ber(args.ber), args.format, args.correction)

    def accuracy(selected: list[str]) -> float:
        plan = EmulationPlan({n: config for n in selected})
        total = 0.0
        for seed in range(args.seeds):
            with emulate(model, plan, seed=seed):
                total += evaluate(model, loader)
        return 100.0 * total / args.seeds

    with torch.no_grad():
        clean = 100.0 * evaluate(model, loader)
        every = accuracy(names)
        print(f"{args.model} at BER {args.ber:g} ({args.format}, correction {args.correction}, "
              f"{args.seeds} seeds): clean {clean:.2f}%, every data type corrupted {every:.2f}%")
        print(f"{'data type':28s} {'only':>8s} {'cost pp':>8s} {'without':>8s} {'saves pp':>9s}")
        for n in names:
            if args.skip_biases and n.endswith(".bias"):
                continue
            only = accuracy([n])
            without = accuracy([k for k in names if k != n])
            print(f"{n:28s} {only:8.2f} {clean - only:8.2f} {without:8.2f} {without - every:9.2f}", flush=True)


if __name__ == "__main__":
    main()
