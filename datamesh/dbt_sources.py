"""dbt sources derived from contracts (``sql/models/sources/_sources.yml``).

The file is generated, committed, and checked for drift by a test, so that
``dbt build`` works on its own while the contracts stay the one declaration.

It carries no data tests: a product's contract is checked on exactly the files a
version commits, before the commit, so a dbt test of the same rule would only run
(and, in Dagster, show) the check a second time. :func:`contract_checked_tests`
names the dbt tests a contract makes redundant, for models over products too.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from datamesh.contracts import Contract, ContractRegistry, RuleType

HEADER = "# Generated from data_products/ by `mesh dbt sources`. Do not edit by hand.\n"
SOURCES_FILE = Path("models") / "sources" / "_sources.yml"
#: Name of the run context file an orchestrator writes into dbt's target folder (read by the dbt plugin).
CONTEXT_FILE = "mesh_context.json"


#: The dbt generic test that runs the same check as a single-column contract rule.
DBT_TEST_OF_RULE: dict[RuleType, str] = {
    RuleType.NOT_NULL: "not_null",
    RuleType.UNIQUE: "unique",
    RuleType.ACCEPTED_VALUES: "accepted_values",
}


def contract_checked_tests(contract: Contract) -> dict[str, set[str]]:
    """Column -> the dbt generic tests its contract already runs at publish.

    ``required`` gives ``not_null``, ``unique`` (or a one-column primary key) gives
    ``unique``, an ``accepted_values`` rule gives ``accepted_values``. A dbt test in
    this set, on the product or on a column passed through from it unchanged,
    checks again what the publish checked.
    """
    covered: dict[str, set[str]] = {}
    for rule in contract.rules():
        test = DBT_TEST_OF_RULE.get(rule.rule)
        columns = (rule.column,) if rule.column else tuple(rule.columns or ())
        if test is not None and len(columns) == 1:
            covered.setdefault(columns[0], set()).add(test)
    return covered


def dbt_model_names(project_dir: Path) -> set[str]:
    return {p.stem for p in (project_dir / "models").rglob("*.sql")}


def render_sources(contracts: ContractRegistry, project_dir: Path) -> str:
    """YAML for every product that dbt reads but does not build itself."""
    built_by_dbt = dbt_model_names(project_dir)
    sources = []
    for domain in contracts.domains:
        tables = []
        for c in contracts:
            if c.domain != domain or c.id in built_by_dbt:
                continue
            tables.append({
                "name": c.id,
                "description": f"{c.description.purpose} {c.description.grain}".strip(),
                "meta": {"owner": c.owner.team, "contract_version": c.version, "contract": str(c.source_path.relative_to(c.source_path.parents[2])) if c.source_path else ""},
                "columns": [{"name": col.name, "description": col.description, "data_type": col.type.duckdb}
                            for col in c.columns],
            })
        if tables:
            sources.append({"name": domain, "schema": domain, "description": f"Data products of the {domain} domain.",
                            "tables": tables})
    return HEADER + yaml.safe_dump({"version": 2, "sources": sources}, sort_keys=False, width=120)


def write_sources(contracts: ContractRegistry, project_dir: Path) -> Path:
    path = project_dir / SOURCES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_sources(contracts, project_dir)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
