"""The kiosk reads the daemon's real insights and segments documents (built by the daemon's own code)
and words them for staff without any purchase history."""

from __future__ import annotations

import msgspec

from edge.customers.insights_routes import SegmentSummary, SegmentsView
from kiosk.staff_insights import Insights, Segments, insights_text, segment_rows
from tests.edge.test_customer_insights_document import WEEKLY_MILK, build, inputs


def test_the_daemons_insights_document_is_worded_part_by_part() -> None:
    document = build(inputs(WEEKLY_MILK))
    insights = msgspec.json.decode(msgspec.json.encode(document), type=Insights)
    text = insights_text(insights, "EUR")
    for part in ("segment", "churn_risk", "lifetime_value", "opportunities"):
        assert document[part]["reasoning"] in text, part
    assert document["economic_profile"]["average_basket_value"]["reasoning"] in text
    assert document["consumption"]["categories"][0]["reasoning"] in text
    assert "no purchase history is shown" in text


def test_the_daemons_segments_keep_small_counts_hidden() -> None:
    view = SegmentsView(
        available=True, segments_version="s1", clv_horizon_days=365, min_households=10, households_scored=None,
        segments=[
            SegmentSummary(id="a", name="weekly shoppers", description="d", households=40, mean_clv=310.0,
                           churn_share=0.05, suppressed=False),
            SegmentSummary(id="b", name="rare visitors", description="d", households=None, mean_clv=None,
                           churn_share=None, suppressed=True),
        ],
        reasoning="r",
    )  # fmt: skip
    segments = msgspec.json.decode(msgspec.json.encode(view), type=Segments)
    assert segment_rows(segments, "EUR") == [
        ("weekly shoppers", "40", "€310.00", "5%"),
        ("rare visitors", "fewer than 10", "-", "-"),
    ]
