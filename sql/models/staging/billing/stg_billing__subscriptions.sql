with

source as (

    select * from {{ source('billing', 'subscriptions') }}

),

renamed as (

    select
        subscription_id,
        customer_id,
        plan,
        billing_period,
        seats,
        monthly_price_usd,
        discount_rate,
        started_at,
        canceled_at,
        cancellation_reason

    from source

)

select * from renamed
