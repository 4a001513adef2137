"""Retraining at central: `storeedge central retrain --cutoff DATE` (and, through `retrain`, central's
HTTP route).

1. Read the chain's purchases from the warehouse (`sync.central_history`: households with analytics
   consent only), everything before the cutoff to train on and everything from it to today to test on.
2. Train the candidate with the pipeline of `storeedge models train` (`models.pipeline.train_models`,
   same seed and options) and evaluate it and the current models with the protocols of
   `storeedge models evaluate` (next purchase and next basket, frozen and rolling). The candidate also
   gets a next-basket ranker trained on the same purchases; the next-basket figures on either side are
   those of what orders a store's lists, the ranker where the set has one
   (`sync.central_retrain_ranker`). The current models are the newest `model` bundle in central's bundle
   directory, else the shipped `models/trained`.
3. Decide on the two primary measures (`RetrainPolicy`): the candidate is *not worse* when its
   next-basket Recall@10 (frozen) is at most ``recall_tolerance`` below the current's and its
   next-purchase Brier score of P(bought within 7 days) at most ``brier_tolerance`` above it.
4. If not worse: write the candidate's model directory (cards saying chain data, cutoff, households
   and the figures against the current version; the shelf model is the current one, unchanged, since
   it learns from shelf picks that central does not hold), and publish an `experiment` bundle, signed,
   as the next version: ``experiment.json`` (control vs ``arms/challenger``, rollout, six weeks,
   primary metric ``list_hit_rate``) and the candidate under ``arms/challenger``. The model itself is
   published as a `model` bundle only when the experiment promotes it (from ``models_dir``, central's
   ``[central] candidates_dir``, or from the experiment bundle itself).

While the newest published experiment still runs, nothing is trained (a new experiment would replace it
on every store) unless the caller says to replace it. A run that fails anywhere (too few households, a
cutoff without 16 weeks before it or 14 days after it, training, a worse candidate, signing) publishes
nothing: everything is built in a temporary
directory and `sync.bundle_signing.publish_bundle` renames the finished bundle into place. The result
is always a `RetrainReport` saying what happened and why.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.cards import CARD_FILE, read_card
from models.errors import ModelsError
from models.experiments.spec import (
    EXPERIMENT_FILE,
    Experiment,
    ExperimentArm,
    encode_experiment,
    read_experiment,
)
from models.history import PurchaseHistory, epoch_day
from models.inference import RANKER_DIR, TRAINED_DIR, load_models
from models.pipeline import Provenance, TrainOptions, export_models, train_models
from sync.bundle_signing import latest_bundles, publish_bundle, published_blob
from sync.bundle_verify import safe_extract
from sync.central_experiment_data import newest_experiments
from sync.central_history import ChainHistory, read_chain_history, zone
from sync.central_pool import RunDb
from sync.central_retrain_figures import ModelFigures, evaluate_set, set_figures, worse_than
from sync.central_retrain_ranker import candidate_ranker, current_list_order
from sync.central_rollout import next_version
from sync.errors import SyncError

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
CHALLENGER = "arms/challenger"
MAX_MODEL_BYTES = 64 * 1024 * 1024
SOURCE = "chain purchases at central (households with analytics consent)"
Decision = Literal["published", "worse", "failed"]


class RetrainError(SyncError):
    """Retraining cannot go on; the message names the option or file at fault."""


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """The rule and its thresholds (docs/experiments.md, "Retraining at central")."""

    min_households: int = 50  # consenting households with purchases before the cutoff
    min_history_days: int = 112  # as `models train`: 16 weeks before the cutoff
    min_test_days: int = 14  # and two weeks after it
    recall_tolerance: float = 0.01  # next-basket Recall@10 may be this much lower (absolute)
    brier_tolerance: float = 0.005  # next-purchase Brier at 7 days may be this much higher (absolute)
    experiment_days: int = 42
    seed: int = 0


class RetrainReport(msgspec.Struct, frozen=True, kw_only=True):
    cutoff: str
    timezone: str
    decision: Decision
    reason: str
    households: int = 0  # consenting households with purchases before the cutoff (trained on)
    baskets: int = 0  # their baskets, before the cutoff and in the test weeks
    lines: int = 0
    test_days: int = 0
    test_baskets: int = 0
    anonymous_baskets: int = 0  # left out: no household
    households_without_consent: int = 0  # left out: no analytics consent
    current: str = ""  # which models the candidate was measured against
    candidate_figures: ModelFigures | None = None
    current_figures: ModelFigures | None = None
    experiment_id: str | None = None
    bundle_version: int | None = None  # of kind `experiment`
    models_dir: str | None = None  # the candidate's models, for publishing as `model` on promotion
    no_ranker: str = ""  # why the candidate has no next-basket ranker ("" when it has one)
    seconds: float = 0.0


EXPECTED_ERRORS = (SyncError, ModelsError, OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)
_running = threading.Lock()  # one retrain per process: two would fight over the cores and the version


async def retrain(
    run: RunDb[Any],
    bundle_dir: Path,
    key: Ed25519PrivateKey,
    cutoff: date,
    *,
    models_dir: Path,
    timezone: str = "UTC",
    policy: RetrainPolicy = RetrainPolicy(),
    now_ms: int | None = None,
    replace_running: bool = False,
) -> RetrainReport:
    """Retrain on the chain's data before ``cutoff`` (read through ``run``, e.g. `CentralDb.run`) and
    publish an experiment into ``bundle_dir`` if the candidate is not worse, its models kept in
    ``models_dir/<experiment id>/``. While the newest published experiment is still running nothing is
    trained, unless ``replace_running`` (a new experiment bundle replaces it on every store). Never raises for a failed run: the report's ``decision`` is
    ``failed`` (or ``worse``) with the reason, and nothing was published or written."""
    began = time.perf_counter()
    facts: dict[str, Any] = {"cutoff": cutoff.isoformat(), "timezone": timezone}
    if not _running.acquire(blocking=False):
        return RetrainReport(**facts, decision="failed", reason="another retrain is running in this process")
    try:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if not replace_running:
            _check_no_running_experiment(bundle_dir, now)
        decision, reason = await _retrain(
            run, bundle_dir, key, cutoff, models_dir, timezone, policy, now, facts
        )
    except EXPECTED_ERRORS as exc:
        decision, reason = "failed", str(exc) or type(exc).__name__
    except Exception as exc:  # a bug must not publish either; the log keeps the traceback
        log.exception("central_retrain_error", extra={"cutoff": facts["cutoff"]})
        decision, reason = "failed", f"unexpected {type(exc).__name__}: {exc}"
    finally:
        _running.release()
    report = RetrainReport(
        **facts, decision=decision, reason=reason, seconds=round(time.perf_counter() - began, 1)
    )
    log.info(
        "central_retrain",
        extra={"cutoff": report.cutoff, "decision": decision, "reason": reason, "households": report.households,
               "experiment": report.experiment_id, "bundle_version": report.bundle_version,
               "seconds": report.seconds},
    )  # fmt: skip
    return report


async def _retrain(
    run: RunDb[Any],
    bundle_dir: Path,
    key: Ed25519PrivateKey,
    cutoff: date,
    models_dir: Path,
    timezone: str,
    policy: RetrainPolicy,
    now: int,
    facts: dict[str, Any],
) -> tuple[Decision, str]:
    today = datetime.fromtimestamp(now / 1000, zone(timezone)).date()
    chain = await run(lambda conn: read_chain_history(conn, today + timedelta(days=1), timezone=timezone))
    history, cutoff_day = chain.history, epoch_day(cutoff)
    _describe(chain, cutoff_day, facts)
    _check(history, cutoff, cutoff_day, facts["households"], policy)
    with tempfile.TemporaryDirectory(prefix="storeedge-retrain-") as scratch_name:
        scratch = Path(scratch_name)
        current_dir, facts["current"] = await asyncio.to_thread(
            _current_models, bundle_dir, scratch / "current"
        )
        experiment_dir = scratch / "experiment"
        candidate, current = await asyncio.to_thread(
            _build_candidate, history, cutoff_day, current_dir, experiment_dir / CHALLENGER, policy, facts
        )
        facts["candidate_figures"], facts["current_figures"] = candidate, current
        worse = worse_than(candidate, current, policy.recall_tolerance, policy.brier_tolerance)
        if worse:
            return "worse", "the candidate is worse than the current models: " + "; ".join(worse)
        experiment = _experiment(cutoff, history, candidate, now, policy)
        experiment_dir.joinpath(EXPERIMENT_FILE).write_bytes(encode_experiment(experiment))
        version, final = await asyncio.to_thread(
            _publish, experiment_dir, experiment.id, experiment.name, key, bundle_dir, models_dir
        )
    facts.update(experiment_id=experiment.id, bundle_version=version, models_dir=str(final))
    return "published", (
        f"not worse than the {facts['current']}: experiment {experiment.id} published as experiment v{version}"
    )


def _check_no_running_experiment(bundle_dir: Path, now_ms: int) -> None:
    published = newest_experiments(bundle_dir).values()
    newest = max(published, key=lambda p: p.version, default=None)
    if newest is not None and newest.spec.decision == "running" and newest.spec.end_ms > now_ms:
        ends = datetime.fromtimestamp(newest.spec.end_ms / 1000, zone("UTC")).date()
        raise RetrainError(
            f"experiment {newest.spec.id} (experiment v{newest.version}) runs until {ends}: a new experiment"
            " would replace it on every store (--replace-running to do so)"
        )


def _describe(chain: ChainHistory, cutoff_day: int, facts: dict[str, Any]) -> None:
    history = chain.history
    before = history.day < cutoff_day
    facts.update(
        households=len(set(history.household[before].tolist())),
        baskets=chain.baskets,
        lines=history.n_lines,
        test_days=max(0, history.last_day + 1 - cutoff_day) if history.n_lines else 0,
        test_baskets=len(set(history.basket[~before].tolist())),
        anonymous_baskets=chain.anonymous_baskets,
        households_without_consent=chain.households_without_consent,
    )


def _check(
    history: PurchaseHistory, cutoff: date, cutoff_day: int, households: int, policy: RetrainPolicy
) -> None:
    if not history.n_lines or history.first_day >= cutoff_day:
        raise RetrainError(f"--cutoff {cutoff}: no purchases of consenting households before it")
    if cutoff_day - history.first_day < policy.min_history_days:
        raise RetrainError(
            f"--cutoff {cutoff}: need {policy.min_history_days} days of purchases before it, found"
            f" {cutoff_day - history.first_day}"
        )
    if history.last_day + 1 - cutoff_day < policy.min_test_days:
        raise RetrainError(
            f"--cutoff {cutoff}: need {policy.min_test_days} days of purchases after it to evaluate on, found"
            f" {max(0, history.last_day + 1 - cutoff_day)}"
        )
    if households < policy.min_households:
        raise RetrainError(
            f"--cutoff {cutoff}: only {households} households with analytics consent bought before it;"
            f" retraining needs {policy.min_households}"
        )


def _current_models(bundle_dir: Path, unpack_to: Path) -> tuple[Path, str]:
    """The newest `model` bundle, unpacked, or the shipped models when central has published none."""
    manifest = next((m for m in latest_bundles(bundle_dir) if m.kind == "model"), None)
    if manifest is None:
        return TRAINED_DIR, "shipped models"
    safe_extract(published_blob(bundle_dir, "model", manifest.version), unpack_to, max_bytes=MAX_MODEL_BYTES)
    return unpack_to, f"model bundle v{manifest.version}"


def _build_candidate(
    history: PurchaseHistory,
    cutoff_day: int,
    current_dir: Path,
    out: Path,
    policy: RetrainPolicy,
    facts: dict[str, Any],
) -> tuple[ModelFigures, ModelFigures]:
    """Train, evaluate both model sets and write the candidate's models to ``out`` (blocking: a thread)."""
    trained = train_models(history, cutoff_day, TrainOptions(seed=policy.seed))
    report = evaluate_set(history, cutoff_day, trained.next_purchase.hazard, trained.next_basket.probability)
    current = load_models(current_dir)
    current_figures = set_figures(
        evaluate_set(
            history,
            cutoff_day,
            current.next_purchase.hazard,
            lambda x: current.next_basket.score(x).probability,
        ),
        current.next_purchase.card.version,
        current.next_basket.card.version,
        current_list_order(history, cutoff_day, current),
    )
    provenance = Provenance(source=SOURCE, cutoff=cutoff_day, seed=policy.seed, data_sha256=history.sha256())
    cards = export_models(trained, report, out, provenance, history)
    ranker, facts["no_ranker"] = candidate_ranker(history, cutoff_day, out, seed=policy.seed, source=SOURCE)
    candidate_figures = set_figures(
        report, cards["next_purchase"].version, cards["next_basket"].version, ranker
    )
    shutil.copytree(current_dir / "shelf_depletion", out / "shelf_depletion")
    against = {
        "current": facts["current"],
        "candidate": msgspec.to_builtins(candidate_figures),
        "current_figures": msgspec.to_builtins(current_figures),
    }
    chain = {
        "training_households": facts["households"],
        "baskets": facts["baskets"],
        "timezone": facts["timezone"],
        "consent": "analytics",
    }
    for name in ("next_purchase", "next_basket", *([RANKER_DIR] if ranker is not None else [])):
        card = read_card(out / name / CARD_FILE)
        card = msgspec.structs.replace(
            card, params={**card.params, **chain}, metrics={**card.metrics, "against_current": against}
        )
        (out / name / CARD_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(card), indent=2) + b"\n")
    load_models(out)  # the cards still match their models, and all three load
    return candidate_figures, current_figures


