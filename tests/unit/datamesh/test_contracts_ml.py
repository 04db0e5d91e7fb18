"""The `ml` block's unsupervised sections (`segments`, `anomalies`) and their cross-contract checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.contracts import AnomaliesSection, ContractRegistry, SegmentsSection, load_contract
from datamesh.errors import ContractError
from datamesh.paths import CONTRACTS_DIR
from tests.lead_segments import write_unsupervised_contracts
from tests.leads import LEADS_CONTRACT


def test_sections_parse_with_defaults(tmp_path: Path) -> None:
    root = write_unsupervised_contracts(tmp_path)
    ml = ContractRegistry.from_dir(root).get("leads").ml
    assert ml is not None
    assert ml.segments == SegmentsSection(product="lead_segments")
    assert ml.anomalies == AnomaliesSection(product="lead_anomalies", percentile=2.0)
    assert ml.id_column_of(ml.segments) == "lead_id"  # idColumn defaults to ml.idColumn
    assert [name for name, _ in ml.unsupervised_sections()] == ["segments", "anomalies"]


def test_repository_declares_its_unsupervised_products_in_the_source_contract() -> None:
    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    declared = {(c.id, name, s.product) for c in contracts if c.ml for name, s in c.ml.unsupervised_sections()}
    assert declared == {("churn_features", "segments", "customer_segments"),
                        ("churn_features", "anomalies", "anomalous_accounts")}
    anomalies = contracts.get("churn_features").ml.anomalies
    assert anomalies is not None and anomalies.percentile == 1.0 and anomalies.id_column == "customer_id"


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ("  segments: {product: lead_segments, features: [company_size]}\n",
         "unknown field 'ml.segments.features'. Did you mean 'featureColumns'?"),
        ("  segments: {product: lead_segments, featureColumns: [industry]}\n",
         "ml.segments.featureColumns lists 'industry' of type string; segments use numeric columns "
         "(int32, int64, double, decimal(p,s), boolean)"),
        ("  anomalies: {product: lead_anomalies, featureColumns: [is_converted]}\n",
         "ml.anomalies.featureColumns lists 'is_converted', the label column"),
        ("  segments: {product: lead_segments, featureColumns: [lead_id]}\n",
         "ml.segments.featureColumns lists 'lead_id', the id column"),
        ("  segments: {product: lead_segments, excludeColumns: [website_visit]}\n",
         "ml.segments names unknown column 'website_visit'. Did you mean 'website_visits'?"),
        ("  segments: {product: leads}\n", "ml.segments.product is 'leads', this product itself"),
        ("  segments: {product: lead_segments}\n  anomalies: {product: lead_segments}\n",
         "ml.anomalies.product 'lead_segments' is also ml.segments.product"),
        ("  segments: {product: lead_scores}\n", "ml.segments.product 'lead_scores' is also ml.predictionsProduct"),
        ("  segments: {product: Lead-Segments}\n", "Invalid product id 'Lead-Segments'"),
        ("  anomalies: {product: lead_anomalies, percentile: 0}\n", "'ml.anomalies.percentile': Input should be greater than 0"),
        ("  anomalies: {product: lead_anomalies, percentile: 100}\n", "'ml.anomalies.percentile': Input should be less than 100"),
        ("  segments: {idColumn: lead_id}\n", "missing required field 'ml.segments.product'"),
    ],
)
def test_bad_sections_name_file_and_field(tmp_path: Path, sections: str, expected: str) -> None:
    path = tmp_path / "sales" / "leads.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(LEADS_CONTRACT.rstrip("\n") + "\n" + sections)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_output_product_must_exist(tmp_path: Path) -> None:
    root = write_unsupervised_contracts(tmp_path, "  segments: {product: lead_segmnts}\n")
    with pytest.raises(ContractError, match=r"leads.yaml: ml.segments.product 'lead_segmnts' is not a known product. "
                                            r"Did you mean 'lead_segments'\?"):
        ContractRegistry.from_dir(root)


def test_output_product_must_list_its_source_in_lineage(tmp_path: Path) -> None:
    root = write_unsupervised_contracts(tmp_path)
    output = root / "sales" / "lead_anomalies.yaml"
    output.write_text(output.read_text().replace("lineage: {inputs: [leads]}\n", ""))
    with pytest.raises(ContractError) as info:
        ContractRegistry.from_dir(root)
    assert "ml.anomalies.product is 'lead_anomalies', but" in str(info.value)
    assert f"{output} does not list 'leads' in lineage.inputs" in str(info.value)


def test_output_product_needs_the_id_column(tmp_path: Path) -> None:
    root = write_unsupervised_contracts(tmp_path, "  segments: {product: lead_segments, idColumn: industry}\n")
    with pytest.raises(ContractError, match="ml.segments.product is 'lead_segments', which has no column 'industry'"):
        ContractRegistry.from_dir(root)


def test_an_output_product_has_one_producer(tmp_path: Path) -> None:
    root = write_unsupervised_contracts(tmp_path)
    twin = LEADS_CONTRACT.replace("id: leads", "id: old_leads").replace("  predictionsProduct: lead_scores\n", "")
    (root / "sales" / "old_leads.yaml").write_text(twin + "  segments: {product: lead_segments}\n")
    segments = root / "sales" / "lead_segments.yaml"
    segments.write_text(segments.read_text().replace("inputs: [leads]", "inputs: [leads, old_leads]"))
    with pytest.raises(ContractError, match="'lead_segments', which ml.segments of .* already produces"):
        ContractRegistry.from_dir(root)


def test_a_decimal_column_is_a_numeric_feature(tmp_path: Path) -> None:
    path = tmp_path / "sales" / "leads.yaml"
    path.parent.mkdir(parents=True)
    text = LEADS_CONTRACT.replace("{name: days_since_contact, type: double}", "{name: days_since_contact, type: 'decimal(8,1)'}")
    assert text != LEADS_CONTRACT
    path.write_text(text.rstrip("\n") + "\n  segments: {product: lead_segments, featureColumns: [days_since_contact]}\n")
    ml = load_contract(path).ml
    assert ml is not None and ml.segments is not None and ml.segments.feature_columns == ("days_since_contact",)
