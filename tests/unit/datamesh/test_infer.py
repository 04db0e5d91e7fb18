"""`mesh contract infer`: a draft that validates, and under which the same file publishes unchanged."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from datamesh.contracts import ContractRegistry, parse_contract
from datamesh.infer import infer_contract

CUSTOMERS = (
    "CustomerID,Gender,SeniorCitizen,Partner,Country,TotalSpend,Notes,SignupDate,LastSeen\n"
    "7590-VHVEG,Female,0,Yes,NA,29.85,null,2024-01-31,2024-01-31T12:00:00+02:00\n"
    "5575-GNVDE,Male,0,No,DE, ,N/A,2024-02-01,2024-02-01T08:00:00Z\n"
    "3668-QPYBK,Male,1,No,NA,108.15,NULL,2024-02-03,2024-02-03T09:30:00Z\n"
    "7795-CFOCW,Female,0,Yes,NA,1840.75,NaN,2024-02-05,2024-02-05T10:00:00-05:00\n"
    "9237-HQITU,Female,1,No,NA,151.65,,2024-02-07,2024-02-07T11:00:00Z\n"
)


def _write(path: Path, text: str, *, bom: bool = True, crlf: bool = True) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (text.replace("\n", "\r\n") if crlf else text).encode())
    return path


def _publish(tmp_path: Path, path: Path, text: str, product: str, domain: str = "crm") -> int:
    """Save the draft as the only contract of a fresh mesh and publish ``path`` under it; return the rows."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    contracts = tmp_path / "contracts"
    (contracts / domain).mkdir(parents=True, exist_ok=True)
    (contracts / domain / f"{product}.yaml").write_text(text)
    assert product in ContractRegistry.from_dir(contracts)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts))
    return mesh.publish_file(product, path).row_count


def test_draft_of_a_real_world_csv_validates_and_publishes(tmp_path: Path) -> None:
    path = _write(tmp_path / "Customers.csv", CUSTOMERS)
    draft = infer_contract(path, product_id="customers", domain="crm", owner_team="crm-team")
    text = draft.yaml()
    doc = yaml.safe_load(text)
    cols = {c["name"]: c for c in doc["columns"]}
    assert list(cols) == ["customer_id", "gender", "senior_citizen", "partner", "country", "total_spend", "notes",
                          "signup_date", "last_seen"]
    assert cols["customer_id"]["physicalName"] == "CustomerID" and cols["customer_id"]["required"] is True
    assert cols["partner"]["type"] == "boolean"
    assert cols["partner"]["trueValues"] == ["Yes"] and cols["partner"]["falseValues"] == ["No"]
    assert cols["senior_citizen"]["type"] == "int64"
    assert cols["total_spend"]["type"] == "decimal(18,2)" and "required" not in cols["total_spend"]
    assert cols["country"]["type"] == "string" and cols["country"]["required"] is True  # NA is Namibia
    assert cols["notes"]["type"] == "string"
    assert cols["signup_date"]["type"] == "date" and cols["last_seen"]["type"] == "timestamptz"
    assert doc["primaryKey"] == ["customer_id"] and doc["status"] == "draft"
    assert {"rule": "accepted_values", "values": ["Female", "Male"], "severity": "warning"} in cols["gender"]["quality"]
    assert any(r["rule"] == "range" and r["min"] == 29.85 and r["max"] == 1840.75
               for r in cols["total_spend"]["quality"])
    assert "# guessed: 2 distinct values in 5 rows" in text
    assert "whitespace-only cell read as null" in text
    assert "csv:" not in text  # commas, UTF-8: the defaults
    parse_contract(doc, Path("data_products/crm/customers.yaml"))
    assert _publish(tmp_path, path, text, "customers") == 5


def test_semicolon_file_gets_a_csv_block(tmp_path: Path) -> None:
    path = _write(tmp_path / "orders.csv", "OrderID;Amount;Paid\n1;2,5;true\n2;3,5;false\n3;4;true\n", bom=False)
    text = infer_contract(path, domain="shop").yaml()
    doc = yaml.safe_load(text)
    assert doc["csv"] == {"delimiter": ";"} and "delimited by ';'" in text
    cols = {c["name"]: c for c in doc["columns"]}
    assert cols["order_id"]["type"] == "int64" and cols["amount"]["type"] == "string"  # '2,5' is not a number
    assert cols["paid"]["type"] == "boolean" and "trueValues" not in cols["paid"]
    assert doc["id"] == "orders" and doc["primaryKey"] == ["order_id"]
    assert _publish(tmp_path, path, text, "orders", "shop") == 3


