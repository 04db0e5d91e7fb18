-- Engagement features per customer from usage events strictly before the cutoff.
with

usage_events as (

    select * from {{ ref('stg_product__usage_events') }}
    where event_at < {{ feature_cutoff_at() }}

),

aggregated as (

    select
        customer_id,
        count(*) filter (where event_at >= {{ days_before_cutoff_at(30) }}) as events_last_30_days,
        count(*) filter (where event_at >= {{ days_before_cutoff_at(90) }}) as events_last_90_days,
        count(distinct event_date) filter (where event_at >= {{ days_before_cutoff_at(30) }}) as active_days_last_30_days,
        count(distinct event_date) filter (where event_at >= {{ days_before_cutoff_at(90) }}) as active_days_last_90_days,
        count(distinct feature) filter (where event_at >= {{ days_before_cutoff_at(90) }}) as distinct_features_last_90_days,
        coalesce(sum(duration_seconds) filter (where event_at >= {{ days_before_cutoff_at(30) }}), 0) / 60.0 as usage_minutes_last_30_days,
        max(event_at) as last_event_at

    from usage_events
    group by customer_id

),

final as (

    select
        *,
        -- last 30 days against the monthly average of the 60 days before (smoothed by +1)
        (events_last_30_days + 1.0) / ((events_last_90_days - events_last_30_days) / 2.0 + 1.0) as usage_trend_ratio

    from aggregated

)

select * from final
