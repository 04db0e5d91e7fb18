"""The Dagster UI of the platform, in a real browser, on a small demo (see conftest.py).

What a user of `mesh demo` + `mesh ui` sees: the domains as groups of the lineage, a product's
owners, column schema and passing contract checks, the model's plots as images, and a
materialization launched from the UI that lands in the lake as the product's next version.
Every step is a screenshot under test-artifacts/browser/<test>/.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from typing import Any

import pytest

from tests.browser.conftest import Expected, MeshUI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

#: The demo's domains: each is a group of the asset graph.
DOMAINS = ("crm", "billing", "product", "support", "retention")
RUN_DEADLINE_SECONDS = 300
LAUNCH_TIMEOUT_MS = 120_000
_PNG_ALT = re.compile(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def expect_(*args: Any, **kwargs: Any):  # noqa: ANN201
    from playwright.sync_api import expect

    return expect(*args, **kwargs)


def test_lineage_shows_the_domains_as_groups(page, shot, mesh_ui: MeshUI, expected: Expected) -> None:
    assert set(DOMAINS) <= set(expected.group_sizes), f"a demo domain is no group: {expected.group_sizes}"
    page.goto(mesh_ui.url("/asset-groups"))
    expect_(page).to_have_title("Global asset lineage")
    groups = page.locator("svg foreignObject.group")  # the collapsed group nodes of the graph
    expect_(groups.first).to_be_visible()
    shot("lineage")
    expect_(groups).to_have_count(len(expected.group_sizes))
    for name, size in sorted(expected.group_sizes.items()):
        node = groups.filter(has=page.locator(f'[data-tooltip="{name}"]'))
        expect_(node, f"group {name} in the lineage graph").to_have_count(1)
        expect_(node.locator(f'[data-tooltip="{name}"]')).to_have_text(name)
        # The green badge counts the group's materialized assets: the demo materialized all of them.
        materialized = node.locator('[style*="var(--color-background-green)"]')
        expect_(materialized, f"materialized assets of group {name}").to_have_text(str(size), timeout=60_000)
    shot("lineage-with-statuses")


@pytest.mark.parametrize("key", ["crm/customers", "retention/churn_features"])
def test_product_page_shows_owners_schema_and_passing_checks(page, shot, mesh_ui: MeshUI, expected: Expected,
                                                              key: str) -> None:
    domain, product = key.split("/")
    contract = expected.contracts.get(product)
    assert contract.domain == domain
    page.goto(mesh_ui.url(f"/assets/{key}"))
    expect_(page.get_by_role("tab", name="Overview")).to_be_visible()

    # Owners: the contract's contact e-mail and its team (shown without the "team:" prefix, with a people icon).
    owners = page.locator('xpath=//span[normalize-space()="Owners"]/following-sibling::*[1]')
    expect_(owners).to_contain_text(contract.owner.contact)
    team = contract.owner.team.replace("-", "_")
    team_tag = owners.locator("div", has=page.locator('[aria-label="people"]')).filter(has_text=team)
    expect_(team_tag.last).to_be_visible()
    shot("overview-owners", locator=owners)

    # Column schema: the contract's columns in order, with their types and classification tags.
    table = page.locator("table").filter(has=page.locator("thead", has_text="Column name"))
    rows = table.locator("tbody tr")
    expect_(rows).to_have_count(len(contract.columns))
    table.scroll_into_view_if_needed()
    shot("overview-columns")
    for row, column in zip(rows.all(), contract.columns, strict=True):
        name_cell, type_cell = row.locator("td").nth(0), row.locator("td").nth(1)
        expect_(name_cell.locator("span").first).to_have_text(column.name)
        expect_(type_cell).to_contain_text(column.type.value)
        tag = f"classification: {column.classification.value}"
        if column.classification.value == "internal":
            expect_(name_cell).not_to_contain_text("classification:")
        else:
            expect_(name_cell.get_by_text(tag, exact=True)).to_be_visible()
    pii = [c.name for c in contract.columns if c.classification.value == "pii"]
    if pii:
        row = rows.filter(has=page.get_by_text(pii[0], exact=True))
        shot("overview-pii-column", locator=row)

    # Checks: one per contract rule (plus the platform's own, such as query_latency), every one succeeded.
    checks = expected.checks_of(key)
    rule_keys = {rule.key for rule in contract.rules()}
    assert rule_keys and rule_keys <= checks, f"contract rules without an asset check: {rule_keys - checks}"
    page.goto(mesh_ui.url(f"/assets/{key}?view=checks"))
    expect_(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible()
    shot("checks")
    search = page.get_by_placeholder("Filter checks")
    statuses: dict[str, str] = {}
    for name in sorted(checks):
        search.fill(name)  # the list is virtualized: filter so the check's row is rendered
        status = page.locator(f'div[title="{name}"] ~ span')
        expect_(status, f"check {name} in the checks list").to_have_count(1)
        statuses[name] = status.inner_text()
    bad = {name: s for name, s in statuses.items() if s != "Succeeded"}
    assert not bad, f"checks of {key} that did not succeed: {bad}"
    search.fill("")
    first_rule = sorted(rule_keys)[0]
    page.locator(f'div[title="{first_rule}"]').click()
    expect_(page.get_by_role("tab", name="Execution history")).to_be_visible()
    shot("checks-all-succeeded")


def _plots_markdown(mesh_ui: MeshUI, key: str) -> str:
    import dagster as dg

    with mesh_ui.instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    assert event is not None and event.asset_materialization is not None, f"{key} was never materialized"
    plots = event.asset_materialization.metadata.get("plots")
    assert plots is not None, f"the materialization of {key} has no plots: {sorted(event.asset_materialization.metadata)}"
    return plots.value


def _png_width(data: str) -> int:
    head = base64.b64decode(data[:64])  # the IHDR chunk: width and height at bytes 16-24
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", head[16:20])[0]


@pytest.mark.parametrize("key", ["retention/churn_features_model", "retention/revenue_features_model"])
def test_model_page_shows_its_plots_as_images(page, shot, mesh_ui: MeshUI, expected: Expected, key: str) -> None:
    assert key in expected.checks, f"no asset {key}: {sorted(expected.checks)}"
    # What the latest materialization recorded (read from the instance, not from the UI).
    recorded = {alt: _png_width(data) for alt, data in _PNG_ALT.findall(_plots_markdown(mesh_ui, key))}
    assert recorded, f"the plots of {key} hold no PNG image"
    page.goto(mesh_ui.url(f"/assets/{key}"))
    metadata_row = page.locator("tr").filter(has=page.get_by_text("plots", exact=True))
    expect_(metadata_row).to_have_count(1)
    metadata_row.scroll_into_view_if_needed()
    shot("metadata")
    metadata_row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    expect_(dialog).to_contain_text("plots")
    images = dialog.locator("img")
    expect_(images).to_have_count(len(recorded))
    deadline = time.monotonic() + 30
    while True:  # decoding a data: URL is asynchronous
        rendered = images.evaluate_all(
            "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))")
        if all(r["complete"] and r["width"] > 0 for r in rendered) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    shot("plots-dialog")
    for i in range(len(rendered)):
        shot(f"plot-{rendered[i]['alt'].removesuffix('.png')}", locator=images.nth(i))
    assert {r["alt"]: r["width"] for r in rendered} == recorded, \
        f"images in the UI (alt, naturalWidth) differ from the recorded plots: {rendered} vs {recorded}"
    assert all(r["height"] > 0 for r in rendered), rendered


def _launched_run_ids(page) -> list[str]:  # noqa: ANN001
    """Collect the run id of every LaunchPipelineExecution the page sends (the Materialize button's)."""
    ids: list[str] = []

    def on_response(response) -> None:  # noqa: ANN001
        request = response.request
        if "/graphql" not in response.url or "LaunchPipelineExecution" not in (request.post_data or ""):
            return
        try:
            result = response.json()["data"]["launchPipelineExecution"]
        except Exception as exc:  # noqa: BLE001
            ids.append(f"unreadable launch response: {exc}")
            return
        run = result.get("run") or {}
        ok = result.get("__typename") == "LaunchRunSuccess"
        ids.append((run.get("runId") or run.get("id")) if ok else f"launch failed: {result}")

    page.on("response", on_response)
    return ids


def _wait_for_run(mesh_ui: MeshUI, run_id: str) -> dict[str, Any]:
    query = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status jobName " \
            "assetSelection { path } tags { key value } } } }"
    deadline = time.monotonic() + RUN_DEADLINE_SECONDS
    while True:
        run = mesh_ui.graphql(query, {"id": run_id})["runOrError"]
        if run.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} not finished after {RUN_DEADLINE_SECONDS} s: {run}"
        time.sleep(1)


