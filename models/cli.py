"""`storeedge models train|evaluate`: train on everything before a cutoff, test on the days after it.

The edge CLI wires this in with `configure_parser(subparser, simulate=...)` and `run(args)`. The
`simulated` source needs the household simulator, which models may not import; the caller hands it in
(`simulators.household_history.write_simulated_history`). Without it, `--source simulated` fails with
a message saying how to produce a history file instead.

    storeedge models train --source simulated --cutoff 2024-10-01 --out models/trained
    storeedge models evaluate --source completejourney --cutoff 2017-10-01 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from models.errors import DatasetError, ModelsError, TrainingError
from models.progress import progress_for
from models.report_text import BASKET_KEYS, basket_rows, format_report, shelf_lines, table

if TYPE_CHECKING:
    import tempfile

    from models.history import PurchaseHistory

# The data and training modules (numpy and up) are imported inside the commands that use them, so the
# `storeedge` parser loads none of them (tests/test_cli_imports.py).

SIM_START = date(2024, 1, 1)
SIM_HOUSEHOLDS = 2000
CDNOW = "cdnow"
SHELF_TASK = "shelf"  # the shelf-depletion model alone (models/shelf_task.py)
RANKER_TASK = "ranker"  # the next-basket ranker alone (models/ranker_task.py)
TASKS = ("models", "clv", "churn", "segments", SHELF_TASK, RANKER_TASK)
SIM_DAYS = 365


class HistorySimulator(Protocol):
    """Writes a simulated purchase history (the format of `models.history`) to ``path``."""

    def __call__(self, path: Path, *, seed: int, households: int, days: int, start: date) -> None: ...


def _cutoff(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def configure_parser(
    parser: argparse.ArgumentParser, simulate: HistorySimulator | None = None
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add the `train` and `evaluate` subcommands to ``parser`` (the `models` command); returns the
    subcommands so the caller can add its own (the edge CLI adds `seed`, which needs a store)."""
    parser.set_defaults(models_simulate=simulate)
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        (
            "train",
            "train the models on everything before --cutoff, evaluate them on the days after it, and write "
            "model.onnx + card.json per model to --out "
            "(example: storeedge models train --source simulated --cutoff 2024-10-01 --out models/trained)",
        ),
        (
            "evaluate",
            "train on everything before --cutoff and print held-out metrics next to the baselines "
            "(example: storeedge models evaluate --source completejourney --cutoff 2017-10-01 --json)",
        ),
    ):
        sub = commands.add_parser(name, help=text.split(" (example")[0], description=text)
        sub.add_argument(
            "--source",
            required=True,
            metavar="{simulated,completejourney,FILE}",
            help="training data: the household simulator, Dunnhumby's Complete Journey, or a history file (.npz/.csv)",
        )
        sub.add_argument(
            "--cutoff",
            required=name == "train",
            type=_cutoff,
            help="first day of the test window (YYYY-MM-DD); --task clv/churn/segments: optional (default: the source's)",
        )
        sub.add_argument("--seed", type=int, default=0, help="seed for sampling, training and the simulator")
        sub.add_argument("--json", action="store_true", help="print the metrics as JSON")
        sub.add_argument(
            "--quiet",
            action="store_true",
            help="no progress display (shown on stderr only when it is a terminal and not --json)",
        )
        sub.add_argument(
            "--sim-households", type=int, default=SIM_HOUSEHOLDS, help="households of the simulated source"
        )
        sub.add_argument(
            "--sim-days", type=int, default=SIM_DAYS, help="days of the simulated source (from 2024-01-01)"
        )
        if name == "train":
            sub.add_argument("--out", required=True, type=Path, help="directory for the trained models")
            sub.add_argument(
                "--task",
                choices=("models", SHELF_TASK, RANKER_TASK),
                default="models",
                help="models: the household and shelf models (default); shelf: only the shelf-depletion "
                "model (writes <out>/shelf_depletion/; --source simulated); ranker: only the next-basket "
                "ranker (writes <out>/next_basket_ranker/)",
            )
        else:
            sub.add_argument(
                "--task",
                choices=TASKS,
                default="models",
                help="models: the household and shelf models (default); clv, churn, segments: the customer "
                "models (docs/customer_models.md) on --source completejourney, cdnow or simulated; shelf, "
                "ranker: the shelf-depletion model or the next-basket ranker alone",
            )
    return commands