def _experiment(
    cutoff: date, history: PurchaseHistory, candidate: ModelFigures, now_ms: int, policy: RetrainPolicy
) -> Experiment:
    versions = f"{candidate.next_purchase_version}:{candidate.next_basket_version}:{candidate.next_basket_ranker_version}"
    fresh = f"{history.sha256()}:{versions}:{now_ms}"
    return Experiment(
        id=f"retrain-{cutoff.isoformat()}-{hashlib.sha256(fresh.encode()).hexdigest()[:8]}",
        name=f"models retrained on the chain's purchases before {cutoff.isoformat()}",
        arms=[ExperimentArm(key="control"), ExperimentArm(key="challenger", models=CHALLENGER)],
        start_ms=now_ms,
        end_ms=now_ms + policy.experiment_days * DAY_MS,
        primary_metric="list_hit_rate",
        secondary_metrics=["brier_7d", "mae_days"],
        rollout=True,
        decided_by="central",  # central trained it and holds the key: it decides over every store
    )


def _publish(
    experiment_dir: Path,
    experiment_id: str,
    notes: str,
    key: Ed25519PrivateKey,
    bundle_dir: Path,
    models_dir: Path,
) -> tuple[int, Path]:
    """Check the bundle as the store will (`edge.uplink.bundle_checks.check_experiment`), stage the
    candidate's models, publish the experiment as the next version, then move the models into place. A
    failure before the publish leaves ``models_dir`` as it was."""
    spec = read_experiment(experiment_dir)
    for arm in spec.arms:
        if arm.models is not None:
            load_models(experiment_dir / arm.models)
    version = next_version(bundle_dir, "experiment")
    created = not models_dir.exists()
    staged = models_dir / f".{experiment_id}.tmp"
    try:
        shutil.copytree(experiment_dir / CHALLENGER, staged)
        publish_bundle(key, "experiment", version, experiment_dir, bundle_dir, notes=notes)
    except BaseException:
        shutil.rmtree(models_dir if created else staged, ignore_errors=True)
        raise
    final = models_dir / experiment_id
    staged.rename(final)
    return version, final


__all__ = ["ModelFigures", "RetrainError", "RetrainPolicy", "RetrainReport", "retrain"]
