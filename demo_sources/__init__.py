"""Demo data: a deterministic, streaming generator of the six source products
(``datamesh.demo.generator``) whose churn story the dbt mart and the ML layer learn."""
