"""Stand-ins for dbt's Jinja context (`env_var`, `modules`) so sqlfluff's Jinja templater renders the models.

Only for linting: dbt itself renders the real values.
"""

import datetime as _datetime
import re as _re
from types import SimpleNamespace as _Namespace


def env_var(name, default=""):  # noqa: ANN001, ANN201 - dbt's signature
    return default or name.lower()


modules = _Namespace(re=_re, datetime=_datetime)

_VARS = {"feature_cutoff_date": "2026-06-30", "label_window_days": "90"}


def var(name, default=None):  # noqa: ANN001, ANN201 - dbt's signature
    return _VARS.get(name, default)


def _raise_compiler_error(message):  # noqa: ANN001, ANN202
    raise RuntimeError(message)


exceptions = _Namespace(raise_compiler_error=_raise_compiler_error)
