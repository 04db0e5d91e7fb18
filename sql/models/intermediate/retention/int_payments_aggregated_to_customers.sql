-- Payment reliability per customer from payment attempts before the cutoff.
with

payments as (

    select * from {{ ref('stg_billing__payments') }}
    where attempted_at < {{ feature_cutoff_at() }}

),

final as (

    select
        customer_id,
        count(*) filter (
            where attempted_at >= {{ days_before_cutoff_at(90) }} and is_failed
        ) as failed_payments_last_90_days

    from payments
    group by customer_id

)

select * from final
