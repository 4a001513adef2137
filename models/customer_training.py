"""Training the customer models a model set ships (issue #15): the buy-till-you-die params (trips,
P(alive), spend per trip; closed forms the edge evaluates) and the behavioural segments, each with a
card holding its held-out figures beside their baselines."""

from __future__ import annotations

from pathlib import Path

import msgspec

from models.cards import (
    CUSTOMER_PARAMS_FILE,
    CUSTOMERS_DIR,
    SEGMENTS_FILE,
    params_version,
    write_json_model,
)
from models.customers.evaluate import ClvRow
from models.customers.evaluate_churn import ChurnRow
from models.customers.scoring import CustomerModelParams
from models.customers.segments import SegmentModel
from models.errors import ModelsError, TrainingError
from models.history import PurchaseHistory, day_date

CUSTOMER_HOLDOUT_DAYS = 90  # days after the cutoff the customer models' card figures need


def train_customer_params(
    history: PurchaseHistory,
    cutoff: int,
    *,
    source: str,
    seed: int,
    data_sha256: str,
    bootstrap: int = 200,
) -> CustomerModelParams:
    """The buy-till-you-die params the store ships (`models.customers.evaluate.train_customer_model`),
    fitted on everything before ``cutoff``, with a card: version, training data and the held-out figures
    of the same candidates on the days after the cutoff (CLV: 90-day trips and spend; churn: no trip in 56
    days), next to their baselines from the same run. Without enough days after the cutoff the card says
    so instead of figures."""
    from models.customers.evaluate import evaluate_clv, train_customer_model  # noqa: PLC0415
    from models.customers.evaluate_churn import evaluate_churn  # noqa: PLC0415

    cutoff_date = day_date(cutoff)
    before = history.select(history.day < cutoff)
    if not before.n_lines:
        raise TrainingError(f"customer models: no history before the cutoff {cutoff_date}")
    measured: dict[str, object] = {}
    clv = churn = None
    if history.last_day - cutoff + 1 >= CUSTOMER_HOLDOUT_DAYS:
        clv = evaluate_clv(source, history=history, cutoff=cutoff_date, seed=seed, bootstrap=bootstrap)
        churn = evaluate_churn(source, history=history, cutoff=cutoff_date, seed=seed, bootstrap=bootstrap)
        # The card keeps the selected model's rows and the baselines (every candidate's would bloat it).
        clv = msgspec.structs.replace(clv, rows=[r for r in clv.rows if _on_card(r, clv.selected)])
        churn = msgspec.structs.replace(churn, rows=[r for r in churn.rows if _on_card(r, churn.selected)])
    else:
        measured["note"] = f"fewer than {CUSTOMER_HOLDOUT_DAYS} days after the cutoff: not measured"
    params = train_customer_model(source, history=before, clv=clv, churn=churn)
    body = msgspec.json.encode(msgspec.structs.replace(params, card={}))
    card = {
        **params.card,
        "name": "customers",
        "version": params_version(cutoff_date.isoformat(), data_sha256, body),
        "cutoff": cutoff_date.isoformat(),
        "seed": seed,
        "training_data_sha256": data_sha256,
        **({"measured": measured} if measured else {}),
    }
    return msgspec.structs.replace(params, card=card)


def write_customer_models(
    out_dir: Path, history: PurchaseHistory, cutoff: int, *, source: str, seed: int, data_sha256: str
) -> dict[str, object]:
    """Train the customer models and write ``<out_dir>/customers/params.json`` and ``segments.json``
    (behavioural segments, `models.customers.segments`); returns their cards. Data the models cannot be
    fitted on (too few households, no repeat trips) leaves them out with the reason: the edge serves a
    set without them, with the feature off."""
    cards: dict[str, object] = {}
    try:
        params = train_customer_params(history, cutoff, source=source, seed=seed, data_sha256=data_sha256)
    except ModelsError as exc:  # optional on the edge: the set ships without them, and says why
        return {"skipped": f"customer models: {exc}"}
    write_json_model(out_dir / CUSTOMERS_DIR / CUSTOMER_PARAMS_FILE, params)
    cards["params"] = params.card
    try:
        segments = train_segments(history, cutoff, source=source, seed=seed)
    except ModelsError as exc:
        cards["segments"] = {"skipped": f"segments: {exc}"}
    else:
        write_json_model(out_dir / CUSTOMERS_DIR / SEGMENTS_FILE, segments)
        cards["segments"] = msgspec.to_builtins(segments.card)
    return cards


def train_segments(history: PurchaseHistory, cutoff: int, *, source: str, seed: int) -> SegmentModel:
    """Behavioural segments fitted on the households' lines before ``cutoff`` (k chosen for stability)."""
    from models.customers.segments import (  # noqa: PLC0415 - training only
        basket_lines_from_history,
        fit_segments,
        missing_features,
        segment_features,
    )

    lines = basket_lines_from_history(history)
    end = float(cutoff) * 86_400.0
    ids, features = segment_features(lines, end)
    return fit_segments(
        ids, features, seed=seed, fitted_on=source, missing=missing_features(lines.lacks), end=end
    )


def _on_card(row: ClvRow | ChurnRow, selected: str) -> bool:
    return row.role != "model" or row.name == selected or row.name.startswith(f"{selected} ")
