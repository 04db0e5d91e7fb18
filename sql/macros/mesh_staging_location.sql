{#-
  Where an external mart is written before the `mesh` plugin publishes it as a
  data product (the plugin moves it through the atomic publish; dbt never writes
  to a product's final location). MESH_DBT_STAGING_DIR is set by the platform.
-#}
{% macro mesh_staging_location(relation) -%}
  {{- return(env_var('MESH_DBT_STAGING_DIR', 'target/mesh_staging') ~ '/' ~ relation.name ~ '.parquet') -}}
{%- endmacro %}
