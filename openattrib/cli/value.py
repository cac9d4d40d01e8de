"""``openattrib value``: value the rows or contributors of a CSV file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import methods as registry
from .._io import check_output_path
from ..errors import ValidationError
from ..recipe import MODELS, PAYOUTS, compute, prepare_data, read_data
from ._ownership import ownership_of


def add_value_parser(commands: Any) -> None:
    p = commands.add_parser(
        "value",
        help="value training data (points or contributors) of a CSV file",
        description="Value the rows (or contributors) of a CSV file and write the attribution as JSON.",
    )
    p.add_argument("--data", required=True, type=Path, help="training data CSV")
    p.add_argument("--target", required=True, help="name of the label column")
    p.add_argument("--contributor", help="name of the contributor column (values contributors)")
    p.add_argument(
        "--valid", type=Path, help="validation CSV (default: split --test-size off --data)"
    )
    p.add_argument(
        "--test-size", type=float, default=0.3, help="validation fraction when no --valid"
    )
    p.add_argument(
        "--players",
        choices=("points", "contributors"),
        help="default: contributors when --contributor is given",
    )
    p.add_argument(
        "--payout",
        choices=PAYOUTS,
        help="split_robust: value the points and sum each contributor's positive point values "
        "(a payout that splitting rows among identities cannot change; needs --contributor, "
        "implies --players points)",
    )
    p.add_argument("--model", choices=MODELS, default="logistic")
    p.add_argument(
        "--scorer", default=None, help="scikit-learn scorer name (default accuracy / r2)"
    )
    described = "; ".join(f"{m.name} ({m.description})" for m in registry.METHODS.values())
    aliases = ", ".join(f"{a} = {target}" for a, (target, _) in registry.ALIASES.items())
    p.add_argument(
        "--method",
        choices=registry.names(),
        default="exact_shapley",
        metavar="METHOD",
        help=f"{described}. Older names: {aliases}. Default: exact_shapley",
    )
    p.add_argument("--seed", type=int, default=0)
    mc = p.add_argument_group(
        "Monte Carlo methods (permutation_shapley, beta_shapley, banzhaf; "
        "default: the method's budget of samples)"
    )
    mc.add_argument(
        "--max-samples", type=int, help="stop after this many permutations / coalitions"
    )
    mc.add_argument("--max-time", type=float, help="stop after this many seconds")
    mc.add_argument("--stderr", type=float, help="stop when every standard error is below this")
    mc.add_argument(
        "--truncation", type=float, help="TMC tolerance (relative; tmc: 0.01, otherwise 0)"
    )
    mc.add_argument("--alpha", type=float, help="Beta Shapley alpha (default 16)")
    mc.add_argument("--beta", type=float, help="Beta Shapley beta (default 1)")
    other = p.add_argument_group("knn_shapley and data_oob")
    other.add_argument("--k", type=int, help="neighbours for KNN-Shapley (default 5)")
    other.add_argument("--n-estimators", type=int, help="bags for Data-OOB (default 1000)")
    run = p.add_argument_group("where it runs (does not change the numbers)")
    run.add_argument("--n-jobs", type=int, default=1)
    run.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    own = p.add_argument_group("provenance (copies earn nothing)")
    own.add_argument(
        "--ledger",
        type=Path,
        help="ledger whose contribution registry owns the rows (openattrib ledger register): "
        "value the owned data, each row once, credited to its first registrant",
    )
    own.add_argument(
        "--near-threshold", type=float, default=0.05, help="near-duplicate RMS threshold"
    )
    own.add_argument(
        "--unregistered",
        choices=("error", "own"),
        default="error",
        help="rows never registered: refuse, or count them as their submitter's own",
    )
    p.add_argument("--no-standardize", action="store_true", help="do not standardise features")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="where to write the attribution JSON")
    p.set_defaults(handler=run_value)


def recipe_from_args(args: argparse.Namespace, players: str) -> dict[str, Any]:
    """The recipe (see :mod:`openattrib.recipe`) that the command-line options describe."""
    params: dict[str, Any] = {}
    rules = []
    if args.max_samples is not None:
        rules.append(f"MaxSamples({args.max_samples})")
    if args.max_time is not None:
        rules.append(f"MaxTime({args.max_time})")
    if args.stderr is not None:
        rules.append(f"StdErr(atol={args.stderr})")
    if rules:
        params["stop"] = " | ".join(rules)
    method, fixed = registry.resolve(args.method)
    params.update(fixed)
    given = {
        "truncation": args.truncation,
        "alpha": args.alpha,
        "beta": args.beta,
        "k": args.k,
        "n_estimators": args.n_estimators,
    }
    for name, value in given.items():
        if value is None:
            continue
        if name not in method.defaults:
            flag = "--" + name.replace("_", "-")
            raise ValidationError(f"{flag} is not a parameter of method {args.method!r}")
        params[name] = value
    if "stop" in params and not method.monte_carlo:
        raise ValidationError(
            f"--max-samples/--max-time/--stderr apply to Monte Carlo methods, not {args.method!r}"
        )
    if method.monte_carlo and "stop" not in params:
        # recorded, so the recipe reproduces even if the registry's default changes
        params["budget"] = method.defaults["budget"]
    recipe = {
        "target": args.target,
        "contributor": args.contributor,
        "model": args.model,
        "scorer": args.scorer,
        "players": players,
        "method": args.method,
        "params": params,
        "seed": args.seed,
        "standardize": not args.no_standardize,
        "split": None if args.valid else {"test_size": args.test_size, "seed": args.seed},
    }
    if args.payout is not None:  # only then: recipes without a payout read as before
        recipe["payout"] = args.payout
    return recipe


def run_value(args: argparse.Namespace) -> int:
    players = args.players or ("contributors" if args.contributor and not args.payout else "points")
    if players == "contributors" and not args.contributor:
        raise ValidationError("--players contributors needs --contributor COLUMN")
    if args.payout and (players != "points" or not args.contributor):
        raise ValidationError(
            f"--payout {args.payout} sums point values per contributor: it needs --contributor "
            "COLUMN and --players points (the default with --payout)"
        )
    recipe = recipe_from_args(args, players)
    check_output_path(args.out)
    data, valid = read_data(recipe, args.data, args.valid)
    ownership = None
    if args.ledger is not None:
        if not args.ledger.exists():
            raise ValidationError(
                f"ledger {args.ledger} not found; register the submissions first with "
                "`openattrib ledger register`"
            )
        from ..ledger import Ledger

        with Ledger(args.ledger, create=False) as led:
            ownership = ownership_of(
                recipe,
                data,
                valid,
                led,
                near_threshold=args.near_threshold,
                unregistered=args.unregistered,
            )
    train, valid = prepare_data(recipe, data, valid)
    result = compute(
        recipe,
        train,
        valid,
        progress=not args.no_progress,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        ownership=ownership,
    )
    path = result.save(args.out)
    frame = result.to_frame(sort=True)
    print(frame.head(20).to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nwrote {path} ({len(result)} {result.level}, method {result.method}, "
        f"sum {np.sum(result.values):.4f})"
    )
    return 0