def test_codes_with_leading_zeros_stay_text_and_mixed_offsets_too(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.csv", "zip,at\n02134,2024-01-01T00:00:00\n10001,2024-01-01T00:00:00Z\n")
    cols = {c["name"]: c for c in yaml.safe_load(infer_contract(path).yaml())["columns"]}
    assert cols["zip"]["type"] == "string" and cols["at"]["type"] == "string"


def test_large_files_are_sampled_and_say_so(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 3}\n" for i in range(3000))
    path = _write(tmp_path / "big.csv", "id,bucket\n" + rows, bom=False, crlf=False)
    draft = infer_contract(path, sample_rows=1000)
    text = draft.yaml()
    assert draft.sampled and "the first 1,000 rows (a sample; the file has more)" in text
    assert "(in a sample of 1,000 rows)" in text
    assert _publish(tmp_path, path, text, "big", "unassigned") == 3000


def test_parquet_draft_keeps_types_and_publishes(tmp_path: Path) -> None:
    path = tmp_path / "Events.parquet"
    pq.write_table(pa.table({
        "EventID": pa.array([1, 2, 3], pa.int64()),
        "Kind": pa.array(["1", "2", "1"], pa.large_string()),
        "At": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
        "Score": pa.array([0.5, None, 2.0], pa.float64()),
    }), path)
    text = infer_contract(path, product_id="events", domain="product").yaml()
    cols = {c["name"]: c for c in yaml.safe_load(text)["columns"]}
    assert cols["event_id"]["physicalName"] == "EventID" and cols["event_id"]["type"] == "int64"
    assert cols["at"]["type"] == "timestamptz" and cols["kind"]["type"] == "string"
    assert "required" not in cols["score"]
    assert _publish(tmp_path, path, text, "events", "product") == 3


def test_cli_infer_writes_stdout_or_out(cli, tmp_path: Path) -> None:  # noqa: ANN001
    path = _write(tmp_path / "Customers.csv", CUSTOMERS)
    result = cli("contract", "infer", str(path), "--id", "customers", "--domain", "crm")
    assert result.exit_code == 0, result.output
    assert "physicalName: CustomerID" in result.output
    out = tmp_path / "out" / "customers.yaml"
    result = cli("contract", "infer", str(path), "--out", str(out))
    assert result.exit_code == 0 and out.exists() and "wrote" in result.output
    help_text = cli("contract", "infer", "--help").output
    assert "Example" in help_text and "--out" in help_text


@pytest.fixture()
def cli(mesh, contracts_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    from typer.testing import CliRunner

    from datamesh.settings import get_settings
    from meshcli import app

    monkeypatch.setenv("MESH_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("MESH_CONTRACTS_DIR", str(contracts_dir))
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output, result.output
        return result

    yield invoke
    get_settings.cache_clear()


LABELLED = (
    "AccountID,Seats,Spend,Plan,Outcome,Single\n"
    "a1,3,10.5,basic,Won,x\n" "a2,40,99.1,pro,Lost,x\n" "a3,7,12.25,basic,Lost,x\n"
    "a4,120,450.75,enterprise,Won,x\n" "a5,9,15.5,basic,Lost,x\n" "a6,33,80.0,pro,Lost,x\n"
)


def test_label_drafts_an_ml_block(tmp_path: Path) -> None:
    path = _write(tmp_path / "accounts.csv", LABELLED)
    two = infer_contract(path, product_id="accounts", domain="sales", label="Outcome")
    ml = {k: v for k, (v, _comment) in two.ml.items()}
    # Two words that are not yes/no: a word that names an event (won) is the positive class; the comment says why.
    assert ml == {"task": "classification", "idColumn": "account_id", "labelColumn": "outcome",
                  "positiveLabel": "Won"}
    assert "names the positive class" in two.ml["positiveLabel"][1]
    tiers = _write(tmp_path / "tiers.csv", "Id,Tier\n1,gold\n2,silver\n3,silver\n4,silver\n")
    assert infer_contract(tiers, label="Tier").ml["positiveLabel"] == ("gold", "'gold' is the rarer class; the "
                                                                      "model predicts the probability of 'gold'")
    assert parse_contract(yaml.safe_load(two.yaml()), tmp_path / "accounts.yaml").ml.positive_label == "Won"
    three = infer_contract(path, product_id="accounts", domain="sales", label="plan", predictions="plan_scores")
    assert three.ml["task"][0] == "classification" and "positiveLabel" not in three.ml
    assert three.classes == ["basic", "enterprise", "pro"] and three.ml["predictionsProduct"][0] == "plan_scores"
    number = infer_contract(path, product_id="accounts", domain="sales", label="Spend")
    assert number.ml["task"][0] == "regression" and "positiveLabel" not in number.ml


def test_label_errors_name_the_column_and_what_to_do(tmp_path: Path) -> None:
    from datamesh.errors import PublishError

    path = _write(tmp_path / "accounts.csv", LABELLED)
    with pytest.raises(PublishError, match=r"no column 'Outcomes'.*Outcome"):
        infer_contract(path, label="Outcomes")
    with pytest.raises(PublishError, match="it is the id column"):
        infer_contract(path, label="AccountID")
    with pytest.raises(PublishError, match="at least two classes"):
        infer_contract(path, label="Single")


def test_the_predictions_contract_holds_what_scoring_writes(tmp_path: Path) -> None:
    from ml.drafts import predictions_contract_yaml

    path = _write(tmp_path / "accounts.csv", LABELLED)
    for label, predicted, threshold in (("Outcome", "boolean", True), ("Plan", "string", False),
                                        ("Spend", None, False)):
        draft = infer_contract(path, product_id="accounts", domain="sales", label=label)
        contract = parse_contract(yaml.safe_load(predictions_contract_yaml(draft, "scores")), tmp_path / "s.yaml")
        types = {c.name: c.type.value for c in contract.columns}
        assert types.get("predicted_label") == predicted, (label, types)
        assert ("threshold" in types) is threshold and ("prediction" in types) is (predicted is None)
        assert contract.primary_key == ("account_id",) and contract.lineage.inputs == ("accounts",)


def test_cli_infer_never_overwrites_a_file_or_itself(cli, tmp_path: Path) -> None:  # noqa: ANN001
    path = _write(tmp_path / "accounts.csv", LABELLED)
    out = tmp_path / "out" / "accounts.yaml"
    scores = out.with_name("accounts_predictions.yaml")
    scores.parent.mkdir(parents=True)
    scores.write_text("EXISTING")
    result = cli("contract", "infer", str(path), "--id", "accounts", "--label", "Outcome", "--out", str(out))
    assert result.exit_code != 0 and "exists" in result.output
    assert scores.read_text() == "EXISTING" and not out.exists()  # nothing written, not even the first draft
    result = cli("contract", "infer", str(path), "--id", "accounts", "--label", "Outcome", "--predictions",
                 "accounts", "--out", str(tmp_path / "other" / "accounts.yaml"))
    assert result.exit_code != 0 and "id of its own" in result.output
    result = cli("contract", "infer", str(path), "--id", "accounts", "--label", "Outcome", "--out", str(out), "--force")
    assert result.exit_code == 0 and "predictionsProduct" in out.read_text() and "EXISTING" not in scores.read_text()


def test_drafts_publish_what_they_guess(tmp_path: Path) -> None:
    # '+5' is no int64 for the CSV reader (a double is) and non-ASCII digits no number: the guess is what reads.
    text = "Id,Delta,Wide,Klass\n1,+5,\uff11\uff12,1\n2,-3,\uff13,2\n3,+1,\uff14,2\n"
    path = _write(tmp_path / "odd.csv", text)
    draft = infer_contract(path, product_id="odd", domain="crm", label="Klass")
    cols = {c.name: c.type.value for c in draft.columns}
    assert cols["delta"] == "double" and cols["wide"] == "string", cols
    # A two-class whole-number label other than 0/1 names its positive class.
    assert draft.ml["positiveLabel"][0] == 2
    assert _publish(tmp_path, path, draft.yaml(), "odd") == 3