def run(args: argparse.Namespace) -> int:
    """Run `models train` or `models evaluate`; errors print one line naming what is at fault, exit 2."""
    try:
        return _run(args)
    except ModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "task", "models") == SHELF_TASK:
        return _shelf_task(args)
    if getattr(args, "task", "models") == RANKER_TASK:
        return _ranker_task(args)
    if getattr(args, "task", "models") != "models":
        return _customer_task(args)
    if args.cutoff is None:
        raise DatasetError("--cutoff: required (YYYY-MM-DD) for --task models")
    from models.datasets import COMPLETEJOURNEY, SIMULATED  # noqa: PLC0415
    from models.history import epoch_day  # noqa: PLC0415
    from models.holiday_calendar import DEFAULT_COUNTRY  # noqa: PLC0415
    from models.pipeline import Provenance, TrainOptions, evaluate_models, export_models, train_models  # noqa: PLC0415
    from models.shelf import pick_stream_from_history  # noqa: PLC0415

    simulate: HistorySimulator | None = getattr(args, "models_simulate", None)
    with (
        progress_for(json=args.json, quiet=getattr(args, "quiet", False)) as progress,
        _scratch_dir() as scratch,
    ):
        began = time.perf_counter()
        progress.stage(f"loading {args.source}")
        history = _load(args.source, simulate, args, Path(scratch))
        loaded = time.perf_counter() - began
        cutoff = epoch_day(args.cutoff)
        _check_cutoff(history, cutoff, args.cutoff)
        if args.source != SIMULATED and simulate is not None:
            progress.stage("simulating shelf picks")
        shelf_history = history if args.source == SIMULATED else _shelf_history(simulate, args, Path(scratch))
        # The simulated store is in the simulator's default country (its public holidays shape the picks).
        stream = (
            pick_stream_from_history(shelf_history, country=DEFAULT_COUNTRY)
            if shelf_history is not None
            else None
        )
        options = TrainOptions(seed=args.seed)
        began = time.perf_counter()
        trained = train_models(history, cutoff, options, stream, progress)
        trained_s = time.perf_counter() - began
        began = time.perf_counter()
        report = evaluate_models(history, cutoff, trained, stream, progress)
        evaluated_s = time.perf_counter() - began
        report["timing_seconds"] = {
            "load": round(loaded, 1),
            "train": round(trained_s, 1),
            "evaluate": round(evaluated_s, 1),
            **{f"train_{k}": round(v, 1) for k, v in trained.seconds.items()},
        }
        if args.models_command == "train":
            provenance = Provenance(
                source=args.source if args.source in {SIMULATED, COMPLETEJOURNEY} else Path(args.source).name,
                cutoff=cutoff,
                seed=args.seed,
                data_sha256=history.sha256(),
                shelf_source=SIMULATED if stream is not None else "",
                shelf_data_sha256=shelf_history.sha256() if shelf_history is not None else "",
            )
            cards = export_models(trained, report, args.out, provenance, history, stream, progress)
            report["written"] = {
                name: {"version": c.version, "onnx_bytes": c.onnx_bytes} for name, c in cards.items()
            }
        if stream is None:
            report["shelf_depletion"] = {"note": "skipped: the simulated source is not available"}
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print(format_report(report, args.source, args.cutoff))
    return 0


def _shelf_task(args: argparse.Namespace) -> int:
    """`models train|evaluate --task shelf`: the shelf-depletion model alone (`models.shelf_task`)."""
    from models.datasets import SIMULATED  # noqa: PLC0415
    from models.shelf_task import run_shelf_task  # noqa: PLC0415

    if args.source != SIMULATED:
        raise DatasetError("--source: --task shelf trains on the household simulator: use --source simulated")
    report = _one_model_task(
        args, lambda h, c, out, p: run_shelf_task(h, c, seed=args.seed, out_dir=out, progress=p)
    )
    if not args.json:
        timing = ", ".join(f"{k} {v}" for k, v in report["timing_seconds"].items())
        print("\n".join([*shelf_lines(report), "", f"seconds: {timing}"]))
    return 0


def _ranker_task(args: argparse.Namespace) -> int:
    """`models train|evaluate --task ranker`: the next-basket ranker alone (`models.ranker_task`)."""
    from models.ranker_task import run_ranker_task  # noqa: PLC0415

    source = Path(args.source).name
    report = _one_model_task(
        args,
        lambda h, c, out, p: run_ranker_task(h, c, seed=args.seed, source=source, out_dir=out, progress=p),
    )
    if not args.json:
        for protocol in ("frozen", "rolling"):
            rows = basket_rows(report["next_basket_ranker"][protocol])
            print(
                "\n".join(
                    [f"next-basket ranker ('model'), {protocol} protocol", *table(BASKET_KEYS, rows), ""]
                )
            )
        print(f"seconds: {report['timing_seconds']}; written: {report.get('written')}")
    return 0


