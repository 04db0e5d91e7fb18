-- Subscription facts per customer as of the feature cutoff, plus the churn label.
-- Only this model looks past the cutoff, and only to derive has_churned.
with

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

running_at_cutoff as (

    select
        *,
        row_number() over (partition by customer_id order by started_at desc) as recency_rank

    from subscriptions
    where started_at < {{ feature_cutoff_at() }}
        and (canceled_at is null or canceled_at >= {{ feature_cutoff_at() }})

),

customer_history as (

    select
        customer_id,
        count(*) filter (where started_at < {{ feature_cutoff_at() }}) as subscriptions_before_cutoff,
        -- a customer's relationship ends when its last subscription ends
        case
            when count(*) filter (where canceled_at is null) > 0 then null
            else max(canceled_at)
        end as churned_at

    from subscriptions
    group by customer_id

),

final as (

    select
        customer_history.customer_id,
        running_at_cutoff.subscription_id,
        running_at_cutoff.plan,
        running_at_cutoff.billing_period,
        running_at_cutoff.seats,
        running_at_cutoff.monthly_price_usd,
        running_at_cutoff.discount_rate,
        running_at_cutoff.started_at as subscription_started_at,
        running_at_cutoff.subscription_id is not null as is_active_at_cutoff,
        greatest(customer_history.subscriptions_before_cutoff - 1, 0) as plan_change_count,
        customer_history.churned_at,
        coalesce(
            customer_history.churned_at >= {{ feature_cutoff_at() }}
            and customer_history.churned_at < {{ label_window_end_at() }},
            false
        ) as has_churned

    from customer_history
    left join running_at_cutoff
        on customer_history.customer_id = running_at_cutoff.customer_id
        and running_at_cutoff.recency_rank = 1

)

select * from final
