-- Weekly usage in the 12 weeks before the feature cutoff, churners against
-- stayers: events per customer of each cohort, week 0 being the last week.
-- Plain SQL over the product views; runs unchanged in Trino and DuckDB.
with

features as (

    select
        customer_id,
        has_churned,
        feature_cutoff_date

    from retention.churn_features

),

cohort_sizes as (

    select
        has_churned,
        count(*) as customers

    from features
    group by has_churned

),

event_days as (

    -- calendar dates, so that both engines count days the same way
    select
        features.has_churned,
        date_diff('day', cast(usage_events.event_at as date), features.feature_cutoff_date) as days_before_cutoff

    from product.usage_events as usage_events
    inner join features
        on usage_events.customer_id = features.customer_id
    where usage_events.event_at < cast(features.feature_cutoff_date as timestamp)
        and usage_events.event_at >= cast(features.feature_cutoff_date - interval '84' day as timestamp)

),

weekly_events as (

    select
        has_churned,
        cast(floor((days_before_cutoff - 1) / 7.0e0) as integer) as weeks_before_cutoff,
        count(*) as events

    from event_days
    group by 1, 2

)

select
    weekly_events.weeks_before_cutoff,
    case when weekly_events.has_churned then 'churned' else 'stayed' end as cohort,
    round(cast(weekly_events.events as double) / cohort_sizes.customers, 3) as events_per_customer

from weekly_events
inner join cohort_sizes
    on weekly_events.has_churned = cohort_sizes.has_churned
order by weekly_events.weeks_before_cutoff desc, cohort
