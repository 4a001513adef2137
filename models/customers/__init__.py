"""Customer intelligence: buy-till-you-die models of trips and spend per household (issue #15).

Runtime (numpy and scipy only; what the edge scores with):

    from models.customers import CustomerModelParams, score_households, churn_band

Fitting and evaluation (`models.customers.btyd`, `rfm`, `cdnow`, `evaluate`, `figures`) are imported
on demand. See docs/customer_models.md.
"""

from models.customers.btyd import GammaGamma, TripModel, fit_gamma_gamma, fit_trip_model
from models.customers.rfm import RfmSummary, history_rfm, rfm_summary
from models.customers.scoring import CustomerModelParams, HouseholdScores, churn_band, score_households

__all__ = [
    "CustomerModelParams",
    "GammaGamma",
    "HouseholdScores",
    "RfmSummary",
    "TripModel",
    "churn_band",
    "fit_gamma_gamma",
    "fit_trip_model",
    "history_rfm",
    "rfm_summary",
    "score_households",
]
