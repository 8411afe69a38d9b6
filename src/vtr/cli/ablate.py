"""``vtr ablate``: the paper's loss ablation (L1, L1+L2, L1+L3, L1+L2+L3) over several seeds."""

from __future__ import annotations

import argparse

from vtr.cli.common import add_overrides_argument, add_progress_argument
from vtr.config import load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="train and evaluate the loss ablation (Tables III and IV)",
        description="Train L1, L1+L2, L1+L3 and L1+L2+L3 on identical data, budget and seeds; write "
        "DIR/ablation.json (one record per run) and DIR/ablation.md (mean and standard deviation over seeds). "
        "Finished runs are reused when the command is run again.",
    )
    parser.add_argument("--config", required=True, help="a YAML config file or a packaged config name")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default: 3)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--variants",
        default="L1,L1+L2,L1+L3,L1+L2+L3",
        help="comma-separated combinations of loss terms (L1, L2, L3) and other head names (mcsan, hcmi), "
        "e.g. L1+L2+L3,L1+L2+L3+mcsan",
    )
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    add_overrides_argument(parser, "a config value")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vtr.train.ablation import ablation_table, run_ablation

    config = load_config(args.config, args.overrides)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    records = run_ablation(config, args.seeds, args.out, variants, split=args.split, progress=not args.no_progress)
    print(ablation_table(records, args.seeds))
    print(f"written: {args.out}/ablation.json, {args.out}/ablation.md")
    return 0
