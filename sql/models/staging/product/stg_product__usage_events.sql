with

source as (

    select * from {{ source('product', 'usage_events') }}

),

renamed as (

    select
        event_id,
        customer_id,
        event_at,
        cast(event_at as date) as event_date,
        event_type,
        feature,
        platform,
        duration_seconds

    from source

)

select * from renamed
