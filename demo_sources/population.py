"""Latent customer population of the demo: traits, subscription timelines and churn.

Every source product of the demo is drawn from the same per-chunk population so
that the domains tell one consistent story (a customer's usage, tickets and
payments all follow from its latent engagement, satisfaction and payment
reliability). The population of chunk ``i`` is recomputed, identically, by each
product from ``numpy.random.default_rng([seed, i, 0])``; products never need each
other's output and memory stays bounded by one chunk.

The churn story: a churn hazard (a logit) combines latent engagement,
satisfaction and payment reliability with plan, seats, discount, tenure and the
annual renewal date, plus unexplained noise. Customers drawn to churn before the
feature cutoff are history; among customers active at the cutoff, those drawn
to churn cancel inside the label window ``[cutoff, cutoff + label_window_days)``.
No observed column carries the label: models have to infer the latent traits
from usage, tickets, payments and subscription facts seen before the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from demo_sources.arrays import MICROSECONDS_PER_DAY, add_months, months_between

if TYPE_CHECKING:
    from demo_sources.generator import DemoConfig

NO_END = np.iinfo(np.int64).max
"""Sentinel timestamp for "not canceled (as far as the data knows)"."""

MAX_SUBSCRIPTIONS = 4
"""At most this many subscriptions per customer (the first plus three plan changes)."""

LIST_PRICE_PER_SEAT_USD = np.array([12.0, 35.0, 75.0])  # basic, pro, enterprise, per month
PLAN_CHANGES_PER_YEAR = 0.3
MAX_SEATS = 100_000
DISCOUNT_RATES = np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
REASON_PLAN_CHANGE, REASON_CUSTOMER_REQUEST, REASON_NON_PAYMENT = 0, 1, 2

# Churn hazard (logit). The intercept is calibrated so that about a fifth of the
# customers active at the default cutoff cancel within the 90-day label window.
_HAZARD_INTERCEPT = -1.45
_HAZARD_ENGAGEMENT = -1.1
_HAZARD_DISENGAGED = 1.0  # extra hazard below an engagement threshold (non-linear)
_DISENGAGED_BELOW = -0.8
_HAZARD_ONBOARDING = 0.6  # extra hazard in the first months (non-linear)
_ONBOARDING_DAYS = 120
_HAZARD_SATISFACTION = -0.9
_HAZARD_PAYMENT_RELIABILITY = -0.7
_HAZARD_PLAN = np.array([0.45, 0.0, -0.6])
_HAZARD_LOG_SEATS = -0.15
_HAZARD_DISCOUNT = 1.5
_HAZARD_LOG_TENURE = -0.35
_HAZARD_MONTHLY = 0.2
_HAZARD_ANNUAL_RENEWAL_IN_WINDOW = 0.4
_HAZARD_ANNUAL_NO_RENEWAL = -1.0
_HAZARD_NOISE = 0.4
_PRE_CUTOFF_SHIFT = -0.5


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(weights.size, size=size, p=weights / weights.sum()).astype(np.int16)


@dataclass(frozen=True)
class Population:
    """One chunk of customers. Arrays of shape ``(n,)`` or ``(n, MAX_SUBSCRIPTIONS)``.

    Timestamps are epoch microseconds (UTC); ``NO_END`` marks "no end".
    """

    customer_numbers: np.ndarray
    country: np.ndarray
    industry: np.ndarray
    acquisition_channel: np.ndarray
    engagement: np.ndarray
    satisfaction: np.ndarray
    payment_reliability: np.ndarray
    company_size: np.ndarray
    signed_up_at: np.ndarray
    is_annual: np.ndarray
    segment_valid: np.ndarray
    segment_start: np.ndarray
    segment_end: np.ndarray
    segment_plan: np.ndarray
    segment_seats: np.ndarray
    segment_discount: np.ndarray
    segment_price: np.ndarray
    segment_reason: np.ndarray
    churned_at: np.ndarray
    is_active_at_cutoff: np.ndarray
    has_churned: np.ndarray

    @property
    def size(self) -> int:
        return int(self.customer_numbers.size)

    @property
    def last_segment(self) -> np.ndarray:
        """Index of each customer's latest subscription."""
        return self.segment_valid.sum(axis=1) - 1


