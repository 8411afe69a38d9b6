"""Arguments that several subcommands share, declared once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtr.evaluate.postprocess_report import PostprocessOptions


def add_overrides_argument(parser: argparse.ArgumentParser, what: str = "a config value") -> None:
    """``--set KEY=VALUE`` (repeatable), collected into ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what}, e.g. --set train.epochs=2 --set data.root=DIR (repeatable)",
    )


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars (for logs and scripts)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_postprocess_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--postprocess METHODS`` and each method's parameters, in an argument group of their own.

    Returns the group, where the command adds its own query bank argument for QB-Norm (``--bank-split`` or
    ``--bank-sim``).
    """
    from vtr.evaluate import postprocess as pp
    from vtr.evaluate.postprocess_report import POSTPROCESS_METHODS

    group = parser.add_argument_group(
        "post-processing",
        "test-time rescoring reported in a separate, labelled 'postprocessed' section; the plain metrics are "
        "unchanged. dsl and sinkhorn use every test query at once, which a deployed search does not have.",
    )
    group.add_argument(
        "--postprocess",
        type=_postprocess_methods,
        default=(),
        metavar="METHODS",
        help=f"comma-separated, from {', '.join(POSTPROCESS_METHODS)} (e.g. dsl,qbnorm,sinkhorn)",
    )
    group.add_argument(
        "--dsl-temperature",
        type=float,
        metavar="T",
        default=pp.DSL_TEMPERATURE,
        help=f"dual softmax temperature, in units of the scores (default {pp.DSL_TEMPERATURE}: logit scale 100)",
    )
    group.add_argument(
        "--qb-beta", type=float, metavar="BETA", default=pp.QB_BETA, help=f"QB-Norm beta (default {pp.QB_BETA:g})"
    )
    group.add_argument(
        "--qb-top-k",
        type=int,
        metavar="K",
        default=pp.QB_TOP_K,
        help=f"QB-Norm: top videos of each bank query that form the activation set (default {pp.QB_TOP_K})",
    )
    group.add_argument(
        "--sinkhorn-epsilon",
        type=float,
        metavar="EPS",
        default=pp.SINKHORN_EPSILON,
        help=f"Sinkhorn-Knopp entropic regularisation, in units of the scores (default {pp.SINKHORN_EPSILON})",
    )
    group.add_argument(
        "--sinkhorn-iters",
        type=int,
        metavar="N",
        default=pp.SINKHORN_MAX_ITER,
        help=f"Sinkhorn-Knopp: most iterations (default {pp.SINKHORN_MAX_ITER})",
    )
    group.add_argument(
        "--sinkhorn-tol",
        type=float,
        metavar="TOL",
        default=pp.SINKHORN_TOL,
        help=f"Sinkhorn-Knopp: stop when every video's mass is this close to uniform, relative "
        f"(default {pp.SINKHORN_TOL:g})",
    )
    return group


def postprocess_options(args: argparse.Namespace) -> PostprocessOptions:
    """The :class:`vtr.evaluate.postprocess_report.PostprocessOptions` of the arguments of :func:`add_postprocess_arguments`."""
    from vtr.evaluate.postprocess_report import PostprocessOptions

    return PostprocessOptions(
        dsl_temperature=args.dsl_temperature,
        qb_beta=args.qb_beta,
        qb_top_k=args.qb_top_k,
        sinkhorn_epsilon=args.sinkhorn_epsilon,
        sinkhorn_max_iter=args.sinkhorn_iters,
        sinkhorn_tol=args.sinkhorn_tol,
    )


def _postprocess_methods(text: str) -> tuple[str, ...]:
    from vtr.errors import ConfigError
    from vtr.evaluate.postprocess_report import parse_methods

    try:
        return parse_methods(text)
    except ConfigError as error:  # a usage error: argparse prints it with the usage line and exits 2
        raise argparse.ArgumentTypeError(str(error)) from error