def _one_model_task(args: argparse.Namespace, run: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Load ``--source``, check ``--cutoff``, run ``run(history, cutoff, out_dir, progress)`` (out_dir:
    ``--out`` for `train`, None for `evaluate`); the report printed as JSON with ``--json``."""
    from models.history import epoch_day  # noqa: PLC0415

    if args.cutoff is None:
        raise DatasetError(f"--cutoff: required (YYYY-MM-DD) for --task {args.task}")
    simulate: HistorySimulator | None = getattr(args, "models_simulate", None)
    out = args.out if args.models_command == "train" else None
    with (
        progress_for(json=args.json, quiet=getattr(args, "quiet", False)) as progress,
        _scratch_dir() as scratch,
    ):
        progress.stage(f"loading {args.source}")
        history = _load(args.source, simulate, args, Path(scratch))
        cutoff = epoch_day(args.cutoff)
        _check_cutoff(history, cutoff, args.cutoff)
        report = run(history, cutoff, out, progress)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    return report


def _customer_task(args: argparse.Namespace) -> int:
    """`models evaluate --task clv|churn|segments`: the customer models against their baselines, in one run."""
    from models.customers.evaluate import evaluate_clv  # noqa: PLC0415
    from models.customers.evaluate_churn import evaluate_churn  # noqa: PLC0415
    from models.customers.report import format_churn, format_clv, format_segments, report_json  # noqa: PLC0415
    from models.customers.segments_evaluate import evaluate_segments  # noqa: PLC0415
    from models.datasets import COMPLETEJOURNEY, SIMULATED  # noqa: PLC0415

    if args.source not in (SIMULATED, COMPLETEJOURNEY, CDNOW):
        raise DatasetError(f"--source: --task {args.task} takes completejourney, cdnow or simulated")
    simulate: HistorySimulator | None = getattr(args, "models_simulate", None)
    with _scratch_dir() as scratch:
        history = _load(args.source, simulate, args, Path(scratch)) if args.source == SIMULATED else None
        if args.task == "clv":
            clv = evaluate_clv(args.source, history=history, cutoff=args.cutoff, seed=args.seed)
            text = format_clv(clv)
            raw = report_json(clv)
        elif args.task == "segments":
            segments = evaluate_segments(args.source, history=history, cutoff=args.cutoff, seed=args.seed)
            text = format_segments(segments)
            raw = report_json(segments)
        else:
            churn = evaluate_churn(args.source, history=history, cutoff=args.cutoff, seed=args.seed)
            text = format_churn(churn)
            raw = report_json(churn)
    print(raw.decode() if args.json else text)
    return 0


def _scratch_dir() -> tempfile.TemporaryDirectory[str]:
    import tempfile  # noqa: PLC0415 - shutil and more: not for the parser

    return tempfile.TemporaryDirectory(prefix="storeedge-models-")


def _load(
    source: str, simulate: HistorySimulator | None, args: argparse.Namespace, scratch: Path
) -> PurchaseHistory:
    from models.datasets import SIMULATED, load_source  # noqa: PLC0415

    if source != SIMULATED:
        return load_source(source)
    if simulate is None:
        raise DatasetError(
            "--source simulated: the household simulator is not wired into this command; write a history with "
            "`python -m simulators.household_history --out FILE` and pass --source FILE"
        )
    return _simulated(simulate, args, scratch)


def _simulated(simulate: HistorySimulator, args: argparse.Namespace, scratch: Path) -> PurchaseHistory:
    from models.history import load_history  # noqa: PLC0415

    if args.sim_households < 1 or args.sim_days < 60:
        raise DatasetError("--sim-households must be >= 1 and --sim-days >= 60")
    path = scratch / f"simulated-{args.seed}-{args.sim_households}-{args.sim_days}.npz"
    if not path.exists():
        simulate(path, seed=args.seed, households=args.sim_households, days=args.sim_days, start=SIM_START)
    return load_history(path)


def _shelf_history(
    simulate: HistorySimulator | None, args: argparse.Namespace, scratch: Path
) -> PurchaseHistory | None:
    """The shelf model trains on simulator ground truth whatever the household source is."""
    return _simulated(simulate, args, scratch) if simulate is not None else None


def _check_cutoff(history: PurchaseHistory, cutoff: int, text: date) -> None:
    from models.history import day_date  # noqa: PLC0415

    if not history.n_lines:
        raise TrainingError("the source has no purchase lines")
    first, last = day_date(history.first_day), day_date(history.last_day)
    if cutoff - history.first_day < 84 + 28:
        raise TrainingError(
            f"--cutoff {text}: need at least 16 weeks of history before it (history starts {first})"
        )
    if history.last_day - cutoff < 14:
        raise TrainingError(f"--cutoff {text}: need at least 14 test days after it (history ends {last})")
