{{ config(materialized='external', plugin='mesh', location=mesh_staging_location(this)) }}

with

churn_features as (

    select * from {{ ref('churn_features') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

next_period_revenue as (

    select
        customer_id,
        sum(amount_usd) as revenue_usd

    from invoices
    where issued_at >= {{ feature_cutoff_at() }}
        and issued_at < {{ label_window_end_at() }}
        and invoice_status <> 'void'
    group by customer_id

),

final as (

    select
        churn_features.* exclude (has_churned),
        cast(coalesce(next_period_revenue.revenue_usd, 0) as double) as next_period_revenue_usd

    from churn_features
    left join next_period_revenue
        on churn_features.customer_id = next_period_revenue.customer_id

)

-- sorted so that a rebuild on the same inputs writes the same file
select * from final
order by customer_id
