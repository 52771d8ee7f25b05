"""The data contract: each kind of bad row is quarantined with the right reason; nothing is lost."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from reference_app.cli import app
from reference_app.config import Settings
from reference_app.data import contracts, store
from reference_app.data.contracts import REASON_COLUMN, ValidationResult, validate_transactions
from reference_app.orchestration.pipeline import DUPLICATE_REASON, validate_step


@pytest.fixture()
def clean(tiny_transactions):
    return tiny_transactions.head(200).reset_index(drop=True)


# --8<-- [start:bad-rows]
BAD_ROWS = [
    # (column, bad value, expected reason)
    ("TX_AMOUNT", -5.0, "TX_AMOUNT:greater_than_or_equal_to(0)"),
    ("TX_AMOUNT", np.inf, "TX_AMOUNT:finite"),
    ("TX_AMOUNT", np.nan, "TX_AMOUNT:not_nullable"),
    ("TX_AMOUNT", "12,50", "TX_AMOUNT:coerce_dtype('float64')"),
    ("CUSTOMER_ID", None, "CUSTOMER_ID:not_nullable"),
    ("TERMINAL_ID", -1, "TERMINAL_ID:greater_than_or_equal_to(0)"),
    ("TX_FRAUD", 2, "TX_FRAUD:isin([0, 1])"),
    ("TX_FRAUD_SCENARIO", 7, "TX_FRAUD_SCENARIO:isin([0, 1, 2, 3, 4])"),
    ("TX_TIME_DAYS", 99, "row:days_match_seconds"),
    ("TX_DATETIME", pd.Timestamp("2019-01-01 10:00:00"), "row:datetime_matches_seconds"),
    ("TX_DATETIME", "not a date", "TX_DATETIME:coerce_dtype('datetime64[ns]')"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_ROWS, ids=[r[2] for r in BAD_ROWS])
def test_bad_row_is_quarantined_with_its_reason(clean, column, value, reason):
    bad = clean.astype(object)
    bad.loc[17, column] = value
    result = validate_transactions(bad)
    assert len(result.valid) + len(result.quarantined) == len(clean)
    assert len(result.quarantined) == 1, result.quarantined
    assert reason in result.quarantined.loc[0, REASON_COLUMN].split("; ")
    assert result.quarantined.loc[0, "TRANSACTION_ID"] == str(clean.loc[17, "TRANSACTION_ID"])
    assert result.reasons[reason] == 1
    assert 17 not in set(result.valid["TRANSACTION_ID"].tolist()) or column == "TRANSACTION_ID"


# --8<-- [end:bad-rows]


def test_scenario_must_match_label(clean):
    bad = clean.copy()
    i = int(np.flatnonzero(bad["TX_FRAUD"] == 0)[0])
    bad.loc[i, "TX_FRAUD_SCENARIO"] = 2
    result = validate_transactions(bad)
    assert result.quarantined[REASON_COLUMN].tolist() == ["row:scenario_matches_label"]


def test_duplicate_id_keeps_first_occurrence(clean):
    bad = clean.copy()
    bad.loc[5, "TRANSACTION_ID"] = bad.loc[4, "TRANSACTION_ID"]
    result = validate_transactions(bad)
    assert result.quarantined[REASON_COLUMN].tolist() == ["TRANSACTION_ID:field_uniqueness"]
    assert bad.loc[4, "TRANSACTION_ID"] in set(result.valid["TRANSACTION_ID"])
    assert len(result.valid) == len(clean) - 1


def test_missing_column_quarantines_every_row(clean):
    result = validate_transactions(clean.drop(columns=["TX_AMOUNT"]))
    assert result.valid.empty and len(result.quarantined) == len(clean)
    assert set(result.quarantined[REASON_COLUMN]) == {"TX_AMOUNT:column_missing"}


def test_clean_data_passes_with_contract_dtypes(clean):
    result = validate_transactions(clean.astype({"TX_AMOUNT": "float32", "CUSTOMER_ID": "int32"}))
    assert result.quarantined.empty and len(result.valid) == len(clean)
    assert result.valid["CUSTOMER_ID"].dtype == np.int64


def test_validate_step_reads_pickles_and_reconciles(tmp_path, tiny_transactions):
    """Externally produced pickles in the handbook's layout: bad rows and a cross-file duplicate."""
    source = tmp_path / "handbook"
    source.mkdir()
    days = [g for _, g in tiny_transactions.groupby(tiny_transactions["TX_DATETIME"].dt.date)][:5]
    days[1] = days[1].astype(object)
    days[1].iloc[0, days[1].columns.get_loc("TX_AMOUNT")] = -1.0
    days[2] = pd.concat([days[2], days[0].head(1)])  # id already used on day 0
    for d in days:
        d.to_pickle(source / f"{d['TX_DATETIME'].iloc[0]:%Y-%m-%d}.pkl")
    settings = Settings(data_dir=str(tmp_path / "data"))
    manifest, reused = validate_step(settings, source=str(source))
    total = sum(len(d) for d in days)
    assert not reused
    assert manifest["input_rows"] == total
    assert manifest["rows"] + manifest["quarantined_rows"] == total
    assert manifest["quarantined_rows"] == 2
    assert manifest["quarantine_reasons"] == {
        "TX_AMOUNT:greater_than_or_equal_to(0)": 1,
        DUPLICATE_REASON: 1,
    }
    quarantined = pd.read_parquet(tmp_path / "data" / "quarantine" / "quarantine.parquet")
    assert sorted(quarantined[REASON_COLUMN]) == sorted(
        ["TX_AMOUNT:greater_than_or_equal_to(0)", DUPLICATE_REASON]
    )
    assert set(quarantined["SOURCE_FILE"]) == {
        days[1]["TX_DATETIME"].iloc[0].strftime("%Y-%m-%d.pkl"),
        days[2]["TX_DATETIME"].iloc[0].strftime("%Y-%m-%d.pkl"),
    }
    valid = store.read_dataset(settings.validated_dir)
    assert valid["TRANSACTION_ID"].is_unique and len(valid) == manifest["rows"]


