-- Churn rate by plan at the feature cutoff: the share of customers whose last
-- subscription ended within the label window, and the monthly revenue it took.
-- Plain SQL over the product views; runs unchanged in Trino and DuckDB.
select
    plan,
    count(*) as customers,
    sum(case when has_churned then 1 else 0 end) as churned_customers,
    round(avg(case when has_churned then 1.0e0 else 0.0e0 end), 4) as churn_rate,
    round(sum(case when has_churned then monthly_price_usd else 0.0e0 end), 2) as churned_monthly_revenue_usd
from retention.churn_features
group by plan
order by churn_rate desc
