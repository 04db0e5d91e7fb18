{#-
  The feature cutoff and the churn label window, from the project vars
  `feature_cutoff_date` (YYYY-MM-DD) and `label_window_days`. Rendered as SQL
  literals after validation, so a bad var fails compilation with a clear message.
  Features use rows strictly before feature_cutoff_at(); the label looks at
  [feature_cutoff_at(), label_window_end_at()).
-#}
{% macro _feature_cutoff_date_value() -%}
  {%- set raw = var('feature_cutoff_date') | string -%}
  {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw) -%}
    {{ exceptions.raise_compiler_error("var 'feature_cutoff_date' must be a date written YYYY-MM-DD (e.g. 2026-06-30), got '" ~ raw ~ "'") }}
  {%- endif -%}
  {{- return(modules.datetime.date.fromisoformat(raw)) -}}
{%- endmacro %}

{% macro _label_window_days_value() -%}
  {%- set raw = var('label_window_days') | string -%}
  {%- if not modules.re.match('^[1-9][0-9]{0,3}$', raw) -%}
    {{ exceptions.raise_compiler_error("var 'label_window_days' must be a whole number of days between 1 and 9999 (e.g. 90), got '" ~ raw ~ "'") }}
  {%- endif -%}
  {{- return(raw | int) -}}
{%- endmacro %}

{% macro feature_cutoff_date() -%}
  cast('{{ _feature_cutoff_date_value().isoformat() }}' as date)
{%- endmacro %}

{% macro feature_cutoff_at() -%}
  cast('{{ _feature_cutoff_date_value().isoformat() }}' as timestamp)
{%- endmacro %}

{% macro label_window_end_at() -%}
  {%- set end = _feature_cutoff_date_value() + modules.datetime.timedelta(days=_label_window_days_value()) -%}
  cast('{{ end.isoformat() }}' as timestamp)
{%- endmacro %}

{#- `days` before the cutoff, as a timestamp literal (start of a "last N days" window). -#}
{% macro days_before_cutoff_at(days) -%}
  {%- set start = _feature_cutoff_date_value() - modules.datetime.timedelta(days=days | int) -%}
  cast('{{ start.isoformat() }}' as timestamp)
{%- endmacro %}
