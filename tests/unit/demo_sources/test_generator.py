"""The demo generator: deterministic, contract-shaped, chunked, with a plausible churn story."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import types
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from datamesh.contracts import ContractRegistry, parse_contract
from datamesh.errors import ContractError, UnknownProductError
from demo_sources.generator import SOURCE_PRODUCTS, DemoConfig, iter_product
from demo_sources.population import simulate_population
from demo_sources.schemas import SourceSchema, project_contracts
from tests.unit.demo_sources.contract_yaml import (
    arrow_schema_for,
    column_rules,
    contract_yaml,
    required_columns,
    unique_columns,
)

SMALL = DemoConfig(customers=3_000, chunk_customers=1_000)

# Every timestamp column of each product, and whether it may be after the cutoff.
TIMESTAMP_COLUMNS = {
    "customers": ["signed_up_at"],
    "subscriptions": ["started_at", "canceled_at"],
    "invoices": ["issued_at", "paid_at"],
    "payments": ["attempted_at"],
    "usage_events": ["event_at"],
    "tickets": ["opened_at", "resolved_at"],
}


def _generate(product_id: str, config: DemoConfig) -> pa.Table:
    return pa.concat_tables(iter_product(product_id, config))


@pytest.fixture(scope="module")
def small() -> dict[str, pa.Table]:
    return {product_id: _generate(product_id, SMALL) for product_id in SOURCE_PRODUCTS}


def _timestamp(instant_us: int) -> pa.Scalar:
    return pa.scalar(instant_us, type=pa.timestamp("us"))


# -- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_same_seed_gives_identical_tables(product_id: str, small: dict[str, pa.Table]) -> None:
    assert _generate(product_id, SMALL).equals(small[product_id])


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_different_seed_gives_different_tables(product_id: str, small: dict[str, pa.Table]) -> None:
    other = _generate(product_id, dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert not other.equals(small[product_id])


def test_products_do_not_depend_on_generation_order() -> None:
    config = DemoConfig(customers=500, chunk_customers=200)
    forward = [_generate(p, config) for p in SOURCE_PRODUCTS]
    backward = [_generate(p, config) for p in reversed(SOURCE_PRODUCTS)][::-1]
    assert all(a.equals(b) for a, b in zip(forward, backward, strict=True))


def test_chunk_size_changes_random_streams_but_not_customers_or_statistics() -> None:
    """Documented behaviour: chunks seed the random streams, so chunk_customers is part
    of the data set's identity. The customer ids and the statistics do not depend on it."""
    coarse = DemoConfig(customers=20_000, chunk_customers=10_000)
    fine = dataclasses.replace(coarse, chunk_customers=2_500)
    coarse_customers, fine_customers = _generate("customers", coarse), _generate("customers", fine)
    assert coarse_customers["customer_id"].equals(fine_customers["customer_id"])
    assert not coarse_customers.equals(fine_customers)
    coarse_rate, fine_rate = _churn_rate(coarse), _churn_rate(fine)
    assert abs(coarse_rate - fine_rate) < 0.02


# Digest of the generated values of each product for PINNED (seed 42). The generator reads
# its schemas and value lists from the contracts, so this also pins the contracts' column
# order and accepted-values order. Change a digest only for an intended change of the data.
PINNED = DemoConfig(customers=600, chunk_customers=250)
PINNED_DIGESTS = {
    "customers": "5a5969250e527e14",
    "subscriptions": "c6e535553c46492e",
    "invoices": "3913dcded50200e7",
    "payments": "21dc610ef73bdf0d",
    "usage_events": "072b0b7903117269",
    "tickets": "7e6b1d50beb6108b",
}


def _digest(product_id: str, config: DemoConfig, contracts: ContractRegistry | None = None) -> str:
    digest = hashlib.sha256()
    for table in iter_product(product_id, config, contracts):
        digest.update(str(table.schema).encode())
        for column in table.columns:
            digest.update(repr(column.to_pylist()).encode())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_generated_data_is_pinned(product_id: str) -> None:
    assert _digest(product_id, PINNED) == PINNED_DIGESTS[product_id]


# -- schemas and value domains, read from the contracts ---------------------------------------


def _registry_with(product_id: str, edit: Any) -> ContractRegistry:
    """The project's contracts, with ``edit(raw_yaml)`` applied to the contract of ``product_id``."""
    raw = copy.deepcopy(contract_yaml(product_id))
    edit(raw)
    original = project_contracts().get(product_id)
    edited = parse_contract(raw, original.source_path)
    return ContractRegistry([edited if c.id == product_id else c for c in project_contracts()])


