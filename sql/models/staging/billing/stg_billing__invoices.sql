with

source as (

    select * from {{ source('billing', 'invoices') }}

),

renamed as (

    select
        invoice_id,
        subscription_id,
        customer_id,
        issued_at,
        due_date,
        period_start_date,
        period_end_date,
        amount_usd,
        status as invoice_status,
        paid_at

    from source

)

select * from renamed
