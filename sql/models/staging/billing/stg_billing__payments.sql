with

source as (

    select * from {{ source('billing', 'payments') }}

),

renamed as (

    select
        payment_id,
        invoice_id,
        customer_id,
        attempted_at,
        attempt_number,
        amount_usd,
        payment_method,
        status as payment_status,
        failure_reason,
        status = 'failed' as is_failed

    from source

)

select * from renamed