def simulate_population(config: DemoConfig, chunk_index: int) -> Population:
    """Draw the population of customer chunk ``chunk_index`` (deterministic)."""
    first, stop = config.chunk_bounds(chunk_index)
    n = stop - first
    rng = np.random.default_rng([config.seed, chunk_index, 0])
    cutoff = config.cutoff_us
    data_end = config.data_end_us
    day = MICROSECONDS_PER_DAY

    customer_numbers = np.arange(first + 1, stop + 1, dtype=np.int64)
    country = _choice(rng, np.array([30, 12, 9, 6, 4, 4, 4, 3, 6, 5, 6, 7, 4], float), n)
    industry = _choice(rng, np.array([25, 14, 12, 10, 8, 12, 9, 10], float), n)
    channel = _choice(rng, np.array([35, 20, 12, 15, 18], float), n)
    engagement, satisfaction, payment_reliability, company_size, hazard_noise = rng.standard_normal((5, n))

    tenure_days = np.clip(np.exp(rng.normal(np.log(420.0), 0.95, n)), 0.5, 6 * 365.0)
    signed_up_at = cutoff - (tenure_days * day).astype(np.int64)

    # First subscription: company size (and a sales-led acquisition) drive plan and seats.
    size_score = company_size + np.where(channel == 3, 1.0, np.where(channel == 2, 0.5, 0.0))
    plan = np.digitize(size_score + rng.normal(0, 0.5, n), [0.35, 1.45]).astype(np.int16)
    seats = np.clip(
        np.rint(np.exp(0.8 + 0.75 * company_size + 0.9 * plan + rng.normal(0, 0.5, n))), 1, 20_000
    )
    is_annual = rng.random(n) < _sigmoid(-1.2 + 0.8 * plan + 0.3 * company_size)
    has_discount = rng.random(n) < _sigmoid(-1.2 + 0.7 * (channel == 3) + 0.3 * plan)
    discount = np.where(has_discount, DISCOUNT_RATES[rng.integers(0, DISCOUNT_RATES.size, n)], 0.0)

    # Plan changes: up to MAX_SUBSCRIPTIONS - 1, at sorted random times after the first month.
    lifetime_days = (data_end - signed_up_at) / day
    change_count = np.minimum(
        rng.poisson(PLAN_CHANGES_PER_YEAR * lifetime_days / 365.0), MAX_SUBSCRIPTIONS - 1
    )
    change_count[lifetime_days <= 31] = 0
    changes = signed_up_at[:, None] + (
        (30 + rng.random((n, MAX_SUBSCRIPTIONS - 1)) * np.maximum(lifetime_days - 31, 0)[:, None]) * day
    ).astype(np.int64)
    slots = np.arange(MAX_SUBSCRIPTIONS - 1)[None, :]
    changes = np.sort(np.where(slots < change_count[:, None], changes, NO_END), axis=1)
    segment_start = np.concatenate([signed_up_at[:, None], changes], axis=1)
    segment_valid = segment_start != NO_END

    segment_plan = np.empty((n, MAX_SUBSCRIPTIONS), dtype=np.int16)
    segment_seats = np.empty((n, MAX_SUBSCRIPTIONS), dtype=np.float64)
    segment_discount = np.empty((n, MAX_SUBSCRIPTIONS), dtype=np.float64)
    segment_plan[:, 0], segment_seats[:, 0], segment_discount[:, 0] = plan, seats, discount
    steps = rng.random((n, MAX_SUBSCRIPTIONS))
    seat_factors = np.exp(rng.normal(0.1, 0.3, (n, MAX_SUBSCRIPTIONS)))
    keeps_discount = rng.random((n, MAX_SUBSCRIPTIONS)) < 0.6
    for k in range(1, MAX_SUBSCRIPTIONS):  # loops over subscription slots, not rows
        step = np.where(steps[:, k] < 0.45, 1, np.where(steps[:, k] < 0.7, -1, 0))
        segment_plan[:, k] = np.clip(segment_plan[:, k - 1] + step, 0, 2)
        segment_seats[:, k] = np.clip(np.rint(segment_seats[:, k - 1] * seat_factors[:, k]), 1, MAX_SEATS)
        segment_discount[:, k] = np.where(keeps_discount[:, k], segment_discount[:, k - 1], 0.0)
    segment_price = np.round(
        segment_seats * LIST_PRICE_PER_SEAT_USD[segment_plan] * (1.0 - segment_discount), 2
    )

    # The subscription in force at the cutoff, and its next annual renewal.
    current = (segment_valid & (segment_start < cutoff)).sum(axis=1) - 1
    rows = np.arange(n)
    current_start = segment_start[rows, current]
    start_day = current_start // day
    cutoff_day = cutoff // day
    years_elapsed = months_between(start_day, np.full(n, cutoff_day - 1)) // 12
    renewal_day = add_months(start_day, 12 * (years_elapsed + 1))
    renewal_at = renewal_day * day + current_start % day
    renews_in_window = is_annual & (renewal_at >= cutoff) & (renewal_at < data_end)

    hazard = (
        _HAZARD_INTERCEPT
        + _HAZARD_ENGAGEMENT * engagement
        + _HAZARD_DISENGAGED * (engagement < _DISENGAGED_BELOW)
        + _HAZARD_SATISFACTION * satisfaction
        + _HAZARD_PAYMENT_RELIABILITY * payment_reliability
        + _HAZARD_PLAN[segment_plan[rows, current]]
        + _HAZARD_LOG_SEATS * np.log(segment_seats[rows, current])
        + _HAZARD_DISCOUNT * segment_discount[rows, current]
        + _HAZARD_LOG_TENURE * np.log1p(tenure_days / 90.0)
        + _HAZARD_ONBOARDING * (tenure_days < _ONBOARDING_DAYS)
        + np.where(
            is_annual,
            np.where(renews_in_window, _HAZARD_ANNUAL_RENEWAL_IN_WINDOW, _HAZARD_ANNUAL_NO_RENEWAL),
            _HAZARD_MONTHLY,
        )
        + _HAZARD_NOISE * hazard_noise
    )

    # History: some customers already left before the cutoff (they are not scored).
    pre_cutoff_probability = _sigmoid(hazard + _PRE_CUTOFF_SHIFT) * np.minimum(1.0, tenure_days / 365.0)
    churns_before_cutoff = (rng.random(n) < pre_cutoff_probability) & (tenure_days > 14)
    pre_cutoff_at = signed_up_at + ((14 + rng.random(n) * np.maximum(tenure_days - 14, 0)) * day).astype(
        np.int64
    )
    pre_cutoff_at = np.minimum(pre_cutoff_at, cutoff - 1)
    # Label window: annual customers leave at renewal, monthly ones at any time.
    churns_in_window = ~churns_before_cutoff & (rng.random(n) < _sigmoid(hazard))
    in_window_at = cutoff + (rng.random(n) * (data_end - cutoff)).astype(np.int64)
    in_window_at = np.where(renews_in_window, renewal_at, in_window_at)
    churned_at = np.where(
        churns_before_cutoff, pre_cutoff_at, np.where(churns_in_window, in_window_at, NO_END)
    )

    # Subscriptions starting after the churn never happen; each one ends where the next starts.
    segment_valid &= segment_start < churned_at[:, None]
    next_start = np.concatenate([segment_start[:, 1:], np.full((n, 1), NO_END, dtype=np.int64)], axis=1)
    next_valid = np.concatenate([segment_valid[:, 1:], np.zeros((n, 1), dtype=bool)], axis=1)
    segment_end = np.where(next_valid, next_start, churned_at[:, None])
    final_reason = np.where(
        (payment_reliability < -1.2) & (rng.random(n) < 0.7),
        REASON_NON_PAYMENT,
        REASON_CUSTOMER_REQUEST,
    )
    segment_reason = np.where(
        next_valid,
        REASON_PLAN_CHANGE,
        np.where(segment_end == NO_END, -1, final_reason[:, None]),
    ).astype(np.int16)

    is_active_at_cutoff = churned_at >= cutoff
    has_churned = is_active_at_cutoff & (churned_at < data_end)
    return Population(
        customer_numbers=customer_numbers,
        country=country,
        industry=industry,
        acquisition_channel=channel,
        engagement=engagement,
        satisfaction=satisfaction,
        payment_reliability=payment_reliability,
        company_size=company_size,
        signed_up_at=signed_up_at,
        is_annual=is_annual,
        segment_valid=segment_valid,
        segment_start=segment_start,
        segment_end=segment_end,
        segment_plan=segment_plan,
        segment_seats=segment_seats.astype(np.int32),
        segment_discount=segment_discount,
        segment_price=segment_price,
        segment_reason=segment_reason,
        churned_at=churned_at,
        is_active_at_cutoff=is_active_at_cutoff,
        has_churned=has_churned,
    )
