"""The data contract for raw transactions, and quarantine of the rows that break it.

The contract is a pandera schema of the Fraud Detection Handbook's transaction table (ch. 3.2):
types, ranges, nulls, unique ids, and datetime consistency (`TX_DATETIME` = dataset origin +
`TX_TIME_SECONDS`, `TX_TIME_DAYS` = whole days of `TX_TIME_SECONDS`). Rows that fail go to a
quarantine frame with the failed checks; `len(valid) + len(quarantined) == len(input)` always.

Example:
    >>> result = validate_transactions(frame)        # doctest: +SKIP
    >>> result.valid.shape, result.quarantined["QUARANTINE_REASON"].head()  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from .simulator import SECONDS_PER_DAY, TRANSACTION_COLUMNS

REASON_COLUMN = "QUARANTINE_REASON"
SOURCE_COLUMN = "SOURCE_FILE"


def _origin(frame: pd.DataFrame) -> pd.Series:
    seconds = pd.to_numeric(frame["TX_TIME_SECONDS"], errors="coerce")
    return pd.to_datetime(frame["TX_DATETIME"], errors="coerce") - pd.to_timedelta(
        seconds, unit="s"
    )


def _datetime_matches_seconds(frame: pd.DataFrame) -> pd.Series:
    """TX_DATETIME − TX_TIME_SECONDS is the same midnight (the dataset origin) on every row."""
    origin = _origin(frame)
    mode = origin.mode()
    if mode.empty:
        return pd.Series(False, index=frame.index)
    return (origin == mode.iloc[0]) & (origin.dt.normalize() == origin)


# --8<-- [start:row-checks]
def _days_match_seconds(frame: pd.DataFrame) -> pd.Series:
    """TX_TIME_DAYS is the whole number of days in TX_TIME_SECONDS."""
    return frame["TX_TIME_DAYS"] == frame["TX_TIME_SECONDS"] // SECONDS_PER_DAY


def _scenario_matches_label(frame: pd.DataFrame) -> pd.Series:
    """A fraud has a scenario 1–4 (4: the injected night-testing pattern), a genuine one scenario 0."""
    return (frame["TX_FRAUD"] == 1) == (frame["TX_FRAUD_SCENARIO"] > 0)


# --8<-- [end:row-checks]


_ROW_CHECKS = {"datetime_matches_seconds", "days_match_seconds", "scenario_matches_label"}


def _id_column(**kwargs) -> pa.Column:
    return pa.Column("int64", pa.Check.ge(0), nullable=False, coerce=True, **kwargs)


# --8<-- [start:schema]
TRANSACTION_SCHEMA = pa.DataFrameSchema(
    {
        "TRANSACTION_ID": _id_column(unique=True, report_duplicates="exclude_first"),
        "TX_DATETIME": pa.Column("datetime64[ns]", nullable=False, coerce=True),
        "CUSTOMER_ID": _id_column(),
        "TERMINAL_ID": _id_column(),
        "TX_AMOUNT": pa.Column(
            "float64",
            [
                pa.Check.ge(0),
                pa.Check.lt(1e6),
                pa.Check(np.isfinite, element_wise=False, name="finite"),
            ],
            nullable=False,
            coerce=True,
        ),
        "TX_TIME_SECONDS": _id_column(),
        "TX_TIME_DAYS": _id_column(),
        "TX_FRAUD": pa.Column("int64", pa.Check.isin([0, 1]), nullable=False, coerce=True),
        "TX_FRAUD_SCENARIO": pa.Column(
            "int64", pa.Check.isin([0, 1, 2, 3, 4]), nullable=False, coerce=True
        ),
    },
    checks=[
        pa.Check(_datetime_matches_seconds, name="datetime_matches_seconds"),
        pa.Check(_days_match_seconds, name="days_match_seconds"),
        pa.Check(_scenario_matches_label, name="scenario_matches_label"),
    ],
    strict="filter",
    name="raw_transactions",
)
# --8<-- [end:schema]


# --8<-- [start:result]
@dataclass
class ValidationResult:
    """Outcome of validating one frame.

    Attributes:
        valid: rows that meet the contract, coerced to the contract's dtypes.
        quarantined: the other rows, original values as strings, plus `QUARANTINE_REASON`
            (`column:check` items joined by "; ").
        reasons: count of quarantined rows per failed check.
    """

    valid: pd.DataFrame
    quarantined: pd.DataFrame
    reasons: dict[str, int] = field(default_factory=dict)


# --8<-- [end:result]


def _quarantine_frame(frame: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """Keep every original value (as a string, so mixed types survive Parquet) plus the reason."""
    out = frame.loc[reasons.index].astype("string")
    out[REASON_COLUMN] = reasons.astype("string")
    return out.reset_index(drop=True)


def validate_transactions(frame: pd.DataFrame) -> ValidationResult:
    """Split a frame of raw transactions into contract-valid rows and quarantined rows.

    Args:
        frame: transactions in the handbook's schema (any dtypes; columns are coerced).

    Returns:
        A `ValidationResult`; `len(valid) + len(quarantined) == len(frame)`.
    """
    frame = frame.reset_index(drop=True)
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        reason = "; ".join(f"{c}:column_missing" for c in missing)
        reasons = pd.Series(reason, index=frame.index)
        return ValidationResult(
            valid=pd.DataFrame(columns=TRANSACTION_COLUMNS).iloc[:0],
            quarantined=_quarantine_frame(frame, reasons),
            reasons={reason: len(frame)} if len(frame) else {},
        )
    row_reasons: dict[int, list[str]] = {}
    remaining = frame
    for _ in range(3):  # each pass quarantines the rows pandera located; the next pass re-checks
        try:
            TRANSACTION_SCHEMA.validate(remaining, lazy=True)
            break
        except SchemaErrors as err:
            cases = err.failure_cases
            located = cases[cases["index"].notna()]
            for col, check, idx in zip(
                located["column"], located["check"], located["index"], strict=True
            ):
                where = "row" if check in _ROW_CHECKS else col
                row_reasons.setdefault(int(idx), []).append(f"{where}:{check}")
            if located.empty:
                # A failure pandera cannot pin to rows: quarantine what is left rather than guess.
                text = "; ".join(
                    sorted(
                        {f"{c}:{k}" for c, k in zip(cases["column"], cases["check"], strict=True)}
                    )
                )
                for idx in remaining.index:
                    row_reasons.setdefault(int(idx), []).append(text)
            remaining = frame.drop(index=list(row_reasons))
    reasons = pd.Series(
        {i: "; ".join(dict.fromkeys(r)) for i, r in sorted(row_reasons.items())}, dtype="string"
    )
    valid = TRANSACTION_SCHEMA.validate(remaining)[TRANSACTION_COLUMNS].reset_index(drop=True)
    counts = reasons.str.split("; ").explode().value_counts().to_dict() if len(reasons) else {}
    return ValidationResult(
        valid=valid, quarantined=_quarantine_frame(frame, reasons), reasons=counts
    )
