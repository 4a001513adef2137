"""Customer intelligence: buy-till-you-die models of trips and spend per household (issue #15).

Runtime (numpy and scipy only; what the edge scores with):

    from models.customers import CustomerModelParams, score_households, spend_inputs, churn_band
    from models.customers import SpendForecast  # the direct 90-day spend forecast (params.spend_forecast)
    from models.customers import BasketLines, SegmentModel, segment_features, assign  # segments

Fitting and evaluation (`models.customers.btyd`, `rfm`, `cdnow`, `evaluate`, `figures`) are imported
on demand. See docs/customer_models.md.
"""

from models.customers.btyd import GammaGamma, TripModel, fit_gamma_gamma, fit_trip_model
from models.customers.forecast import SpendForecast
from models.customers.rfm import RfmSummary, history_rfm, rfm_summary
from models.customers.scoring import (
    CustomerModelParams,
    HouseholdScores,
    churn_band,
    score_households,
    spend_inputs,
)
from models.customers.segments import (
    BasketLines,
    Segment,
    SegmentModel,
    assign,
    fit_segments,
    segment_features,
    segment_model_from_json,
    segment_model_to_json,
)

__all__ = [
    "BasketLines",
    "CustomerModelParams",
    "GammaGamma",
    "HouseholdScores",
    "RfmSummary",
    "Segment",
    "SegmentModel",
    "SpendForecast",
    "TripModel",
    "assign",
    "churn_band",
    "fit_gamma_gamma",
    "fit_segments",
    "fit_trip_model",
    "history_rfm",
    "rfm_summary",
    "score_households",
    "segment_features",
    "segment_model_from_json",
    "segment_model_to_json",
    "spend_inputs",
]
