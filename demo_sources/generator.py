"""Deterministic, streaming generator of the demo's six source products.

>>> from demo_sources.generator import DemoConfig, iter_product
>>> config = DemoConfig(customers=1_000)
>>> tables = list(iter_product("usage_events", config))  # one Arrow table per customer chunk

Customers are split into chunks of ``chunk_customers``; each product is drawn
chunk by chunk from the chunk's latent population
(:func:`demo_sources.population.simulate_population`, seeded with
``[seed, chunk, 0]``) and the product's own stream (``[seed, chunk, 1 + product
index]``). Products are therefore independent of each other and of the order in
which they are generated, memory is bounded by one chunk whatever the scale, and
everything is vectorised numpy. The same ``(customers, seed, chunk_customers,
dates)`` always gives identical tables; changing ``chunk_customers`` changes the
random streams and so the data (not its statistics).

Time: the data is an extract taken at ``feature_cutoff_date + label_window_days``
(the "data end"); activity is generated from ``history_days`` before the cutoff
(subscriptions and signups may be older) up to each customer's cancellation or
the data end. The cutoff instant is ``feature_cutoff_date`` at 00:00 UTC:
features use what happened strictly before it, the churn label is a final
cancellation in ``[cutoff, cutoff + label_window_days)``.

Shape: each product's columns, their types and the values of its categorical
columns come from the product's contract (:mod:`demo_sources.schemas`); the
generator only decides how the rows are drawn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datamesh.contracts import ContractRegistry
from datamesh.errors import UnknownProductError, did_you_mean
from demo_sources.arrays import (
    MICROSECONDS_PER_DAY,
    add_months,
    categorical,
    dates,
    fixed_width_ids,
    int32s,
    sequence_within_groups,
    timestamps,
)
from demo_sources.population import NO_END, Population, simulate_population
from demo_sources.schemas import SourceSchema, project_contracts

SOURCE_PRODUCTS: tuple[str, ...] = (
    "customers",
    "subscriptions",
    "invoices",
    "payments",
    "usage_events",
    "tickets",
)
"""The source products the generator writes: its own declaration, not derived from the
contracts. A contract says what a product looks like, not who produces it (a source
product fed from files has no lineage inputs either), and a product's position here
seeds its random stream, so append new products at the end to keep existing data
sets unchanged. ``tests/unit/demo`` checks that each is a contracted source product."""

_EPOCH = dt.date(1970, 1, 1)
_HOUR = 3_600_000_000
_MAX_CUSTOMERS = 99_999_999  # customer ids are C + 8 digits


@dataclass(frozen=True)
class DemoConfig:
    """Scale, seed and calendar of a demo data set."""

    customers: int = 50_000
    seed: int = 42
    feature_cutoff_date: dt.date = dt.date(2026, 6, 30)
    label_window_days: int = 90
    history_days: int = 365
    chunk_customers: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.customers <= _MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 1 and {_MAX_CUSTOMERS:,}, got {self.customers}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.chunk_customers < 1:
            raise ValueError(f"chunk_customers must be at least 1, got {self.chunk_customers}")
        if self.label_window_days < 1 or self.history_days < 1:
            raise ValueError(
                "label_window_days and history_days must be at least 1, got "
                f"{self.label_window_days} and {self.history_days}"
            )
        if not isinstance(self.feature_cutoff_date, dt.date) or isinstance(
            self.feature_cutoff_date, dt.datetime
        ):
            raise ValueError(f"feature_cutoff_date must be a datetime.date, got {self.feature_cutoff_date!r}")

    @property
    def chunk_count(self) -> int:
        return -(-self.customers // self.chunk_customers)

    def chunk_bounds(self, chunk_index: int) -> tuple[int, int]:
        """Zero-based ``[first, stop)`` customer positions of a chunk."""
        if not 0 <= chunk_index < self.chunk_count:
            raise ValueError(f"chunk_index must be in [0, {self.chunk_count}), got {chunk_index}")
        first = chunk_index * self.chunk_customers
        return first, min(first + self.chunk_customers, self.customers)

    @property
    def cutoff_us(self) -> int:
        """The feature cutoff instant (00:00 UTC of ``feature_cutoff_date``), epoch microseconds."""
        return (self.feature_cutoff_date - _EPOCH).days * MICROSECONDS_PER_DAY

    @property
    def window_start_us(self) -> int:
        """Start of the generated activity history."""
        return self.cutoff_us - self.history_days * MICROSECONDS_PER_DAY

    @property
    def data_end_us(self) -> int:
        """End of the label window, the instant the extract is taken."""
        return self.cutoff_us + self.label_window_days * MICROSECONDS_PER_DAY


def iter_product(
    product_id: str, config: DemoConfig, contracts: ContractRegistry | None = None
) -> Iterator[pa.Table]:
    """Yield one Arrow table per customer chunk, in customer order.

    Every table has exactly the Arrow schema of the product's contract and its
    categorical columns take the contract's accepted values; tables may be empty.
    ``contracts`` defaults to the project's ``data_products/``: pass the registry the
    tables will be published against.
    """
    builder = _builder(product_id)
    registry = project_contracts() if contracts is None else contracts
    schema = SourceSchema.of(registry.get(product_id))
    for chunk_index in range(config.chunk_count):
        population = simulate_population(config, chunk_index)
        rng = np.random.default_rng([config.seed, chunk_index, 1 + SOURCE_PRODUCTS.index(product_id)])
        yield schema.table(builder(population, config, chunk_index, rng, schema))


_Builder = Callable[[Population, DemoConfig, int, np.random.Generator, SourceSchema], dict[str, pa.Array]]


def _builder(product_id: str) -> _Builder:
    builders = {
        "customers": _customers,
        "subscriptions": _subscriptions,
        "invoices": _invoices,
        "payments": _payments,
        "usage_events": _usage_events,
        "tickets": _tickets,
    }
    if product_id not in builders:
        raise UnknownProductError(
            f"The demo generator has no product '{product_id}'; it generates "
            f"{', '.join(SOURCE_PRODUCTS)}.{did_you_mean(str(product_id), SOURCE_PRODUCTS)}"
        )
    return builders[product_id]


def _customer_ids(population: Population, rows: np.ndarray | None = None) -> pa.StringArray:
    numbers = population.customer_numbers if rows is None else population.customer_numbers[rows]
    return fixed_width_ids("C", numbers, 8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -- crm.customers ----------------------------------------------------------------------


_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example")


def _customers(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    rows = np.arange(population.size)
    last = population.last_segment
    domain = rng.integers(0, len(_EMAIL_DOMAINS), population.size)
    emails = pc.binary_join_element_wise(
        fixed_width_ids("user", population.customer_numbers, 8), categorical(_EMAIL_DOMAINS, domain), "@"
    )
    return {
        "customer_id": _customer_ids(population),
        "email": emails,
        "country_code": schema.categorical("country_code", population.country),
        "industry": schema.categorical("industry", population.industry),
        "acquisition_channel": schema.categorical("acquisition_channel", population.acquisition_channel),
        "plan": schema.categorical("plan", population.segment_plan[rows, last]),
        "seats": int32s(population.segment_seats[rows, last]),
        "signed_up_at": timestamps(population.signed_up_at),
    }


# -- billing.subscriptions --------------------------------------------------------------


@dataclass(frozen=True)
class _Subscriptions:
    """Valid subscriptions of a chunk, flattened in (customer, start) order."""

    customer: np.ndarray
    slot: np.ndarray
    started_at: np.ndarray
    ended_at: np.ndarray
    plan: np.ndarray
    seats: np.ndarray
    discount: np.ndarray
    price: np.ndarray
    reason: np.ndarray
    is_annual: np.ndarray

    @classmethod
    def of(cls, population: Population) -> _Subscriptions:
        customer, slot = np.nonzero(population.segment_valid)
        return cls(
            customer=customer,
            slot=slot,
            started_at=population.segment_start[customer, slot],
            ended_at=population.segment_end[customer, slot],
            plan=population.segment_plan[customer, slot],
            seats=population.segment_seats[customer, slot],
            discount=population.segment_discount[customer, slot],
            price=population.segment_price[customer, slot],
            reason=population.segment_reason[customer, slot],
            is_annual=population.is_annual[customer],
        )

    def ids(self, population: Population) -> pa.StringArray:
        return fixed_width_ids("S", population.customer_numbers[self.customer] * 100 + self.slot, 10)


def _subscriptions(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    subs = _Subscriptions.of(population)
    return {
        "subscription_id": subs.ids(population),
        "customer_id": _customer_ids(population, subs.customer),
        "plan": schema.categorical("plan", subs.plan),
        "billing_period": schema.categorical("billing_period", subs.is_annual.astype(np.int8)),
        "seats": int32s(subs.seats),
        "monthly_price_usd": pa.array(subs.price, type=pa.float64()),
        "discount_rate": pa.array(subs.discount, type=pa.float64()),
        "started_at": timestamps(subs.started_at),
        "canceled_at": timestamps(
            np.where(subs.ended_at == NO_END, 0, subs.ended_at), mask=subs.ended_at == NO_END
        ),
        "cancellation_reason": schema.categorical(
            "cancellation_reason", np.maximum(subs.reason, 0), mask=subs.reason < 0
        ),
    }


# -- billing.invoices and billing.payments ----------------------------------------------

_MAX_ATTEMPTS = 4
_RETRY_DAYS = 3
_VOID_PROBABILITY = 0.004
_REFUND_PROBABILITY = 0.012
# codes into the accepted values of invoices.status: open, paid, void, uncollectible
_OPEN, _PAID, _VOID, _UNCOLLECTIBLE = 0, 1, 2, 3


@dataclass(frozen=True)
class _Billing:
    """Invoices of a chunk and the outcome of their payment attempts."""

    subscription: np.ndarray  # index into _Subscriptions
    customer: np.ndarray
    sequence: np.ndarray
    issued_at: np.ndarray
    period_start_day: np.ndarray
    next_period_day: np.ndarray
    due_day: np.ndarray
    amount: np.ndarray
    status: np.ndarray
    paid_at: np.ndarray  # NO_END when unpaid
    failed_attempts: np.ndarray  # leading failed attempts, 0.._MAX_ATTEMPTS
    attempt_at: np.ndarray  # (invoices, _MAX_ATTEMPTS)
    attempt_exists: np.ndarray  # (invoices, _MAX_ATTEMPTS)


def _billing(population: Population, config: DemoConfig, chunk_index: int) -> _Billing:
    """Invoice every billing period that overlaps the history window, then collect payment.

    Drawn from the invoices stream, so invoices and payments agree whichever is generated.
    """
    rng = np.random.default_rng([config.seed, chunk_index, 1 + SOURCE_PRODUCTS.index("invoices")])
    day = MICROSECONDS_PER_DAY
    subs = _Subscriptions.of(population)
    step = np.where(subs.is_annual, 12, 1)
    start_day = subs.started_at // day
    time_of_day = subs.started_at % day
    ends = np.minimum(subs.ended_at, config.data_end_us)
    window_start_day = config.window_start_us // day
    # Candidate period numbers k (a conservative range), filtered exactly below.
    first_k = np.maximum(0, (window_start_day - start_day) // (31 * step) - 1)
    last_k = (ends - subs.started_at) // (28 * step * day) + 1
    counts = np.maximum(last_k - first_k + 1, 0)
    sub = np.repeat(np.arange(subs.customer.size), counts)
    k = first_k[sub] + sequence_within_groups(sub, subs.customer.size)
    period_start_day = add_months(start_day[sub], k * step[sub])
    next_period_day = add_months(start_day[sub], (k + 1) * step[sub])
    issued_at = period_start_day * day + time_of_day[sub]
    keep = (issued_at < ends[sub]) & (next_period_day > window_start_day)
    sub, period_start_day, next_period_day, issued_at = (
        sub[keep],
        period_start_day[keep],
        next_period_day[keep],
        issued_at[keep],
    )
    customer = subs.customer[sub]
    count = sub.size

    amount = np.round(subs.price[sub] * step[sub], 2)
    due_day = period_start_day + np.where(subs.is_annual[sub], 30, 14)
    failure_probability = _sigmoid(-3.3 - 1.5 * population.payment_reliability[customer])
    is_void = rng.random(count) < _VOID_PROBABILITY
    fails = rng.random((count, _MAX_ATTEMPTS)) < failure_probability[:, None]
    failed_attempts = np.cumprod(fails, axis=1).sum(axis=1)
    attempt_at = (
        issued_at[:, None]
        + np.arange(_MAX_ATTEMPTS)[None, :] * _RETRY_DAYS * day
        + rng.integers(0, 6 * _HOUR, (count, _MAX_ATTEMPTS))
    )
    attempt_exists = (
        (np.arange(_MAX_ATTEMPTS)[None, :] <= failed_attempts[:, None])
        & ~is_void[:, None]
        & (attempt_at < config.data_end_us)
    )
    rows = np.arange(count)
    success = np.minimum(failed_attempts, _MAX_ATTEMPTS - 1)
    is_paid = (failed_attempts < _MAX_ATTEMPTS) & attempt_exists[rows, success]
    paid_at = np.where(is_paid, attempt_at[rows, success], NO_END)
    gave_up = (failed_attempts == _MAX_ATTEMPTS) & attempt_exists[:, -1]
    status = np.select([is_void, is_paid, gave_up], [_VOID, _PAID, _UNCOLLECTIBLE], _OPEN)
    return _Billing(
        subscription=sub,
        customer=customer,
        sequence=sequence_within_groups(customer, population.size),
        issued_at=issued_at,
        period_start_day=period_start_day,
        next_period_day=next_period_day,
        due_day=due_day,
        amount=amount,
        status=status,
        paid_at=paid_at,
        failed_attempts=failed_attempts,
        attempt_at=attempt_at,
        attempt_exists=attempt_exists,
    )


def _invoice_ids(population: Population, billing: _Billing, rows: np.ndarray | None = None) -> pa.StringArray:
    customer = billing.customer if rows is None else billing.customer[rows]
    sequence = billing.sequence if rows is None else billing.sequence[rows]
    return fixed_width_ids("I", population.customer_numbers[customer] * 10_000 + sequence, 12)


def _invoices(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    billing = _billing(population, config, chunk_index)
    subs = _Subscriptions.of(population)
    unpaid = billing.paid_at == NO_END
    return {
        "invoice_id": _invoice_ids(population, billing),
        "subscription_id": fixed_width_ids(
            "S",
            population.customer_numbers[billing.customer] * 100 + subs.slot[billing.subscription],
            10,
        ),
        "customer_id": _customer_ids(population, billing.customer),
        "issued_at": timestamps(billing.issued_at),
        "due_date": dates(billing.due_day),
        "period_start_date": dates(billing.period_start_day),
        "period_end_date": dates(billing.next_period_day - 1),
        "amount_usd": pa.array(billing.amount, type=pa.float64()),
        "status": schema.categorical("status", billing.status),
        "paid_at": timestamps(np.where(unpaid, 0, billing.paid_at), mask=unpaid),
    }


def _payments(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    billing = _billing(population, config, chunk_index)
    invoice, attempt = np.nonzero(billing.attempt_exists)
    customer = billing.customer[invoice]
    count = invoice.size

    first_plan = population.segment_plan[:, 0]
    bank_share = np.array([0.08, 0.15, 0.5])[first_plan]
    method_draw = rng.random(population.size)
    method = np.where(method_draw < bank_share, 1, np.where(method_draw < bank_share + 0.1, 2, 0))

    failed = attempt < billing.failed_attempts[invoice]
    refunded = ~failed & (rng.random(count) < _REFUND_PROBABILITY)
    status = np.where(failed, 1, np.where(refunded, 2, 0))
    failure_reason = rng.choice(4, size=count, p=[0.45, 0.3, 0.15, 0.1])
    return {
        "payment_id": fixed_width_ids(
            "P",
            population.customer_numbers[customer] * 100_000
            + sequence_within_groups(customer, population.size),
            13,
        ),
        "invoice_id": _invoice_ids(population, billing, invoice),
        "customer_id": _customer_ids(population, customer),
        "attempted_at": timestamps(billing.attempt_at[invoice, attempt]),
        "attempt_number": int32s(attempt + 1),
        "amount_usd": pa.array(billing.amount[invoice], type=pa.float64()),
        "payment_method": schema.categorical("payment_method", method[customer]),
        "status": schema.categorical("status", status),
        "failure_reason": schema.categorical("failure_reason", failure_reason, mask=~failed),
    }


# -- product.usage_events ---------------------------------------------------------------

_WEEKEND_FACTOR = np.float32(0.35)
_DECAY_DAYS = 90.0
_DECAY_DEPTH = 0.5
_EVENT_TYPE_WEIGHTS = np.array([0.30, 0.42, 0.10, 0.14, 0.04])
_API_CALL = 3
# log-normal duration per event type: login, feature_use, report_export, api_call, user_invite
_DURATION_MU = np.array([6.0, 4.5, 2.5, 0.3, 2.5])
_DURATION_SIGMA = np.array([0.9, 1.0, 0.7, 0.6, 0.5])


def _usage_events(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    day = MICROSECONDS_PER_DAY
    n = population.size
    days = config.history_days + config.label_window_days
    window_start = config.window_start_us
    begins = np.maximum(population.signed_up_at, window_start)
    ends = np.minimum(population.churned_at, config.data_end_us)
    first_day = (begins - window_start) // day
    last_day = (ends - 1 - window_start) // day

    # Daily probability of being active: engagement, a personal drift, weekends, and a
    # modest decline over the last weeks before a cancellation.
    first_seats = population.segment_seats[:, 0]
    base = _sigmoid(-2.55 + 1.0 * population.engagement + 0.12 * np.log(first_seats) + rng.normal(0, 0.3, n))
    drift = rng.normal(0.0, 0.35, n)
    day_index = np.arange(days)
    epoch_day = window_start // day + day_index
    weekday = (epoch_day + 3) % 7  # Monday = 0
    calendar = np.where(weekday >= 5, _WEEKEND_FACTOR, np.float32(1.0)).astype(np.float32)
    years_from_cutoff = ((day_index - config.history_days) / 365.0).astype(np.float32)
    probability = (base.astype(np.float32)[:, None] * calendar[None, :]) * np.exp(
        drift.astype(np.float32)[:, None] * years_from_cutoff[None, :]
    )
    churning = population.churned_at != NO_END
    days_to_end = np.where(churning, (population.churned_at - window_start) / day, np.inf).astype(np.float32)
    day_position = day_index.astype(np.float32)
    closeness = np.clip(
        1.0 - (days_to_end[:, None] - day_position[None, :]) / np.float32(_DECAY_DAYS), 0.0, 1.0
    )
    probability *= 1.0 - np.float32(_DECAY_DEPTH) * closeness
    alive = (day_index[None, :] >= first_day[:, None]) & (day_index[None, :] <= last_day[:, None])
    active = alive & (rng.random((n, days), dtype=np.float32) < probability)
    del probability, closeness, alive
    active_customer, active_day = np.nonzero(active)
    del active

    per_active_day = np.exp(-0.5 + 0.35 * population.engagement + rng.normal(0, 0.3, n))
    events_per_day = 1 + rng.poisson(per_active_day[active_customer])
    customer = np.repeat(active_customer, events_per_day)
    event_day = np.repeat(active_day, events_per_day)
    count = customer.size
    hour = rng.normal(14.0, 3.5, count) % 24.0
    event_at = window_start + event_day.astype(np.int64) * day + (hour * _HOUR).astype(np.int64)
    keep = (event_at >= population.signed_up_at[customer]) & (event_at < ends[customer])
    customer, event_at = customer[keep], event_at[keep]
    order = np.lexsort((event_at, customer))
    customer, event_at = customer[order], event_at[order]
    count = customer.size

    # Which product areas a customer uses: a personal ranking of features, breadth
    # growing with engagement, favourite features used most.
    feature_count = len(schema.values("feature"))
    breadth = 1 + rng.binomial(
        feature_count - 1, _sigmoid(0.8 * population.engagement - 0.3 + rng.normal(0, 0.5, n))
    )
    ranking = np.argsort(rng.random((n, feature_count)), axis=1)
    pick = (breadth[customer] * rng.random(count) ** 1.7).astype(np.int64)
    feature = ranking[customer, pick]
    uses_api = rng.random(n) < _sigmoid(-1.0 + 0.9 * population.segment_plan[:, 0])
    event_type = rng.choice(_EVENT_TYPE_WEIGHTS.size, size=count, p=_EVENT_TYPE_WEIGHTS)
    event_type = np.where((event_type == _API_CALL) & ~uses_api[customer], 1, event_type)
    platform = np.where(event_type == _API_CALL, 4, rng.choice(4, size=count, p=[0.6, 0.2, 0.12, 0.08]))
    duration = np.exp(_DURATION_MU[event_type] + _DURATION_SIGMA[event_type] * rng.standard_normal(count))
    duration = np.minimum(np.rint(duration), 86_400)
    sequence = sequence_within_groups(customer, n)
    return {
        "event_id": fixed_width_ids("E", population.customer_numbers[customer] * 1_000_000 + sequence, 14),
        "customer_id": _customer_ids(population, customer),
        "event_at": timestamps(event_at),
        "event_type": schema.categorical("event_type", event_type),
        "feature": schema.categorical("feature", feature),
        "platform": schema.categorical("platform", platform),
        "duration_seconds": int32s(duration),
    }


# -- support.tickets --------------------------------------------------------------------

_PRE_CHURN_TICKETS = 0.7
_SURVEY_RESPONSE_RATE = 0.6
_PRE_CHURN_DAYS = 60
# log-normal resolution hours by priority: low, normal, high, urgent
_RESOLUTION_MU = np.array([3.4, 2.8, 2.0, 1.2])


def _tickets(
    population: Population, config: DemoConfig, chunk_index: int, rng: np.random.Generator,
    schema: SourceSchema,
) -> dict[str, pa.Array]:
    day = MICROSECONDS_PER_DAY
    n = population.size
    begins = np.maximum(population.signed_up_at, config.window_start_us)
    ends = np.minimum(population.churned_at, config.data_end_us)
    span = np.maximum(ends - begins, 0).astype(np.float64)
    rate_per_day = (
        0.0045
        * population.segment_seats[:, 0] ** 0.2
        * np.exp(-0.45 * population.satisfaction + 0.15 * population.engagement)
    )
    regular = rng.poisson(rate_per_day * span / day)
    churning = population.churned_at != NO_END
    late_begins = np.maximum(begins, population.churned_at - _PRE_CHURN_DAYS * day)
    late = np.where(churning & (ends > late_begins), rng.poisson(_PRE_CHURN_TICKETS, n), 0)
    customer = np.concatenate([np.repeat(np.arange(n), regular), np.repeat(np.arange(n), late)])
    low = np.concatenate([np.repeat(begins, regular), np.repeat(late_begins, late)])
    width = np.concatenate([np.repeat(span, regular), np.repeat(ends - late_begins, late).astype(np.float64)])
    opened_at = low + (rng.random(customer.size) * width).astype(np.int64)
    order = np.lexsort((opened_at, customer))
    customer, opened_at = customer[order], opened_at[order]
    count = customer.size

    satisfaction = population.satisfaction[customer]
    severity = (
        rng.standard_normal(count) - 0.4 * satisfaction + 0.3 * (population.segment_plan[customer, 0] == 2)
    )
    priority = np.digitize(severity, [-0.3, 1.0, 1.9])
    channel = rng.choice(4, size=count, p=[0.4, 0.3, 0.1, 0.2])
    is_billing = rng.random(count) < _sigmoid(-1.9 - 0.8 * population.payment_reliability[customer])
    other_category = 1 + rng.choice(5, size=count, p=[0.3, 0.3, 0.12, 0.16, 0.12])
    category = np.where(is_billing, 0, other_category)
    hours = np.exp(_RESOLUTION_MU[priority] - 0.25 * satisfaction + rng.standard_normal(count))
    hours *= np.where(rng.random(count) < 0.06, 15.0, 1.0)
    resolved_at = opened_at + (hours * _HOUR).astype(np.int64)
    unresolved = resolved_at >= config.data_end_us
    score = np.clip(
        np.rint(
            3.7
            + 0.75 * satisfaction
            - 0.25 * (priority >= 2)
            - 0.15 * np.log1p(hours / 24.0)
            + rng.normal(0, 0.8, count)
        ),
        1,
        5,
    )
    no_score = unresolved | (rng.random(count) >= _SURVEY_RESPONSE_RATE)
    sequence = sequence_within_groups(customer, n)
    return {
        "ticket_id": fixed_width_ids("T", population.customer_numbers[customer] * 10_000 + sequence, 12),
        "customer_id": _customer_ids(population, customer),
        "opened_at": timestamps(opened_at),
        "resolved_at": timestamps(np.where(unresolved, 0, resolved_at), mask=unresolved),
        "priority": schema.categorical("priority", priority),
        "channel": schema.categorical("channel", channel),
        "category": schema.categorical("category", category),
        "satisfaction_score": int32s(np.where(no_score, 0, score), mask=no_score),
    }
