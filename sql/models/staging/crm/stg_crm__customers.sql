with

source as (

    select * from {{ source('crm', 'customers') }}

),

renamed as (

    select
        customer_id,
        email,
        country_code,
        industry,
        acquisition_channel,
        plan,
        seats,
        signed_up_at

    from source

)

select * from renamed
