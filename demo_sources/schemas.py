"""Arrow schemas and value domains of the generated source products, read from their contracts.

The contracts in ``data_products/<domain>/<product>.yaml`` are the one declaration
of a product's columns and of the values a categorical column accepts. The
generator copies neither: a product's Arrow schema is
:meth:`datamesh.contracts.Contract.arrow_schema`, and a categorical column's
values are its ``accepted_values`` rule. Fields are nullable in Arrow, exactly as
the contract loader derives them; ``required: true`` is enforced by the quality
engine at publish.

The generator draws times as UTC ``timestamp``, amounts as ``double`` and counts
as ``int32``; a contract may declare such a column ``timestamptz`` (the same
instant), ``decimal(p,s)`` (the amount rounded to ``s`` places; a value that does
not fit is an error) or a wider type (:func:`datamesh.types.is_widening`), and
the column is cast to it. Any other difference is an error naming the column.

The generator draws integer codes and names them with a column's accepted values
*in the contract's order*: code 0 is the first value. Reordering the values of a
contract therefore changes the generated data (``tests/unit/demo`` pins it with a
digest); removing values the generator draws is refused with an error naming the
product and column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datamesh.contracts import Contract, ContractRegistry, RuleType
from datamesh.errors import ContractError, did_you_mean
from datamesh.paths import CONTRACTS_DIR
from datamesh.types import ColumnType, is_widening
from demo_sources.arrays import categorical


@cache
def project_contracts() -> ContractRegistry:
    """The contracts of this project's ``data_products/`` (read once per process)."""
    return ContractRegistry.from_dir(CONTRACTS_DIR)


@dataclass(frozen=True)
class SourceSchema:
    """The Arrow schema and the categorical value domains of one product, from its contract."""

    product_id: str
    arrow: pa.Schema
    accepted_values: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, contract: Contract) -> SourceSchema:
        domains = {
            rule.column: tuple(rule.values or ())
            for rule in contract.rules()
            if rule.rule is RuleType.ACCEPTED_VALUES and rule.column is not None
        }
        return cls(product_id=contract.id, arrow=contract.arrow_schema(), accepted_values=domains)

    def values(self, column: str) -> tuple[str, ...]:
        """The accepted values of ``column``, in the contract's order."""
        if column not in self.arrow.names:
            raise ContractError(
                f"The demo generator writes column '{column}' of '{self.product_id}', which its contract "
                f"does not declare.{did_you_mean(column, self.arrow.names)}"
            )
        values = self.accepted_values.get(column)
        if values is None:
            raise ContractError(
                f"The demo generator names the codes of {self.product_id}.{column} with the column's accepted "
                f"values, but the contract of '{self.product_id}' has no accepted_values rule on '{column}'. "
                "Add one (quality: [{rule: accepted_values, values: [...]}])."
            )
        if not all(isinstance(value, str) for value in values):
            raise ContractError(
                f"The accepted values of {self.product_id}.{column} must be strings for the demo generator, "
                f"got {list(values)}."
            )
        return values

    def categorical(self, column: str, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        """``values(column)[codes]`` as an Arrow string array (null where ``mask`` is true)."""
        values = self.values(column)
        drawn = np.asarray(codes)
        if drawn.size and int(drawn.max()) >= len(values):
            raise ContractError(
                f"The demo generator draws {int(drawn.max()) + 1} values of {self.product_id}.{column}, but its "
                f"contract accepts only {len(values)}: {list(values)}. Restore the missing values in the "
                "contract or change the generator."
            )
        return categorical(values, drawn, mask)

    def table(self, columns: Mapping[str, pa.Array]) -> pa.Table:
        """The generated ``columns`` as a table with exactly the contract's schema (names, order, types)."""
        declared = self.arrow.names
        missing = [name for name in declared if name not in columns]
        extra = [name for name in columns if name not in declared]
        if missing or extra:
            raise ContractError(
                f"The contract of '{self.product_id}' declares columns {declared}; the demo generator "
                f"builds {list(columns)} (missing {missing}, not declared {extra})."
            )
        conformed = {field.name: _conformed(self.product_id, field.name, columns[field.name], field.type)
                     for field in self.arrow}
        wrong = [
            f"{field.name} is {columns[field.name].type}, expected {field.type}"
            for field in self.arrow
            if conformed[field.name] is None
        ]
        if wrong:
            raise ContractError(
                f"The demo generator's columns of '{self.product_id}' do not have the types its contract "
                f"declares: {'; '.join(wrong)}."
            )
        return pa.Table.from_arrays([conformed[name] for name in declared], schema=self.arrow)


def _conformed(product_id: str, name: str, array: pa.Array, target: pa.DataType) -> pa.Array | None:
    """``array`` as the contract's ``target`` type, if the generator's type stands for it (see the module
    docs); None if it does not."""
    if array.type.equals(target):
        return array
    try:
        drawn, declared = ColumnType.from_arrow(array.type), ColumnType.from_arrow(target)
    except ValueError:
        return None
    if declared.is_decimal and drawn == ColumnType.DOUBLE:
        array = pc.round(array, declared.scale or 0)
    elif not (is_widening(drawn, declared) or (drawn, declared) == (ColumnType.TIMESTAMP, ColumnType.TIMESTAMPTZ)
              or (declared.is_decimal and drawn in (ColumnType.INT32, ColumnType.INT64))):
        return None
    try:
        return pc.cast(array, target)
    except pa.ArrowInvalid as exc:
        raise ContractError(
            f"The demo generator's values of {product_id}.{name} do not fit the contract's type "
            f"{declared.value} ({exc}). Widen the type in the contract."
        ) from None
