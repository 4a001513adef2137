"""Stable ids, short names and descriptions of segments, generated from their centres.

Words come from a centre's z-scores against the training population (the model's scaled units), only
about purchase behaviour: how often, how much, how broad, promotions, time of day and week, recency and
trend. The product declines inferences about health, income, family, personality or emotion, so no word
for them exists here (`FORBIDDEN_WORDS` is checked on every generated text).

Ids: without a previous model, segments are ordered by their centre's spend per week and numbered
``seg-1``.. in that order, so a refit that finds the same clusters (whatever the row order or the k-means
labels) gives the same ids. With a previous model, each new centre is matched to a previous one by the
Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) on their distance in the new scaled units;
a match closer than `MATCH_DISTANCE` keeps the previous id, anything else gets a new number.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from models.customers.segments import FEATURE_NAMES, Segment, SegmentModel
from models.errors import TrainingError

F64 = npt.NDArray[np.float64]
WORD_Z = 0.5  # a centre this many deviations from the population mean earns the feature's word
MATCH_DISTANCE = 1.5  # in scaled units (population deviations)
# feature -> (word when high, word when low, comparison when high, comparison when low)
WORDS: dict[str, tuple[str, str, str, str]] = {
    "recency_days": ("lapsing", "recently active", "longer since the last trip", "more recent last trip"),
    "trips_per_week": ("frequent", "infrequent", "more trips", "fewer trips"),
    "spend_per_week": ("high-spend", "low-spend", "higher spend", "lower spend"),
    "basket_lines": ("big-basket", "small-basket", "bigger baskets", "smaller baskets"),
    "category_breadth": ("broad-range", "narrow-range", "more categories", "fewer categories"),
    "promo_share": ("promotion-driven", "full-price", "more promoted items", "fewer promoted items"),
    "day_part": ("evening", "morning", "later in the day", "earlier in the day"),
    "weekend_share": ("weekend", "weekday", "more weekend trips", "fewer weekend trips"),
    "trend": ("growing", "declining", "spend rising", "spend falling"),
}
FORBIDDEN_WORDS = (
    "health", "ill", "diet", "income", "wealth", "rich", "poor", "afford", "family", "families", "child",
    "kid", "parent", "baby", "married", "single", "personality", "emotion", "mood", "stress", "anxious",
    "happy", "sad", "lonely", "impulsive", "age", "gender", "religio", "ethnic",
)  # fmt: skip


def frequency_word(trips_per_week: float) -> str:
    """The usual rhythm in one word, from trips per week."""
    for limit, word in (
        (2.0, "several-times-a-week"),
        (0.8, "weekly"),
        (0.4, "fortnightly"),
        (0.18, "monthly"),
    ):
        if trips_per_week >= limit:
            return word
    return "occasional"


def forbidden_in(text: str) -> list[str]:
    """The forbidden word stems that occur as the start of a word of ``text``."""
    words = [w.strip(".,;:()+-%") for w in text.lower().replace("-", " ").split()]
    return [f for f in FORBIDDEN_WORDS if any(w.startswith(f) for w in words)]


def name_segments(
    model: SegmentModel, features: F64, labels: npt.NDArray[np.int64], previous: SegmentModel | None
) -> SegmentModel:
    """``model`` with its centres ordered and its segments (id, name, description, size) filled in."""
    centres = np.asarray(model.centres, dtype=np.float64)
    spend = FEATURE_NAMES.index("spend_per_week")
    order = np.argsort(centres[:, spend], kind="stable")
    ids = _ids(model, centres[order], previous)
    used: set[str] = set()
    segments = []
    for new_index, old_index in enumerate(order):
        members = features[labels == old_index]
        typical = {
            f: float(np.median(members[:, j])) if members.size else float("nan")
            for j, f in enumerate(FEATURE_NAMES)
        }
        z = {f: float(centres[old_index, j]) for j, f in enumerate(FEATURE_NAMES) if model.weight[j] > 0}
        name = segment_name(_name_words(typical, z), used, ids[new_index])
        used.add(name)
        description = describe(typical, z)
        for text in (name, description):
            if bad := forbidden_in(text):
                raise TrainingError(f"segment text {text!r} uses declined words {bad}")
        segments.append(
            Segment(
                id=ids[new_index],
                name=name,
                description=description,
                households=int(members.shape[0]),
                typical=typical,
            )
        )
    return msgspec.structs.replace(model, centres=centres[order].tolist(), segments=segments)


def _ids(model: SegmentModel, centres: F64, previous: SegmentModel | None) -> list[str]:
    k = centres.shape[0]
    if previous is None or previous.features != model.features or not previous.segments:
        return [f"seg-{i + 1}" for i in range(k)]
    # The previous centres in the new model's scaled units (features the new model ignores are 0).
    prev = np.asarray(previous.centres) * np.asarray(previous.scale) + np.asarray(previous.mean)
    prev = (prev - np.asarray(model.mean)) / np.asarray(model.scale) * np.asarray(model.weight)
    cost = np.sqrt(((centres[:, None, :] - prev[None, :, :]) ** 2).sum(-1))
    rows, cols = linear_sum_assignment(cost)
    ids: list[str | None] = [None] * k
    for r, c in zip(rows, cols, strict=True):
        if cost[r, c] <= MATCH_DISTANCE:
            ids[r] = previous.segments[c].id
    taken = [int(s.id.removeprefix("seg-")) for s in previous.segments if s.id.removeprefix("seg-").isdigit()]
    next_number = max(taken, default=0) + 1
    out = []
    for matched in ids:
        out.append(matched or f"seg-{next_number}")
        next_number += matched is None
    return out


def _name_words(typical: dict[str, float], z: dict[str, float]) -> list[str]:
    """The rhythm word, then the words of the features furthest from the population, strongest first."""
    strong = sorted((f for f in z if abs(z[f]) >= WORD_Z and f != "trips_per_week"), key=lambda f: -abs(z[f]))
    return [frequency_word(typical["trips_per_week"])] + [WORDS[f][0 if z[f] > 0 else 1] for f in strong]


def segment_name(words: list[str], used: set[str], segment_id: str) -> str:
    """ "<rhythm> <strongest word> shoppers, <next word>", with more words until it differs from ``used``
    (the segment id when the words run out)."""
    head, rest = words[0], words[1:]
    for j in range(min(2, len(rest)), len(rest) + 1):
        name = (
            f"{head} {rest[0]} shoppers" + "".join(f", {w}" for w in rest[1:j])
            if rest
            else f"{head} shoppers"
        )
        if name not in used:
            return name
    return f"{head} shoppers ({segment_id})"


def day_part_words(day_part: float) -> str:
    """When in the day trips happen, from the evening-minus-morning share."""
    if day_part <= -0.5:
        return "mostly morning trips"
    if day_part >= 0.5:
        return "mostly evening trips"
    return "trips around midday or spread over the day"


def _amount(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def describe(typical: dict[str, float], z: dict[str, float]) -> str:
    """A sentence or two in words and typical figures: what members do, and how that compares."""
    parts = [
        f"typically {typical['trips_per_week']:.2f} trips and {_amount(typical['spend_per_week'])} spent a week, "
        f"{_amount(typical['basket_lines'])} items per basket, last trip {typical['recency_days']:.0f} days ago"
    ]
    if "category_breadth" in z:
        parts.append(f"{typical['category_breadth']:.0f} categories bought")
    if "promo_share" in z:
        parts.append(f"{100 * typical['promo_share']:.0f}% of items on promotion")
    if "day_part" in z:
        parts.append(day_part_words(typical["day_part"]))
    parts.append(f"{100 * typical['weekend_share']:.0f}% at weekends")
    strong = sorted((f for f in z if abs(z[f]) >= WORD_Z), key=lambda f: -abs(z[f]))
    compared = [f"{WORDS[f][2 if z[f] > 0 else 3]} ({z[f]:+.1f} sd)" for f in strong]
    text = "; ".join(parts) + "."
    if compared:
        text += " Compared with all households: " + ", ".join(compared) + "."
    else:
        text += " Close to the average household on every feature."
    return text[0].upper() + text[1:]
