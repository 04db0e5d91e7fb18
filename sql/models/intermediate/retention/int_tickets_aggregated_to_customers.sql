-- Support features per customer from tickets opened (and surveys answered) before the cutoff.
with

tickets as (

    select * from {{ ref('stg_support__tickets') }}
    where opened_at < {{ feature_cutoff_at() }}

),

final as (

    select
        customer_id,
        count(*) filter (where opened_at >= {{ days_before_cutoff_at(90) }}) as tickets_last_90_days,
        count(*) filter (
            where opened_at >= {{ days_before_cutoff_at(90) }} and is_high_priority
        ) as high_priority_tickets_last_90_days,
        count(*) filter (
            where resolved_at is null or resolved_at >= {{ feature_cutoff_at() }}
        ) as open_tickets_at_cutoff,
        -- a survey is answered after resolution: only resolutions before the cutoff count
        avg(satisfaction_score) filter (
            where resolved_at < {{ feature_cutoff_at() }}
        ) as average_satisfaction_score

    from tickets
    group by customer_id

)

select * from final
