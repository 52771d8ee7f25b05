"""The data contract for raw transactions, and quarantine of the rows that break it.

The contract is a pandera schema of the Fraud Detection Handbook's transaction table (ch. 3.2):
types, ranges, nulls, unique ids, and datetime consistency (`TX_DATETIME` = dataset origin +
`TX_TIME_SECONDS`, `TX_TIME_DAYS` = whole days of `TX_TIME_SECONDS`). Rows that fail go to a
quarantine frame with the failed checks; `len(valid) + len(quarantined) == len(input)` always.

Speed: the schema's own checks are first run column by column on the already-typed columns (one
vectorised call each, no pandera validation machinery); a clean frame, the usual case, is done
then. Only when they flag rows does pandera validate, and then only those rows plus the context
its frame-wide checks need, so the quarantine reasons are always pandera's.

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

from ..labcode import Exercise, LabCodeError
from .domains import AMOUNT, FLAG
from .simulator import SECONDS_PER_DAY, TRANSACTION_COLUMNS

REASON_COLUMN = "QUARANTINE_REASON"
SOURCE_COLUMN = "SOURCE_FILE"

SCENARIO_RULE_EXERCISE = Exercise(lab=3, module="contract_rule", function="scenario_matches_label")
"""Lab 03: the learner's `scenario_matches_label` (labs/03-data-pipelines/starter/contract_rule.py)
stands in for this module's row check when `FRAUD_LAB_CODE` has it (`labcode`): the validate step
quarantines what it refuses, with the reason `row:scenario_matches_label`."""


def _origin(frame: pd.DataFrame) -> pd.Series:
    """TX_DATETIME − TX_TIME_SECONDS per row (NaT where either is missing or unparsable)."""
    when = frame["TX_DATETIME"]
    if when.dtype != "datetime64[ns]":  # parsing an already-typed column is slow and a no-op
        when = pd.to_datetime(when, errors="coerce")
    seconds = pd.to_numeric(frame["TX_TIME_SECONDS"], errors="coerce")
    return when - pd.to_timedelta(seconds, unit="s")


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


def _scenario_rule(frame: pd.DataFrame) -> pd.Series:
    """The schema's `scenario_matches_label` check: the reference's, or the learner's (lab 03)."""
    return SCENARIO_RULE_EXERCISE.implementation(_scenario_matches_label)(frame)


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
        # Amounts and labels take their bounds from data.domains, which the model server's
        # request checks read too: one definition of what an amount and a flag may hold.
        "TX_AMOUNT": pa.Column(
            "float64",
            [
                pa.Check.ge(AMOUNT.minimum),
                pa.Check.lt(AMOUNT.below),
                pa.Check(np.isfinite, element_wise=False, name="finite"),
            ],
            nullable=False,
            coerce=True,
        ),
        "TX_TIME_SECONDS": _id_column(),
        "TX_TIME_DAYS": _id_column(),
        "TX_FRAUD": pa.Column(
            "int64", pa.Check.isin(list(FLAG.values)), nullable=False, coerce=True
        ),
        "TX_FRAUD_SCENARIO": pa.Column(
            "int64", pa.Check.isin([0, 1, 2, 3, 4]), nullable=False, coerce=True
        ),
    },
    checks=[
        pa.Check(_datetime_matches_seconds, name="datetime_matches_seconds"),
        pa.Check(_days_match_seconds, name="days_match_seconds"),
        pa.Check(_scenario_rule, name="scenario_matches_label"),
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
    if reasons.empty:
        return pd.DataFrame(
            {c: pd.array([], dtype="string") for c in [*frame.columns, REASON_COLUMN]}
        )
    out = frame.loc[reasons.index].astype("string")
    out[REASON_COLUMN] = reasons.astype("string")
    return out.reset_index(drop=True)


def _typed_columns(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The contract's columns cast to the contract's dtypes, when that cast is exact and cannot
    fail (numpy integers to int64, numpy floats and integers to float64, datetime64[ns] as is);
    None when a column needs pandera's coercion (strings, objects, nullable or unsigned 64-bit
    integers, other datetime types), which can fail row by row."""
    if not frame.columns.is_unique:
        return None
    typed = {}
    for name in TRANSACTION_COLUMNS:  # the schema's columns, in the contract's order
        dtype = frame[name].dtype
        target = np.dtype(str(TRANSACTION_SCHEMA.columns[name].dtype))
        exact = isinstance(dtype, np.dtype) and (
            dtype == target
            or (
                target.kind == "i"
                and (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8))
            )
            or (target.kind == "f" and dtype.kind in "iuf")
        )
        if not exact:
            return None
        typed[name] = frame[name].to_numpy(dtype=target)
    return pd.DataFrame(typed, index=frame.index)


def _passing_rows(check: pa.Check, obj: pd.Series | pd.DataFrame) -> np.ndarray | None:
    """A schema check's outcome per row of `obj` (True: passes), by the check's own vectorised
    function; None when the check gives no per-row outcome (pandera must judge the frame)."""
    try:
        output = check(obj).check_output
    except LabCodeError:  # the learner's rule is not written: stop, never quarantine silently
        raise
    except Exception:  # pandera reports a check that raises; leave that to it
        return None
    if isinstance(output, pd.DataFrame):
        output = output.all(axis="columns")
    if not isinstance(output, pd.Series):
        return None if not bool(output) else np.ones(len(obj), dtype=bool)
    if not output.index.equals(obj.index):
        # A check skips null values (they fail `not_nullable` instead): a row it did not judge
        # counts as suspect here, which is safe — pandera decides.
        output = output.reindex(obj.index, fill_value=False)
    return output.to_numpy(dtype=bool)


def _repeated(values: pd.Series) -> np.ndarray:
    """Every row whose value occurs more than once (all occurrences, the first included)."""
    v = values.to_numpy()
    if len(v) < 2 or bool((v[1:] > v[:-1]).all()):  # strictly increasing: all distinct
        return np.zeros(len(v), dtype=bool)
    return values.duplicated(keep=False).to_numpy()


def _suspect_rows(typed: pd.DataFrame) -> np.ndarray | None:
    """Rows that may break the contract, found with the schema's own checks run column by column.

    A superset of what pandera quarantines: nulls, every failing check, and every occurrence of a
    repeated value in a unique column. None when some check has no per-row outcome.
    """
    suspect = typed.isna().to_numpy().any(axis=1)
    for name, column in TRANSACTION_SCHEMA.columns.items():
        if column.unique:
            suspect |= _repeated(typed[name])
        for check in column.checks:
            passing = _passing_rows(check, typed[name])
            if passing is None:
                return None
            suspect |= ~passing
    for check in TRANSACTION_SCHEMA.checks:
        passing = _passing_rows(check, typed)
        if passing is None:
            return None
        suspect |= ~passing
    return suspect


def _rows_for_pandera(typed: pd.DataFrame, suspect: np.ndarray) -> np.ndarray:
    """Positions of the rows pandera must see to judge the suspects as it would in the whole frame.

    The suspects (with every occurrence of a repeated id, so `unique` keeps the same first one),
    plus more clean rows at the frame's modal origin than there are suspects, so that
    `datetime_matches_seconds` finds the same mode in the subset. The whole frame when the frame
    has too few such rows.
    """
    origin = _origin(typed)
    mode = origin.mode()
    if mode.empty:
        return np.arange(len(typed))
    spare = np.flatnonzero(~suspect & (origin == mode.iloc[0]).to_numpy())
    need = int(suspect.sum()) + 1
    if len(spare) < need:
        return np.arange(len(typed))
    return np.sort(np.concatenate([np.flatnonzero(suspect), spare[:need]]))


def _pandera_reasons(frame: pd.DataFrame) -> dict[int, list[str]]:
    """The failed checks per row label, by pandera (`lazy=True`) on `frame`, as `where:check`.

    Each pass quarantines the rows pandera located; the next pass re-checks the others (a column
    that failed coercion is not checked further in the same pass).
    """
    row_reasons: dict[int, list[str]] = {}
    remaining = frame
    for _ in range(3):
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
    return row_reasons


def validate_transactions(frame: pd.DataFrame) -> ValidationResult:
    """Split a frame of raw transactions into contract-valid rows and quarantined rows.

    Args:
        frame: transactions in the handbook's schema (any dtypes; columns are coerced).

    Returns:
        A `ValidationResult`; `len(valid) + len(quarantined) == len(frame)`.

    Raises:
        LabCodeError: the learner's contract rule (lab 03, `FRAUD_LAB_CODE`) does not import or
            is not written yet (pandera would record its error as a failed check on every row).
    """
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)  # row labels are positions from here on
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        reason = "; ".join(f"{c}:column_missing" for c in missing)
        reasons = pd.Series(reason, index=frame.index)
        return ValidationResult(
            valid=pd.DataFrame(columns=TRANSACTION_COLUMNS).iloc[:0],
            quarantined=_quarantine_frame(frame, reasons),
            reasons={reason: len(frame)} if len(frame) else {},
        )
    if SCENARIO_RULE_EXERCISE.path() is not None:
        _scenario_rule(frame.head(0))  # a rule still marked TODO stops here, before pandera
    typed = _typed_columns(frame)
    suspect = _suspect_rows(typed) if typed is not None else None
    if suspect is None:  # dtypes only pandera can coerce, or a check without per-row outcome
        row_reasons = _pandera_reasons(frame)
        remaining = frame.drop(index=list(row_reasons))
        valid = TRANSACTION_SCHEMA.validate(remaining)[TRANSACTION_COLUMNS].reset_index(drop=True)
    elif suspect.any():
        row_reasons = _pandera_reasons(frame.iloc[_rows_for_pandera(typed, suspect)])
        valid = typed.drop(index=list(row_reasons)).reset_index(drop=True)
    else:  # the usual case: nothing to quarantine, no pandera run
        row_reasons, valid = {}, typed
    reasons = pd.Series(
        {i: "; ".join(dict.fromkeys(r)) for i, r in sorted(row_reasons.items())}, dtype="string"
    )
    counts = reasons.str.split("; ").explode().value_counts().to_dict() if len(reasons) else {}
    return ValidationResult(
        valid=valid, quarantined=_quarantine_frame(frame, reasons), reasons=counts
    )
