-- Billing state per customer at the cutoff: overdue invoices and the current billing period.
with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where issued_at < {{ feature_cutoff_at() }}

),

final as (

    select
        customer_id,
        -- overdue at the cutoff: due before it and not paid before it (status is as of the extract)
        count(*) filter (
            where invoice_status <> 'void'
                and due_date < {{ feature_cutoff_date() }}
                and (paid_at is null or paid_at >= {{ feature_cutoff_at() }})
        ) as overdue_invoices_at_cutoff,
        -- the latest invoice issued before the cutoff covers the running billing period
        arg_max(period_end_date, issued_at) as current_period_end_date

    from invoices
    group by customer_id

)

select * from final
