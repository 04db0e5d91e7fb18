"""Demo source products: a deterministic, streaming generator of the six operational
products of the demo domains (crm, billing, product, support) whose churn story the
dbt marts and the ML layer learn.

A producer of source products outside the platform core: it reads the products'
contracts (:mod:`demo_sources.schemas`), yields Arrow tables
(:func:`demo_sources.generator.iter_product`), and the orchestration publishes them
through the platform's atomic publish. Nothing in ``datamesh/`` imports it.
"""
