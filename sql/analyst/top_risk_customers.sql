-- The 50 customers the churn model flags with the highest probability, with the
-- facts an account manager needs to act (value at stake, renewal, tickets, payments).
-- Plain SQL over the product views; runs unchanged in Trino and DuckDB.
select
    predictions.customer_id,
    customers.email,
    customers.plan,
    features.monthly_price_usd,
    round(predictions.probability, 3) as probability,
    round(predictions.probability * features.monthly_price_usd, 2) as expected_monthly_loss_usd,
    features.days_until_renewal,
    features.tickets_last_90_days,
    features.failed_payments_last_90_days,
    predictions.predicted_label,
    predictions.model_name,
    predictions.model_version

from retention.churn_predictions as predictions
inner join crm.customers as customers
    on predictions.customer_id = customers.customer_id
left join retention.churn_features as features
    on predictions.customer_id = features.customer_id
where predictions.predicted_label
order by predictions.probability desc, predictions.customer_id
limit 50
