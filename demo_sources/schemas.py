"""Arrow schemas and value domains of the demo source products.

These constants mirror the contracts in ``data_products/<domain>/<product>.yaml``
(the contracts are the single declaration; ``tests/unit/demo`` asserts that the
two agree, column for column, so a contract change that is not carried over here
fails the test suite). Fields are nullable in Arrow, exactly as the contract
loader derives them; ``required: true`` is enforced by the quality engine.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us")

# fmt: off
COUNTRY_CODES: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "CA", "AU", "BR", "IN", "JP",
)
INDUSTRIES: tuple[str, ...] = (
    "software", "retail", "finance", "healthcare", "education", "manufacturing", "media", "other",
)
ACQUISITION_CHANNELS: tuple[str, ...] = ("organic", "paid_search", "partner", "sales", "referral")
PLANS: tuple[str, ...] = ("basic", "pro", "enterprise")
BILLING_PERIODS: tuple[str, ...] = ("monthly", "annual")
CANCELLATION_REASONS: tuple[str, ...] = ("plan_change", "customer_request", "non_payment")
INVOICE_STATUSES: tuple[str, ...] = ("open", "paid", "void", "uncollectible")
PAYMENT_METHODS: tuple[str, ...] = ("card", "bank_transfer", "wallet")
PAYMENT_STATUSES: tuple[str, ...] = ("succeeded", "failed", "refunded")
FAILURE_REASONS: tuple[str, ...] = (
    "card_declined", "insufficient_funds", "expired_card", "processing_error",
)
EVENT_TYPES: tuple[str, ...] = ("login", "feature_use", "report_export", "api_call", "user_invite")
FEATURES: tuple[str, ...] = (
    "dashboards", "reports", "alerts", "integrations", "automation", "search", "collaboration", "admin",
)
PLATFORMS: tuple[str, ...] = ("web", "desktop", "ios", "android", "api")
TICKET_PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TICKET_CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web_form")
TICKET_CATEGORIES: tuple[str, ...] = (
    "billing", "bug", "how_to", "feature_request", "account", "performance",
)
# fmt: on

CUSTOMERS = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("email", pa.string()),
        pa.field("country_code", pa.string()),
        pa.field("industry", pa.string()),
        pa.field("acquisition_channel", pa.string()),
        pa.field("plan", pa.string()),
        pa.field("seats", pa.int32()),
        pa.field("signed_up_at", TIMESTAMP),
    ]
)

SUBSCRIPTIONS = pa.schema(
    [
        pa.field("subscription_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("plan", pa.string()),
        pa.field("billing_period", pa.string()),
        pa.field("seats", pa.int32()),
        pa.field("monthly_price_usd", pa.float64()),
        pa.field("discount_rate", pa.float64()),
        pa.field("started_at", TIMESTAMP),
        pa.field("canceled_at", TIMESTAMP),
        pa.field("cancellation_reason", pa.string()),
    ]
)

INVOICES = pa.schema(
    [
        pa.field("invoice_id", pa.string()),
        pa.field("subscription_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("issued_at", TIMESTAMP),
        pa.field("due_date", pa.date32()),
        pa.field("period_start_date", pa.date32()),
        pa.field("period_end_date", pa.date32()),
        pa.field("amount_usd", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("paid_at", TIMESTAMP),
    ]
)

PAYMENTS = pa.schema(
    [
        pa.field("payment_id", pa.string()),
        pa.field("invoice_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("attempted_at", TIMESTAMP),
        pa.field("attempt_number", pa.int32()),
        pa.field("amount_usd", pa.float64()),
        pa.field("payment_method", pa.string()),
        pa.field("status", pa.string()),
        pa.field("failure_reason", pa.string()),
    ]
)

USAGE_EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("event_at", TIMESTAMP),
        pa.field("event_type", pa.string()),
        pa.field("feature", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("duration_seconds", pa.int32()),
    ]
)

TICKETS = pa.schema(
    [
        pa.field("ticket_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("opened_at", TIMESTAMP),
        pa.field("resolved_at", TIMESTAMP),
        pa.field("priority", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("category", pa.string()),
        pa.field("satisfaction_score", pa.int32()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "customers": CUSTOMERS,
    "subscriptions": SUBSCRIPTIONS,
    "invoices": INVOICES,
    "payments": PAYMENTS,
    "usage_events": USAGE_EVENTS,
    "tickets": TICKETS,
}