def test_a_validation_over_its_budget_never_feeds_the_features(tmp_path, tiny_transactions):
    """Above --max-quarantine both datasets are written (to inspect), the validated one marked
    within_budget false; the features step refuses it. Within the budget it builds."""
    from reference_app.orchestration.pipeline import features_step

    source = tmp_path / "raw"
    source.mkdir()
    bad = tiny_transactions.copy()
    bad.loc[bad.index[:5], "TX_AMOUNT"] = -1.0  # 5 rows break the contract
    bad.to_pickle(source / "2018-04-01.pkl")
    settings = Settings(data_dir=str(tmp_path / "data"))
    share = 5 / len(bad)
    manifest, _ = validate_step(settings, source=str(source), max_quarantine=share / 2)
    assert manifest["within_budget"] is False and manifest["quarantined_rows"] == 5
    assert manifest["max_quarantine"] == share / 2
    with pytest.raises(store.DatasetError, match="above its budget --max-quarantine"):
        features_step(settings)
    assert store.read_manifest(settings.features_dir) is None
    manifest, reused = validate_step(settings, source=str(source), max_quarantine=share)
    assert not reused and manifest["within_budget"] is True  # another budget: decided again
    assert features_step(settings)[0]["rows"] == len(bad) - 5


def test_validate_command_exit_status_and_summary(tmp_path, tiny_transactions):
    runner = CliRunner()
    data = tmp_path / "data"
    bad = tiny_transactions.copy()
    bad.loc[3, "TX_FRAUD"] = 5
    store.write_dataset(bad, str(data / "raw"), name="raw")
    result = runner.invoke(app, ["validate", "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    assert "1 quarantined" in result.output and "TX_FRAUD:isin([0, 1])" in result.output
    assert (
        runner.invoke(
            app, ["validate", "--data-dir", str(data), "--max-quarantine", "0.01", "--force"]
        ).exit_code
        == 0
    )
    manifest = json.loads((data / "validated" / "manifest.json").read_text())
    assert manifest["rows"] == len(bad) - 1
    missing = runner.invoke(app, ["validate", "--data-dir", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _corrupt(clean: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Typed columns (the fast path) with random breaks of every rule, several per row at times."""
    rng = np.random.default_rng(seed)
    bad = clean.astype({"TX_AMOUNT": "float32", "CUSTOMER_ID": "int32"} if seed % 3 == 0 else {})
    breaks = [
        ("TX_AMOUNT", lambda v: [-5.0, np.inf, -np.inf, np.nan, 2e6][rng.integers(5)]),
        ("CUSTOMER_ID", lambda v: -1),
        ("TERMINAL_ID", lambda v: -3),
        ("TRANSACTION_ID", lambda v: int(clean["TRANSACTION_ID"].iloc[rng.integers(len(clean))])),
        ("TX_TIME_SECONDS", lambda v: v + [1, 86_400, -(10**9)][rng.integers(3)]),
        ("TX_TIME_DAYS", lambda v: v + 1),
        ("TX_DATETIME", lambda v: [v + pd.Timedelta(seconds=1), pd.NaT][rng.integers(2)]),
        ("TX_FRAUD", lambda v: [2, 1 - v][rng.integers(2)]),
        ("TX_FRAUD_SCENARIO", lambda v: [7, 3, 0][rng.integers(3)]),
    ]
    for row in rng.choice(len(bad), size=int(rng.integers(0, 25)), replace=False):
        for k in rng.choice(len(breaks), size=int(rng.integers(1, 3)), replace=False):
            column, value = breaks[k]
            bad.loc[row, column] = value(bad.loc[row, column])
    return bad


def _pandera_only(frame: pd.DataFrame) -> ValidationResult:
    """The contract with pandera alone on the whole frame (what `validate_transactions` did
    before its vectorised pre-check)."""
    frame = frame.reset_index(drop=True)
    row_reasons = contracts._pandera_reasons(frame)
    remaining = frame.drop(index=list(row_reasons))
    reasons = pd.Series(
        {i: "; ".join(dict.fromkeys(r)) for i, r in sorted(row_reasons.items())}, dtype="string"
    )
    return ValidationResult(
        valid=contracts.TRANSACTION_SCHEMA.validate(remaining)[
            contracts.TRANSACTION_COLUMNS
        ].reset_index(drop=True),
        quarantined=contracts._quarantine_frame(frame, reasons),
        reasons=reasons.str.split("; ").explode().value_counts().to_dict() if len(reasons) else {},
    )


@pytest.mark.parametrize("seed", range(24))
def test_fast_path_equals_pandera_on_the_whole_frame(clean, seed):
    """Same valid rows and dtypes, same quarantined rows and reason strings, same counts."""
    bad = _corrupt(clean, seed)
    got, want = validate_transactions(bad), _pandera_only(bad)
    pd.testing.assert_frame_equal(got.valid, want.valid)
    pd.testing.assert_frame_equal(got.quarantined, want.quarantined)
    assert got.reasons == want.reasons
    assert len(got.valid) + len(got.quarantined) == len(bad)


def test_fast_path_when_most_rows_have_another_origin(clean):
    """The dataset-origin check takes the frame's modal origin: a minority of rows at the usual
    origin is what gets quarantined, as pandera on the whole frame decides."""
    shifted = clean.copy()
    rows = shifted.index[: len(shifted) * 2 // 3]
    shifted.loc[rows, "TX_DATETIME"] += pd.Timedelta(days=1)
    shifted.loc[3, "TX_AMOUNT"] = -1.0
    got, want = validate_transactions(shifted), _pandera_only(shifted)
    pd.testing.assert_frame_equal(got.quarantined, want.quarantined)
    pd.testing.assert_frame_equal(got.valid, want.valid)
    assert len(got.quarantined) == len(shifted) - len(rows) + 1
