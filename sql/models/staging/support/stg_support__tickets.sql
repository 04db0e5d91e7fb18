with

source as (

    select * from {{ source('support', 'tickets') }}

),

renamed as (

    select
        ticket_id,
        customer_id,
        opened_at,
        resolved_at,
        priority,
        channel,
        category,
        satisfaction_score,
        priority in ('high', 'urgent') as is_high_priority

    from source

)

select * from renamed
