"""The next-basket ranker in a retrain at central (`sync.central_retrain`): what orders the lists.

A store orders its shopping lists with the ranker when its model set has one
(``<model set>/next_basket_ranker/``, docs/models.md "Serving in the daemon"), else with the pointwise
next-basket model. A retrain therefore measures, on both sides, whatever orders the lists:

* the candidate: `candidate_ranker` trains a ranker on the chain's purchases before the cutoff the way
  `storeedge models train --task ranker` does (`models.ranker_task`: TIFU-KNN tuned before the cutoff,
  exported, and the *exported* model evaluated through onnxruntime) and writes it beside the candidate's
  other models. When the chain's purchases cannot train one (`models.errors.ModelsError`: too little
  history, a single label, the export's parity check), the candidate has none, says why, and its
  pointwise model's figures are the ones compared;
* the current set: `current_list_order` evaluates its ranker (onnxruntime, its card's feature groups
  and TIFU-KNN parameters) on the same protocols, when it has one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from models import StoreModels
from models.basket_ranker import ranker_scorer
from models.errors import ModelsError
from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling
from models.history import PurchaseHistory
from models.inference import RANKER_DIR
from models.ranker_task import run_ranker_task
from sync.central_retrain_figures import ListOrder, list_order

log = logging.getLogger(__name__)


def candidate_ranker(
    history: PurchaseHistory, cutoff_day: int, out: Path, *, seed: int, source: str
) -> tuple[ListOrder | None, str]:
    """Train, export to ``out``/next_basket_ranker/ and evaluate the candidate's ranker; (None, why) when
    the chain's purchases cannot train one (nothing is left in ``out`` then)."""
    try:
        report = run_ranker_task(history, cutoff_day, seed=seed, source=source, out_dir=out)
    except ModelsError as exc:
        shutil.rmtree(out / RANKER_DIR, ignore_errors=True)  # e.g. written, then its parity check failed
        log.warning("central_retrain_no_ranker", extra={"reason": str(exc)})
        return None, str(exc)
    part = report["next_basket_ranker"]
    return list_order(part["frozen"], part["rolling"], report["written"][RANKER_DIR]["version"]), ""


def current_list_order(history: PurchaseHistory, cutoff_day: int, models: StoreModels) -> ListOrder | None:
    """The current set's ranker on the chain's purchases after the cutoff; None: it has none."""
    ranker = models.next_basket_ranker
    if ranker is None:
        return None
    scorer = ranker_scorer(ranker.score, ranker.groups, ranker.tifu)
    frozen = evaluate_next_basket(history, cutoff_day, None, scorer=scorer)
    rolling = evaluate_next_basket_rolling(history, cutoff_day, None, scorer=scorer)
    return list_order(frozen, rolling, ranker.card.version)