def _column(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(column for column in raw["columns"] if column["name"] == name)


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_schemas_read_from_the_contracts_match_the_contract_yaml(product_id: str) -> None:
    assert SourceSchema.of(project_contracts().get(product_id)).arrow.equals(arrow_schema_for(product_id))


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_generator_writes_contracted_source_products(product_id: str) -> None:
    """SOURCE_PRODUCTS is the generator's own list; each entry is a contract with no upstream."""
    assert project_contracts().get(product_id).lineage.inputs == ()


def test_value_names_come_from_the_contract_it_is_given() -> None:
    renamed = ["by_mail", "by_chat", "by_phone", "by_form"]
    contracts = _registry_with("tickets", lambda raw: _column(raw, "channel")["quality"][0].update(values=renamed))
    usual = pa.concat_tables(iter_product("tickets", SMALL))
    table = pa.concat_tables(iter_product("tickets", SMALL, contracts))
    mapping = dict(zip(column_rules("tickets", "accepted_values")["channel"]["values"], renamed, strict=True))
    assert table["channel"].to_pylist() == [mapping[value] for value in usual["channel"].to_pylist()]
    assert table.drop_columns(["channel"]).equals(usual.drop_columns(["channel"]))


def test_column_order_comes_from_the_contract_it_is_given() -> None:
    contracts = _registry_with("customers", lambda raw: raw["columns"].reverse())
    usual = pa.concat_tables(iter_product("customers", SMALL))
    table = pa.concat_tables(iter_product("customers", SMALL, contracts))
    assert table.column_names == usual.column_names[::-1]
    assert table.select(usual.column_names).equals(usual)


def test_a_contract_with_fewer_values_than_the_generator_draws_is_refused() -> None:
    contracts = _registry_with(
        "tickets", lambda raw: _column(raw, "channel")["quality"][0].update(values=["email", "chat"])
    )
    with pytest.raises(ContractError, match=r"draws 4 values of tickets\.channel, but its contract accepts only 2"):
        next(iter_product("tickets", SMALL, contracts))


def test_a_categorical_column_without_accepted_values_is_refused() -> None:
    contracts = _registry_with("tickets", lambda raw: _column(raw, "channel").pop("quality"))
    with pytest.raises(ContractError, match=r"no accepted_values rule on 'channel'"):
        next(iter_product("tickets", SMALL, contracts))


def test_a_contract_column_the_generator_does_not_build_is_refused() -> None:
    def add_column(raw: dict[str, Any]) -> None:
        raw["columns"].append({"name": "language", "type": "string"})

    contracts = _registry_with("tickets", add_column)
    with pytest.raises(ContractError, match=r"missing \['language'\]"):
        next(iter_product("tickets", SMALL, contracts))


def test_a_contract_type_the_generator_does_not_build_is_refused() -> None:
    contracts = _registry_with("tickets", lambda raw: _column(raw, "opened_at").update(type="date"))
    with pytest.raises(ContractError, match=r"opened_at is timestamp\[us\], expected date32\[day\]"):
        next(iter_product("tickets", SMALL, contracts))


def test_columns_follow_a_contract_that_declares_decimals_instants_or_wider_types() -> None:
    def edit(raw: dict[str, Any]) -> None:
        _column(raw, "amount_usd").update(type="decimal(12,2)")
        _column(raw, "issued_at").update(type="timestamptz")

    usual = pa.concat_tables(iter_product("invoices", SMALL))
    table = pa.concat_tables(iter_product("invoices", SMALL, _registry_with("invoices", edit)))
    assert table.schema.field("amount_usd").type == pa.decimal128(12, 2)
    assert table.schema.field("issued_at").type == pa.timestamp("us", tz="UTC")
    assert table["amount_usd"].to_pylist() == [None if v is None else Decimal(str(v)) for v in usual["amount_usd"].to_pylist()]
    assert table["issued_at"].cast(pa.int64()).equals(usual["issued_at"].cast(pa.int64()))  # the same instants
    assert table.drop_columns(["amount_usd", "issued_at"]).equals(usual.drop_columns(["amount_usd", "issued_at"]))
    widened = _registry_with("tickets", lambda raw: _column(raw, "satisfaction_score").update(type="int64"))
    scores = pa.concat_tables(iter_product("tickets", SMALL, widened))["satisfaction_score"]
    assert scores.type == pa.int64()
    assert scores.to_pylist() == pa.concat_tables(iter_product("tickets", SMALL))["satisfaction_score"].to_pylist()


def test_values_that_do_not_fit_a_decimal_are_refused() -> None:
    contracts = _registry_with("invoices", lambda raw: _column(raw, "amount_usd").update(type="decimal(3,2)"))
    with pytest.raises(ContractError, match=r"values of invoices\.amount_usd do not fit the contract's type decimal\(3,2\)"):
        next(iter_product("invoices", SMALL, contracts))


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_every_yielded_table_has_the_contract_schema(product_id: str) -> None:
    expected = arrow_schema_for(product_id)
    for table in iter_product(product_id, SMALL):
        assert table.schema.equals(expected)


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_values_are_within_contract_accepted_values(product_id: str, small: dict[str, pa.Table]) -> None:
    rules = column_rules(product_id, "accepted_values")
    for column, rule in rules.items():
        seen = set(pc.unique(small[product_id][column]).drop_null().to_pylist())
        assert seen <= set(rule["values"]), f"{product_id}.{column}: {seen - set(rule['values'])}"


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_values_are_within_contract_ranges(product_id: str, small: dict[str, pa.Table]) -> None:
    for column, rule in column_rules(product_id, "range").items():
        bounds = pc.min_max(small[product_id][column])
        if rule.get("min") is not None:
            assert bounds["min"].as_py() >= rule["min"], f"{product_id}.{column}"
        if rule.get("max") is not None:
            assert bounds["max"].as_py() <= rule["max"], f"{product_id}.{column}"


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_required_columns_have_no_nulls_and_unique_columns_no_duplicates(
    product_id: str, small: dict[str, pa.Table]
) -> None:
    table = small[product_id]
    assert table.num_rows > 0
    for column in required_columns(product_id):
        assert table[column].null_count == 0, f"{product_id}.{column}"
    for column in unique_columns(product_id):
        assert pc.count_distinct(table[column]).as_py() == table.num_rows, f"{product_id}.{column}"


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS[1:])
def test_every_row_belongs_to_a_generated_customer(product_id: str, small: dict[str, pa.Table]) -> None:
    customers = small["customers"]["customer_id"]
    assert pc.all(pc.is_in(small[product_id]["customer_id"], value_set=customers)).as_py()