def test_materializing_from_the_ui_publishes_a_new_version(page, shot, mesh_ui: MeshUI, expected: Expected) -> None:
    key, product = "crm/customers", "customers"
    mesh = mesh_ui.mesh()
    before = mesh.catalog.manifest(product)
    from demo_sources.generator import SOURCE_PRODUCTS

    others = {p: mesh.catalog.manifest(p).version for p in SOURCE_PRODUCTS if p != product}
    assert before.version == 1 and others and set(others.values()) == {1}, (before.version, others)

    page.goto(mesh_ui.url(f"/assets/{key}"))
    launched = _launched_run_ids(page)
    # The toolbar's button (its icon's label is part of its accessible name), not "Materialize all" etc.
    button = page.get_by_role("button", name=re.compile(r"^(materialization )?Materialize$"))
    expect_(button).to_be_enabled()
    shot("before")
    button.click()
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    dialog = page.get_by_role("dialog")
    # Launching submits the run to the queue; on a busy machine that takes a while (the button spins).
    expect_(toast.or_(dialog)).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    if dialog.is_visible() and not toast.is_visible():  # a launchpad or a confirmation: accept it
        shot("dialog")
        dialog.get_by_role("button", name=re.compile(r"^(Materialize|Launch)")).last.click()
        expect_(toast).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    shot("launched")
    assert len(launched) == 1 and re.fullmatch(r"[0-9a-f-]{36}", launched[0]), launched
    run_id = launched[0]
    assert run_id[:8] in toast.inner_text()

    page.goto(mesh_ui.url(f"/runs/{run_id}"))
    shot("run-page")
    run = _wait_for_run(mesh_ui, run_id)
    expect_(page).to_have_title(re.compile(rf"{run_id[:8]} \[SUCCESS\]"), timeout=60_000)
    shot("run-succeeded")
    assert run["status"] == "SUCCESS", f"the UI run ended {run['status']}:\n{mesh_ui.log_tail()}"
    assert [a["path"] for a in run["assetSelection"]] == [key.split("/")], run["assetSelection"]
    assert {"key": "dagster/from_ui", "value": "true"} in run["tags"], run["tags"]

    # The lake: the product's next version, committed by that run; the other sources are untouched.
    after = mesh.catalog.manifest(product)
    assert after.version == before.version + 1 == 2
    assert after.row_count == before.row_count  # the UI run kept the demo's scale (from the manifests)
    assert after.orchestrator_run_id == run_id, (after.orchestrator_run_id, run_id)
    tag = "".join(ch for ch in run_id if ch.isalnum())[:8]  # the publish's own id carries the run's tag
    assert after.run_id.endswith(f"-{tag}"), f"manifest run_id {after.run_id!r} does not name Dagster run {run_id}"
    assert {p: mesh.catalog.manifest(p).version for p in others} == others
    import dagster as dg

    with mesh_ui.instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    assert event is not None and event.run_id == run_id
    metadata = event.asset_materialization.metadata
    assert metadata["version"].value == 2 and metadata["run_id"].value == after.run_id
    if "dagster_run_id" in metadata:
        assert metadata["dagster_run_id"].value == run_id

    # The asset page shows the new version.
    page.goto(mesh_ui.url(f"/assets/{key}"))
    version_row = page.locator("tr").filter(has=page.get_by_text("version", exact=True))
    expect_(version_row.locator("td").last).to_have_text("2")
    version_row.scroll_into_view_if_needed()
    shot("asset-version-2")
