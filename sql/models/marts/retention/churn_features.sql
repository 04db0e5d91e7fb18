{{ config(materialized='external', plugin='mesh', location=mesh_staging_location(this)) }}

with

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

subscriptions as (

    select * from {{ ref('int_subscriptions_aggregated_to_customers') }}

),

usage_events as (

    select * from {{ ref('int_usage_events_aggregated_to_customers') }}

),

tickets as (

    select * from {{ ref('int_tickets_aggregated_to_customers') }}

),

payments as (

    select * from {{ ref('int_payments_aggregated_to_customers') }}

),

invoices as (

    select * from {{ ref('int_invoices_aggregated_to_customers') }}

),

scored_customers as (

    select
        customers.*,
        subscriptions.plan as plan_at_cutoff,
        subscriptions.billing_period,
        subscriptions.seats as seats_at_cutoff,
        subscriptions.monthly_price_usd,
        subscriptions.discount_rate,
        subscriptions.plan_change_count,
        subscriptions.has_churned

    from customers
    inner join subscriptions
        on customers.customer_id = subscriptions.customer_id
    where subscriptions.is_active_at_cutoff
        and customers.signed_up_at < {{ feature_cutoff_at() }}

),

final as (

    select
        cast(scored_customers.customer_id as varchar) as customer_id,
        {{ feature_cutoff_date() }} as feature_cutoff_date,
        cast(scored_customers.country_code as varchar) as country_code,
        cast(scored_customers.industry as varchar) as industry,
        cast(scored_customers.acquisition_channel as varchar) as acquisition_channel,
        cast(scored_customers.plan_at_cutoff as varchar) as plan,
        cast(scored_customers.billing_period as varchar) as billing_period,
        cast(scored_customers.seats_at_cutoff as integer) as seats,
        cast(scored_customers.monthly_price_usd as double) as monthly_price_usd,
        cast(scored_customers.discount_rate as double) as discount_rate,
        cast(date_diff('day', scored_customers.signed_up_at, {{ feature_cutoff_at() }}) as integer) as tenure_days,
        cast(scored_customers.plan_change_count as integer) as plan_change_count,
        cast(
            date_diff('day', {{ feature_cutoff_date() }}, invoices.current_period_end_date) + 1 as integer
        ) as days_until_renewal,
        cast(coalesce(usage_events.events_last_30_days, 0) as integer) as events_last_30_days,
        cast(coalesce(usage_events.events_last_90_days, 0) as integer) as events_last_90_days,
        cast(coalesce(usage_events.usage_trend_ratio, 1.0) as double) as usage_trend_ratio,
        cast(coalesce(usage_events.active_days_last_30_days, 0) as integer) as active_days_last_30_days,
        cast(coalesce(usage_events.active_days_last_90_days, 0) as integer) as active_days_last_90_days,
        cast(coalesce(usage_events.distinct_features_last_90_days, 0) as integer) as distinct_features_last_90_days,
        cast(coalesce(usage_events.usage_minutes_last_30_days, 0) as double) as usage_minutes_last_30_days,
        cast(
            date_diff(
                'day',
                coalesce(usage_events.last_event_at, scored_customers.signed_up_at),
                {{ feature_cutoff_at() }}
            ) as integer
        ) as days_since_last_event,
        cast(coalesce(tickets.tickets_last_90_days, 0) as integer) as tickets_last_90_days,
        cast(coalesce(tickets.high_priority_tickets_last_90_days, 0) as integer) as high_priority_tickets_last_90_days,
        cast(coalesce(tickets.open_tickets_at_cutoff, 0) as integer) as open_tickets_at_cutoff,
        cast(tickets.average_satisfaction_score as double) as average_satisfaction_score,
        cast(coalesce(payments.failed_payments_last_90_days, 0) as integer) as failed_payments_last_90_days,
        cast(coalesce(invoices.overdue_invoices_at_cutoff, 0) as integer) as overdue_invoices_at_cutoff,
        cast(scored_customers.has_churned as boolean) as has_churned

    from scored_customers
    left join usage_events
        on scored_customers.customer_id = usage_events.customer_id
    left join tickets
        on scored_customers.customer_id = tickets.customer_id
    left join payments
        on scored_customers.customer_id = payments.customer_id
    left join invoices
        on scored_customers.customer_id = invoices.customer_id

)

-- sorted so that a rebuild on the same inputs writes the same file
select * from final
order by customer_id