def test_billing_rows_reference_existing_subscriptions_and_invoices(small: dict[str, pa.Table]) -> None:
    subscriptions = small["subscriptions"]["subscription_id"]
    invoices = small["invoices"]["invoice_id"]
    assert pc.all(pc.is_in(small["invoices"]["subscription_id"], value_set=subscriptions)).as_py()
    assert pc.all(pc.is_in(small["payments"]["invoice_id"], value_set=invoices)).as_py()


def test_contract_consistency_rules_hold(small: dict[str, pa.Table]) -> None:
    subscriptions, invoices, payments, tickets = (
        small["subscriptions"],
        small["invoices"],
        small["payments"],
        small["tickets"],
    )
    assert pc.all(
        pc.equal(pc.is_null(subscriptions["canceled_at"]), pc.is_null(subscriptions["cancellation_reason"]))
    ).as_py()
    assert pc.all(pc.equal(pc.equal(invoices["status"], "paid"), pc.is_valid(invoices["paid_at"]))).as_py()
    assert pc.all(
        pc.equal(pc.equal(payments["status"], "failed"), pc.is_valid(payments["failure_reason"]))
    ).as_py()
    assert not pc.any(
        pc.and_(pc.is_valid(tickets["satisfaction_score"]), pc.is_null(tickets["resolved_at"]))
    ).as_py()
    running = subscriptions.filter(pc.is_null(subscriptions["canceled_at"]))["customer_id"]
    assert pc.count_distinct(running).as_py() == len(running)


# -- time -----------------------------------------------------------------------------------


def test_no_signup_after_the_feature_cutoff(small: dict[str, pa.Table]) -> None:
    latest = pc.max(small["customers"]["signed_up_at"])
    assert pc.less(latest, _timestamp(SMALL.cutoff_us)).as_py()


@pytest.mark.parametrize("product_id", SOURCE_PRODUCTS)
def test_nothing_is_dated_after_the_extract(product_id: str, small: dict[str, pa.Table]) -> None:
    for column in TIMESTAMP_COLUMNS[product_id]:
        latest = pc.max(small[product_id][column])
        if latest.is_valid:
            assert pc.less(latest, _timestamp(SMALL.data_end_us)).as_py(), f"{product_id}.{column}"


def test_usage_events_stay_within_the_customer_lifetime(small: dict[str, pa.Table]) -> None:
    events = small["usage_events"].join(
        small["customers"].select(["customer_id", "signed_up_at"]), "customer_id"
    )
    assert pc.all(pc.greater_equal(events["event_at"], events["signed_up_at"])).as_py()
    assert pc.all(pc.greater_equal(events["event_at"], _timestamp(SMALL.window_start_us))).as_py()


# -- churn story ----------------------------------------------------------------------------


def _churn_rate(config: DemoConfig) -> float:
    active = churned = 0
    for chunk_index in range(config.chunk_count):
        population = simulate_population(config, chunk_index)
        active += int(population.is_active_at_cutoff.sum())
        churned += int(population.has_churned.sum())
    return churned / active


def test_churn_base_rate_is_in_range() -> None:
    assert 0.12 <= _churn_rate(DemoConfig(customers=20_000)) <= 0.28


def test_label_follows_from_the_subscriptions(small: dict[str, pa.Table]) -> None:
    """has_churned, as dbt derives it: the customer's last subscription ends in the label window."""
    subscriptions = small["subscriptions"]
    still_running = set(
        subscriptions.filter(pc.is_null(subscriptions["canceled_at"]))["customer_id"].to_pylist()
    )
    ended = subscriptions.group_by("customer_id").aggregate([("canceled_at", "max")])
    churned_in_window = {
        customer
        for customer, ended_at in zip(
            ended["customer_id"].to_pylist(), ended["canceled_at_max"].to_pylist(), strict=True
        )
        if customer not in still_running
        and dt.datetime.combine(SMALL.feature_cutoff_date, dt.time())
        <= ended_at
        < dt.datetime.combine(
            SMALL.feature_cutoff_date + dt.timedelta(days=SMALL.label_window_days), dt.time()
        )
    }
    expected = set()
    for chunk_index in range(SMALL.chunk_count):
        population = simulate_population(SMALL, chunk_index)
        expected |= {f"C{number:08d}" for number in population.customer_numbers[population.has_churned]}
    assert churned_in_window == expected


def test_future_churners_used_the_product_less_before_the_cutoff(small: dict[str, pa.Table]) -> None:
    churners = set()
    active = set()
    for chunk_index in range(SMALL.chunk_count):
        population = simulate_population(SMALL, chunk_index)
        churners |= {f"C{n:08d}" for n in population.customer_numbers[population.has_churned]}
        active |= {f"C{n:08d}" for n in population.customer_numbers[population.is_active_at_cutoff]}
    events = small["usage_events"]
    before = events.filter(pc.less(events["event_at"], _timestamp(SMALL.cutoff_us)))
    counts = dict(
        zip(
            *before.group_by("customer_id").aggregate([("event_id", "count")]).to_pydict().values(),
            strict=True,
        )
    )
    churner_mean = np.mean([counts.get(c, 0) for c in churners])
    stayer_mean = np.mean([counts.get(c, 0) for c in active - churners])
    assert churner_mean < 0.8 * stayer_mean


def test_scale_is_a_few_dozen_usage_events_per_customer(small: dict[str, pa.Table]) -> None:
    assert 30 <= small["usage_events"].num_rows / SMALL.customers <= 100


# -- streaming ----------------------------------------------------------------------------


def test_iter_product_is_lazy() -> None:
    huge = DemoConfig(customers=50_000_000, chunk_customers=1_000)
    tables = iter_product("customers", huge)
    assert isinstance(tables, types.GeneratorType)
    first = next(tables)
    assert first.num_rows == 1_000


def _assert_chunked(config: DemoConfig, product_id: str) -> None:
    previous_last = ""
    chunks = 0
    for table in iter_product(product_id, config):
        ids = pc.unique(table["customer_id"])
        assert len(ids) <= config.chunk_customers
        if len(ids):
            assert pc.min(ids).as_py() > previous_last  # chunks are disjoint and in customer order
            previous_last = pc.max(ids).as_py()
        chunks += 1
    assert chunks == config.chunk_count


def test_usage_events_are_generated_one_customer_chunk_at_a_time() -> None:
    _assert_chunked(DemoConfig(customers=5_000, chunk_customers=1_000), "usage_events")


@pytest.mark.slow
def test_usage_events_of_200k_customers_are_generated_chunk_by_chunk() -> None:
    _assert_chunked(DemoConfig(customers=200_000, chunk_customers=20_000), "usage_events")


# -- errors -------------------------------------------------------------------------------


def test_unknown_product_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownProductError, match="Did you mean 'customers'"):
        next(iter_product("custmers", SMALL))


def test_a_registry_without_the_product_is_refused() -> None:
    others = [c for c in project_contracts() if c.id in SOURCE_PRODUCTS and c.id != "tickets"]
    contracts = ContractRegistry(others)
    with pytest.raises(UnknownProductError, match="Unknown product 'tickets'"):
        next(iter_product("tickets", SMALL, contracts))


@pytest.mark.parametrize(
    "overrides",
    [
        {"customers": 0},
        {"customers": 100_000_000},
        {"chunk_customers": 0},
        {"seed": -1},
        {"label_window_days": 0},
        {"history_days": 0},
        {"feature_cutoff_date": dt.datetime(2026, 6, 30)},
    ],
)
def test_invalid_config_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DemoConfig(**overrides)  # type: ignore[arg-type]


def test_chunk_bounds_cover_every_customer_once() -> None:
    config = DemoConfig(customers=2_500, chunk_customers=1_000)
    assert [config.chunk_bounds(i) for i in range(config.chunk_count)] == [
        (0, 1000),
        (1000, 2000),
        (2000, 2500),
    ]
    with pytest.raises(ValueError):
        config.chunk_bounds(3)
