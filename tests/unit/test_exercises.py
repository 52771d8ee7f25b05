"""The labs' Python exercises: behaviours fail on the starter and pass on the solution; the
learner's function is what the app runs when FRAUD_LAB_CODE names its folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from reference_app import labcode
from reference_app.config import Settings
from reference_app.exercises import LABS, describe, run
from reference_app.monitoring import drift

ROOT = Path(__file__).resolve().parents[2]


def lab_dir(lab: int) -> Path:
    (folder,) = ROOT.glob(f"labs/{lab:02d}-*")
    return folder


@pytest.mark.parametrize("lab", LABS)
def test_starter_fails_every_behaviour_and_names_the_todo(lab):
    results = run(lab, lab_dir(lab) / "starter")
    assert results and not any(r.passed for r in results)
    assert all(f"TODO(lab-{lab:02d})" in r.found for r in results), results
    assert all(r.expected and "make lab-" in r.hint for r in results)
    for solved in (lab_dir(lab) / "solution").glob("*.py"):  # each solved file has its starter
        assert f"TODO(lab-{lab:02d})" in (lab_dir(lab) / "starter" / solved.name).read_text()


@pytest.mark.parametrize("lab", LABS)
def test_solution_passes_every_behaviour(lab):
    results = run(lab, lab_dir(lab) / "solution")
    assert [r.behaviour for r in results] == [d["behaviour"] for d in describe(lab)]
    assert all(r.passed for r in results), [r for r in results if not r.passed]


WRONG_PSI = {
    "no floor for empty bins": "float(np.sum((c - r) * np.log(c / r)))",
    "log of the wrong ratio": "float(np.sum((c - r) * np.log(np.maximum(r, 1e-4) / np.maximum(c, 1e-4))))",
    "the mean instead of the sum": "float(np.mean((np.maximum(c, 1e-4) - np.maximum(r, 1e-4)) * np.log(np.maximum(c, 1e-4) / np.maximum(r, 1e-4))))",
    "one direction only": "float(np.sum(np.maximum(c, 1e-4) * np.log(np.maximum(c, 1e-4) / np.maximum(r, 1e-4))))",
}


@pytest.mark.parametrize("mistake", WRONG_PSI, ids=list(WRONG_PSI))
def test_a_wrong_psi_fails_a_behaviour(tmp_path, mistake):
    (tmp_path / "psi.py").write_text(
        f"import numpy as np\n\n\ndef psi_from_shares(r, c):\n    return {WRONG_PSI[mistake]}\n"
    )
    failed = [r for r in run(11, tmp_path) if not r.passed]
    assert failed, mistake
    assert all(r.found != r.expected for r in failed)


def test_a_module_that_does_not_import_fails_with_its_error(tmp_path):
    (tmp_path / "psi.py").write_text(
        "import numpy as np\n\ndef psi_from_shares(r, c)\n    return 0\n"
    )
    results = run(11, tmp_path)
    assert not any(r.passed for r in results)
    assert "does not import: SyntaxError" in results[0].found


def test_the_drift_monitor_runs_the_learners_psi_when_lab_code_names_it(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text("def psi_from_shares(r, c):\n    return 42.0\n")
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=500), rng.normal(0.3, size=500)
    reference = drift.psi(before, after)
    monkeypatch.setenv(labcode.ENV, f"/no/such/folder:{tmp_path}")
    assert drift.psi(before, after) == 42.0
    monkeypatch.delenv(labcode.ENV)
    assert drift.psi(before, after) == reference


def test_an_unwritten_exercise_stops_the_command_and_names_the_lab(monkeypatch):
    monkeypatch.setenv(labcode.ENV, str(lab_dir(11) / "starter"))
    with pytest.raises(
        labcode.LabCodeError,
        match=r"lab 11: psi_from_shares in .*starter/psi.py is not written yet",
    ) as err:
        drift.psi(np.arange(100.0), np.arange(100.0) + 5)
    assert "TODO(lab-11)" in str(err.value) and f"unset {labcode.ENV}" in str(err.value)


def test_a_module_without_the_function_is_refused(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text("def psi(r, c):\n    return 0.0\n")
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError, match="defines no function psi_from_shares"):
        drift.psi(np.arange(100.0), np.arange(100.0))


def test_an_exception_of_the_contract_reaches_the_caller_as_it_is(monkeypatch):
    """Lab 04's solved model_inputs raises MissingFeatureError for a missing entity: the serving
    path gets it as it is (its callers turn it into a clear 4xx), not as "your code raised"."""
    from reference_app.features.online import MissingFeatureError
    from reference_app.serving.online import serving_inputs

    monkeypatch.setenv(labcode.ENV, str(lab_dir(4) / "solution"))
    transaction = {
        "TRANSACTION_ID": 1,
        "TX_DATETIME": "2018-08-08T10:00:00",
        "CUSTOMER_ID": 7,
        "TERMINAL_ID": 3,
        "TX_AMOUNT": 12.5,
    }
    with pytest.raises(MissingFeatureError) as err:
        serving_inputs(transaction, {})
    assert not isinstance(err.value, labcode.LabCodeError)
    assert err.value.entity == "CUSTOMER_ID=7", err.value


def test_lab_code_is_the_settings_field():
    assert labcode.ENV == "FRAUD_" + "lab_code".upper()
    assert Settings.model_fields["lab_code"].default == ""


# Wrong answers a learner writes: each fails at least one behaviour (found ≠ expected).
WRONG = {
    2: (
        "nearby.py",
        {
            "< instead of ≤": "np.flatnonzero(np.sqrt(((terminal_xy - customer_xy) ** 2).sum(axis=1)) < radius)",
            "the mask, not indices": "np.sqrt(((terminal_xy - customer_xy) ** 2).sum(axis=1)) <= radius",
            "Manhattan distance": "np.flatnonzero(np.abs(terminal_xy - customer_xy).sum(axis=1) <= radius)",
        },
        "import numpy as np\n\n\ndef terminals_near(customer_xy, terminal_xy, radius):\n    return {}\n",
    ),
    5: (
        "promotion.py",
        {
            "≥ instead of >": "'challenger' if not passed_gate else ('champion' if champion_ap is None or candidate_ap >= champion_ap else 'challenger')",
            "no gate without a champion": "'champion' if champion_ap is None else ('champion' if passed_gate and candidate_ap > champion_ap else 'challenger')",
            "the gate alone": "'champion' if passed_gate else 'challenger'",
        },
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return {}\n",
    ),
    3: (
        "contract_rule.py",
        {
            "one direction only": "(frame['TX_FRAUD'] == 0) | (frame['TX_FRAUD_SCENARIO'] > 0)",
            "scenario 0 for frauds": "(frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] >= 0)",
            "a numpy array": "((frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] > 0)).to_numpy()",
            "a fresh index": "((frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] > 0)).reset_index(drop=True)",
        },
        "import pandas as pd\n\n\ndef scenario_matches_label(frame):\n    return {}\n",
    ),
    6: (
        "gate.py",
        {
            "≤ instead of <": "[s for s, bad in [(f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\", metrics['auc_roc'] <= min_auc), (f\"average precision {metrics['average_precision']:.4f} < {min_ap}\", metrics['average_precision'] <= min_ap)] if bad]",
            "only the first failure": "[s for s, bad in [(f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\", metrics['auc_roc'] < min_auc), (f\"average precision {metrics['average_precision']:.4f} < {min_ap}\", metrics['average_precision'] < min_ap)] if bad][:1]",
            "AUC only": "[f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\"] if metrics['auc_roc'] < min_auc else []",
        },
        "def gate_failures(metrics, min_auc, min_ap):\n    return {}\n",
    ),
    9: (
        "request_check.py",
        {
            "missing only": "(', '.join(n for n in expected if n not in names) or None)",
            "sets only (no repeats)": "(None if set(names) == set(expected) else 'wrong inputs: ' + ', '.join(sorted(set(names) ^ set(expected))))",
            "refuses everything": "'bad request'",
        },
        "def input_problem(names, expected):\n    return {}\n",
    ),
    10: (
        "split.py",
        {
            "Python's hash()": "('challenger' if hash(key) % 10_000 < challenger_traffic * 100 else 'champion') if 0 <= challenger_traffic <= 100 else int('x')",
            "random, not sticky": "('challenger' if random.random() * 100 < challenger_traffic else 'champion') if 0 <= challenger_traffic <= 100 else int('x')",
            "the variants swapped": "('champion' if bucket(key) < challenger_traffic * 100 else 'challenger') if 0 <= challenger_traffic <= 100 else int('x')",
            "the share read as a fraction": "('challenger' if bucket(key) < challenger_traffic * 10_000 else 'champion') if 0 <= challenger_traffic <= 100 else int('x')",
            "MD5, not SHA-256": "('challenger' if int.from_bytes(hashlib.md5(key.encode()).digest()[:8], 'big') % 10_000 < challenger_traffic * 100 else 'champion') if 0 <= challenger_traffic <= 100 else int('x')",
            "the top buckets, not the bottom": "('challenger' if bucket(key) >= 10_000 - challenger_traffic * 100 else 'champion') if 0 <= challenger_traffic <= 100 else int('x')",
            "no check of the share": "'challenger' if bucket(key) < challenger_traffic * 100 else 'champion'",
        },
        "import hashlib\nimport random\n\n\ndef bucket(key):\n    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'big') % 10_000\n\n\ndef choose_variant(key, challenger_traffic):\n    return {}\n",
    ),
}
# Lab 07: slice_failures, one mistake each (SLICE: the sentence of slice n with labels y, scores s).
SLICE = "f'{n}: AUC ROC {roc_auc_score(y, s):.4f} < {min_auc} ({len(y):,} transactions, {int(np.sum(y)):,} frauds)'"
JUDGED = "min_frauds <= np.sum(y) <= len(y) - min_frauds"
WRONG[7] = (
    "model_checks.py",
    {
        "≤ instead of <": f"[{SLICE} for n, (y, s) in slices.items() if {JUDGED} and roc_auc_score(y, s) <= min_auc]",
        "small slices judged": f"[{SLICE} for n, (y, s) in slices.items() if roc_auc_score(y, s) < min_auc]",
        "frauds counted, not legitimate ones": f"[{SLICE} for n, (y, s) in slices.items() if np.sum(y) >= min_frauds and roc_auc_score(y, s) < min_auc]",
        "only the first failure": f"[{SLICE} for n, (y, s) in slices.items() if {JUDGED} and roc_auc_score(y, s) < min_auc][:1]",
        "slices sorted by name": f"[{SLICE} for n, (y, s) in sorted(slices.items()) if {JUDGED} and roc_auc_score(y, s) < min_auc]",
    },
    "import numpy as np\nfrom sklearn.metrics import roc_auc_score\n\n\ndef slice_failures(slices, min_auc, min_frauds):\n    return {}\n",
)
# Lab 08: image_labels with one mistake each in an otherwise right body.
LABELS_BODY = (
    "    def pin(package):\n"
    "        for line in lock.splitlines():\n"
    "            name, sep, version = line.split('#')[0].split(';')[0].partition('==')\n"
    "            if sep and re.sub(r'[-_.]+', '-', name.strip()).lower() == package:\n"
    "                return version.strip()\n"
    "        raise ValueError(f'no pin of {package}')\n"
    "    runtimes = ('mlserver', 'onnxruntime', 'scikit-learn')\n"
    "    return {'org.opencontainers.image.revision': commit,\n"
    "            **{'io.fraud-lab.runtime.' + p: pin(p) for p in runtimes}}\n"
)
WRONG[8] = (
    "labels.py",
    {
        "the commit without -dirty": LABELS_BODY.replace(
            "revision': commit", "revision': commit.removesuffix('-dirty')"
        ),
        "the first line that starts with the name": LABELS_BODY.replace(
            "re.sub(r'[-_.]+', '-', name.strip()).lower() == package",
            "name.strip().lower().startswith(package)",
        ),
        "names compared as written": LABELS_BODY.replace(
            "re.sub(r'[-_.]+', '-', name.strip()).lower()", "name.strip()"
        ),
        "unknown for a missing pin": LABELS_BODY.replace(
            "raise ValueError(f'no pin of {package}')", "return 'unknown'"
        ),
        "the torch variant for the runtime": LABELS_BODY.replace(
            "'mlserver', 'onnxruntime', 'scikit-learn'", "'mlserver', 'onnxruntime', 'torch'"
        ),
    },
    "import re\n\n\ndef image_labels(commit, lock):\n{}",
)
# Lab 12: burn_rate_threshold, one mistake each.
WRONG[12] = (
    "burnrate.py",
    {
        "the Workbook's 30 days": "budget_share * 30 * 24 / window_hours * (1 - slo_target)",
        "the burn rate, not the error ratio": "budget_share * period_days * 24 / window_hours",
        "the target as the budget": "budget_share * period_days * 24 / window_hours * slo_target",
        "days over hours": "budget_share * period_days / window_hours * (1 - slo_target)",
        "the page's 14.4 for every window": "14.4 * (1 - slo_target)",
    },
    "def burn_rate_threshold(slo_target, period_days, window_hours, budget_share):\n    return {}\n",
)
# Lab 04: model_inputs with one mistake each in an otherwise right body.
INPUTS_BODY = (
    "    when = pd.Timestamp(transaction['TX_DATETIME'])\n"
    "    computed = {'TX_AMOUNT': float(transaction['TX_AMOUNT']),\n"
    "                'TX_DURING_WEEKEND': float(when.weekday() >= 5),\n"
    "                'TX_DURING_NIGHT': float(when.hour <= 6)}\n"
    "    inputs = []\n"
    "    for name in FEATURE_NAMES:\n"
    "        if name in computed:\n"
    "            inputs.append(computed[name])\n"
    "            continue\n"
    "        value = online.get(name)\n"
    "        if value is None or math.isnan(value):\n"
    "            key = 'CUSTOMER_ID' if name.startswith('CUSTOMER_ID') else 'TERMINAL_ID'\n"
    "            raise MissingFeatureError(f'{key}={transaction[key]}', name, 'missing')\n"
    "        inputs.append(float(value))\n"
    "    return inputs\n"
)
WRONG[4] = (
    "online_inputs.py",
    {
        "weekend from Friday": INPUTS_BODY.replace("weekday() >= 5", "weekday() >= 4"),
        "night before 06:00 only": INPUTS_BODY.replace("hour <= 6", "hour < 6"),
        "a 0 for a missing feature": INPUTS_BODY.replace(
            "value = online.get(name)", "value = online.get(name) or 0.0"
        ),
        "NaN passed through": INPUTS_BODY.replace(" or math.isnan(value)", ""),
        "window features sorted by name": INPUTS_BODY.replace(
            "for name in FEATURE_NAMES:",
            "for name in [*FEATURE_NAMES[:3], *sorted(FEATURE_NAMES[3:])]:",
        ),
        "the wrong entity named": INPUTS_BODY.replace(
            "'CUSTOMER_ID' if name.startswith('CUSTOMER_ID') else 'TERMINAL_ID'", "'CUSTOMER_ID'"
        ),
        "the day of month, not of the week": INPUTS_BODY.replace("when.weekday()", "when.day"),
    },
    "import math\n\nimport pandas as pd\n\n"
    "from reference_app.features.online import MissingFeatureError\n"
    "from reference_app.features.transform import FEATURE_NAMES\n\n\n"
    "def model_inputs(transaction, online):\n{}",
)
# Lab 17: stream_timings with one mistake each in an otherwise right body.
TIMINGS_BODY = (
    "    arrivals, completion_tokens, seen = [], None, 0\n"
    "    for arrived, payload in events:\n"
    "        seen += 1\n"
    "        if payload.strip() == '[DONE]':\n"
    "            break\n"
    "        chunk = json.loads(payload)\n"
    "        if 'error' in chunk:\n"
    "            raise ValueError(chunk['error'])\n"
    "        usage = chunk.get('usage') or {}\n"
    "        if usage.get('completion_tokens') is not None:\n"
    "            completion_tokens = usage['completion_tokens']\n"
    "        choices = chunk.get('choices') or []\n"
    "        if not choices:\n"
    "            continue\n"
    "        text = (choices[0].get('delta') or {}).get('content') or choices[0].get('text') or ''\n"
    "        if text:\n"
    "            arrivals.append(arrived)\n"
    "    tokens = completion_tokens if completion_tokens is not None else len(arrivals)\n"
    "    span = arrivals[-1] - arrivals[0] if arrivals else 0.0\n"
    "    return {'ttft_s': arrivals[0] - sent_at if arrivals else None,\n"
    "            'itl_s': [b - a for a, b in zip(arrivals, arrivals[1:])],\n"
    "            'chunks': len(arrivals), 'completion_tokens': completion_tokens,\n"
    "            'decode_tokens_per_s': (tokens - 1) / span if tokens >= 2 and span > 0 else None}\n"
)
WRONG[17] = (
    "stream_timing.py",
    {
        "TTFT at the first event (the role chunk)": TIMINGS_BODY.replace(
            "arrivals[0] - sent_at if arrivals", "events[0][0] - sent_at if arrivals"
        ),
        "throughput over the whole request": TIMINGS_BODY.replace(
            "span = arrivals[-1] - arrivals[0]", "span = arrivals[-1] - sent_at"
        ),
        "every token over the decode time": TIMINGS_BODY.replace(
            "(tokens - 1) / span", "tokens / span"
        ),
        "usage ignored": TIMINGS_BODY.replace(
            "completion_tokens if completion_tokens is not None else len(arrivals)", "len(arrivals)"
        ),
        "every chunk is a token": TIMINGS_BODY.replace("        if text:\n", "        if True:\n"),
        "no stop at [DONE]": TIMINGS_BODY.replace(
            "        if payload.strip() == '[DONE]':\n            break\n",
            "        if payload.strip() == '[DONE]':\n            continue\n",
        ),
        "chat only (no completions text)": TIMINGS_BODY.replace(" or choices[0].get('text')", ""),
        "an error event skipped": TIMINGS_BODY.replace(
            "raise ValueError(chunk['error'])", "continue"
        ),
        "0 tokens/s for a single token": TIMINGS_BODY.replace(
            "if tokens >= 2 and span > 0 else None", "if tokens >= 2 and span > 0 else 0.0"
        ),
    },
    "import json\n\n\ndef stream_timings(sent_at, events):\n{}",
)
# Lab 15: redact with one mistake each in an otherwise right body.
REDACT_BODY = (
    "    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):\n"
    "        line = line.replace(secret, '***')\n"
    "    line = URL_PASSWORD.sub(lambda m: m['keep'] + '***@', line)\n"
    "    return AUTHORIZATION.sub(lambda m: m['keep'] + '***', line)\n"
)
WRONG[15] = (
    "redact.py",
    {
        "the shortest secret first": REDACT_BODY.replace(", key=len, reverse=True)", ", key=len)"),
        "the first occurrence only": REDACT_BODY.replace("'***')", "'***', 1)"),
        "empty secrets kept": REDACT_BODY.replace("{s for s in secrets if s}", "set(secrets)"),
        "URL passwords left": REDACT_BODY.replace("URL_PASSWORD.sub(", "(lambda f, s: s)("),
        "the URL's user masked too": REDACT_BODY.replace(
            "URL_PASSWORD.sub(lambda m: m['keep'] + '***@', line)",
            "re.sub(r'://[^/\\s@]+@', '://***@', line)",
        ),
        "Basic only": REDACT_BODY.replace(
            "AUTHORIZATION.sub(", "re.compile(r'(?P<keep>Authorization: Basic )\\S+').sub("
        ),
    },
    "import re\n\n"
    "URL_PASSWORD = re.compile(r'(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\\s:@]+:)[^@\\s/]+@')\n"
    "AUTHORIZATION = re.compile(\n"
    '    r"(?P<keep>(?i:authorization)[\\"\']?\\s*[:=]\\s*[\\"\']?(?i:basic|bearer)\\s+)[^\\s\\"\',]+"\n'
    ")\n\n\n"
    "def redact(line, secrets):\n{}",
)
# Lab 16: propose with one mistake each in an otherwise right body.
PROPOSE_BODY = (
    "    if len(cpu_cores) == 0 or len(memory_bytes) == 0:\n"
    "        raise ValueError('no samples')\n"
    "    cpu_m = np.percentile(cpu_cores, 95) * 1.2 * 1000\n"
    "    cpu = max(1, math.ceil(round(cpu_m / 10, 9))) * 10\n"
    "    memory = max(1, math.ceil(round(max(memory_bytes) * 1.2 / MIB / 16, 9))) * 16\n"
    "    return {'requests': {'cpu': f'{cpu}m', 'memory': f'{memory}Mi'},\n"
    "            'limits': {'memory': f'{2 * memory}Mi'}}\n"
)
WRONG[16] = (
    "rightsize.py",
    {
        "the CPU peak": PROPOSE_BODY.replace("np.percentile(cpu_cores, 95)", "max(cpu_cores)"),
        "the CPU mean": PROPOSE_BODY.replace("np.percentile(cpu_cores, 95)", "np.mean(cpu_cores)"),
        "no headroom": PROPOSE_BODY.replace("95) * 1.2", "95)"),
        "rounded to the nearest step": PROPOSE_BODY.replace(
            "math.ceil(round(cpu_m / 10, 9))", "round(cpu_m / 10)"
        ),
        "memory in MB": PROPOSE_BODY.replace("/ MIB /", "/ 1e6 /"),
        "a CPU limit too": PROPOSE_BODY.replace(
            "'limits': {'memory'", "'limits': {'cpu': f'{cpu}m', 'memory'"
        ),
        "memory limit = request": PROPOSE_BODY.replace("{2 * memory}Mi", "{memory}Mi"),
        "zero for no samples": PROPOSE_BODY.replace(
            "raise ValueError('no samples')",
            "return {'requests': {'cpu': '0m', 'memory': '0Mi'}, 'limits': {}}",
        ),
        "no floor": PROPOSE_BODY.replace("max(1, math.ceil(round(cpu_m", "(math.ceil(round(cpu_m"),
    },
    "import math\n\nimport numpy as np\n\nMIB = 1024 * 1024\n\n\n"
    "def propose(cpu_cores, memory_bytes):\n{}",
)
# Lab 14: prequential_folds, one mistake each in an otherwise right body.
FOLDS_BODY = (
    "    newest = train_start - dt.timedelta(days=delta_delay + delta_assessment)\n"
    "    folds = []\n"
    "    for fold in range(n_folds):\n"
    "        start = newest - dt.timedelta(days=fold * delta_assessment)\n"
    "        valid_start = start + dt.timedelta(days=delta_train + delta_delay)\n"
    "        valid_end = valid_start + dt.timedelta(days=delta_assessment - 1)\n"
    "        folds.append({'train_start': start, 'valid_start': valid_start, 'valid_end': valid_end})\n"
    "    return folds\n"
)
WRONG[14] = (
    "folds.py",
    {
        "the protocol's own window as fold 0 (validates on the test week)": FOLDS_BODY.replace(
            "newest = train_start - dt.timedelta(days=delta_delay + delta_assessment)",
            "newest = train_start",
        ),
        "no delay before validation": FOLDS_BODY.replace(
            "days=delta_train + delta_delay)", "days=delta_train)"
        ),
        "oldest fold first": FOLDS_BODY.replace("return folds", "return folds[::-1]"),
        "folds a training period apart": FOLDS_BODY.replace(
            "fold * delta_assessment", "fold * delta_train"
        ),
        "validation one day too long": FOLDS_BODY.replace(
            "delta_assessment - 1)", "delta_assessment)"
        ),
        "one fold too few": FOLDS_BODY.replace("range(n_folds)", "range(n_folds - 1)"),
        "validation from train_start whatever the lengths": FOLDS_BODY.replace(
            "days=delta_delay + delta_assessment)", "days=delta_delay + delta_train)"
        ),
        "the defaults 7/7/7": FOLDS_BODY.replace(
            "days=delta_delay + delta_assessment)", "days=14)"
        ).replace("days=delta_train + delta_delay)", "days=14)"),
    },
    "import datetime as dt\n\n\n"
    "def prequential_folds(train_start, n_folds, delta_train, delta_delay, delta_assessment):\n{}",
)
# Lab 18: select_for_review, one mistake each in an otherwise right body.
REVIEW_BODY = (
    "    scores = np.asarray(scores, dtype=np.float64)\n"
    "    uncertain = np.flatnonzero((scores >= band_low) & (scores < band_high))\n"
    "    order = np.argsort(-scores[uncertain], kind='stable')\n"
    "    return uncertain[order][:capacity]\n"
)
WRONG[18] = (
    "review_band.py",
    {
        "the high end included": REVIEW_BODY.replace("scores < band_high", "scores <= band_high"),
        "the low end excluded": REVIEW_BODY.replace("scores >= band_low", "scores > band_low"),
        "lowest score first": REVIEW_BODY.replace("-scores[uncertain]", "scores[uncertain]"),
        "no capacity": REVIEW_BODY.replace("[:capacity]", ""),
        "the capacity from the bottom": REVIEW_BODY.replace("[:capacity]", "[-capacity:]"),
        "positions within the band, not the day": REVIEW_BODY.replace(
            "uncertain[order][:capacity]", "order[:capacity]"
        ),
        "ties reversed": REVIEW_BODY.replace(
            "np.argsort(-scores[uncertain], kind='stable')",
            "np.lexsort((-np.arange(len(uncertain)), -scores[uncertain]))",
        ),
        "the day's order, not the score's": REVIEW_BODY.replace(
            "uncertain[order][:capacity]", "uncertain[:capacity]"
        ),
    },
    "import numpy as np\n\n\ndef select_for_review(scores, band_low, band_high, capacity):\n{}",
)
WRONG_CASES = [(lab, name) for lab, (_, cases, _) in WRONG.items() for name in cases]


@pytest.mark.parametrize(
    ("lab", "mistake"), WRONG_CASES, ids=[f"{lab}-{m}" for lab, m in WRONG_CASES]
)
def test_a_wrong_answer_fails_a_behaviour(tmp_path, lab, mistake):
    filename, cases, template = WRONG[lab]
    (tmp_path / filename).write_text(template.format(cases[mistake]))
    failed = [r for r in run(lab, tmp_path) if not r.passed]
    assert failed, mistake
    assert all(r.found != r.expected for r in failed)


def test_the_validate_step_runs_the_learners_contract_rule(tmp_path, monkeypatch):
    from reference_app.data import contracts
    from reference_app.data.simulator import SimulationParams, simulate_transactions

    frame = simulate_transactions(SimulationParams(60, 120, 10, "2018-04-01", 5, 4))
    (tmp_path / "contract_rule.py").write_text(
        "def scenario_matches_label(frame):\n    return frame['TX_FRAUD_SCENARIO'] < 2\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    result = contracts.validate_transactions(frame)
    refused = int((frame["TX_FRAUD_SCENARIO"] >= 2).sum())
    assert refused > 0 and result.reasons == {"row:scenario_matches_label": refused}
    assert len(result.valid) + len(result.quarantined) == len(frame)
    monkeypatch.setenv(labcode.ENV, str(lab_dir(3) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 03: .* is not written yet"):
        contracts.validate_transactions(frame)
    monkeypatch.delenv(labcode.ENV)
    assert contracts.validate_transactions(frame).reasons == {}


def test_promotion_runs_the_learners_gate(tmp_path, monkeypatch):
    from reference_app.training.promotion import QualityGate, decide_promotion

    (tmp_path / "gate.py").write_text(
        "def gate_failures(metrics, min_auc, min_ap):\n    return ['too good to be true']\n"
    )
    good = {"auc_roc": 0.9, "average_precision": 0.8}
    gate = QualityGate(0.85, 0.6)
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    decision = decide_promotion(good, None, gate)
    assert (decision.alias, decision.passed_gate) == ("challenger", False)
    assert decision.reason == "fails the quality gate: too good to be true"
    monkeypatch.delenv(labcode.ENV)
    assert decide_promotion(good, None, gate).alias == "champion"


def test_the_model_tests_run_the_learners_slice_test(tmp_path, monkeypatch):
    from reference_app.exercises.lab07 import _risk_scorer, _week
    from reference_app.training import model_tests

    week = _week()
    (tmp_path / "model_checks.py").write_text(
        "def slice_failures(slices, min_auc, min_frauds):\n    return [f'{len(slices)} slices: too dark']\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    results = model_tests.run_model_tests(_risk_scorer, week)
    (sliced,) = [r for r in results if r.kind == "slice"]
    assert (sliced.passed, sliced.detail) == (False, "2 slices: too dark")
    tags = model_tests.run_tags(results)
    assert (
        tags["model_tests_passed"] == "false"
        and "2 slices: too dark" in tags["model_test_failures"]
    )
    assert tags["model_tests"].startswith("lab-07/model_checks.py sha256:")
    monkeypatch.setenv(labcode.ENV, str(lab_dir(7) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 07: .* is not written yet"):
        model_tests.run_model_tests(_risk_scorer, week)
    monkeypatch.delenv(labcode.ENV)
    (sliced,) = [r for r in model_tests.run_model_tests(_risk_scorer, week) if r.kind == "slice"]
    assert not sliced.passed and sliced.detail.startswith("night: AUC ROC 0.")
    assert model_tests.run_tags([sliced])["model_tests"] == "reference"


def test_the_model_server_loads_only_a_written_request_check(tmp_path, monkeypatch):
    from reference_app.serving import runtime

    monkeypatch.setenv(labcode.ENV, str(lab_dir(9) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 09: .* is not written yet"):
        runtime.checked_input_problem()
    (tmp_path / "request_check.py").write_text(
        "def input_problem(names, expected):\n    return 'no'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError, match="refuses a request with exactly the 15 inputs"):
        runtime.checked_input_problem()
    monkeypatch.delenv(labcode.ENV)
    assert runtime.checked_input_problem() is runtime.input_problem


def test_the_router_runs_the_learners_split(tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from reference_app.serving.router import VARIANT_HEADER, RouterConfig, create_app

    config = RouterConfig("http://127.0.0.1:9", "http://127.0.0.1:9", None, tmp_path / "none")
    monkeypatch.setenv(labcode.ENV, str(lab_dir(10) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 10: .* is not written yet"):
        create_app(config)
    (tmp_path / "split.py").write_text(
        "def choose_variant(key, challenger_traffic):\n"
        "    return 'challenger' if challenger_traffic >= 100 or key == 'card-7' else 'champion'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with TestClient(create_app(config)) as client:
        chosen = {
            key: client.post("/v2/models/m/infer", json={}, headers={"x-routing-key": key}).headers[
                VARIANT_HEADER
            ]
            for key in ("card-7", "card-8")
        }
    assert chosen == {"card-7": "challenger", "card-8": "champion"}
    (tmp_path / "split.py").write_text(
        "def choose_variant(key, challenger_traffic):\n    return 'champion'\n"
    )
    labcode._load.cache_clear()
    with pytest.raises(labcode.LabCodeError, match="at challenger traffic 100"):
        create_app(config)


def test_the_local_prometheus_loads_the_learners_burn_rate_thresholds(tmp_path, monkeypatch):
    """`fraudlab up --monitoring` writes rules.yml with the SLO group rendered by the learner's
    burn_rate_threshold (FRAUD_LAB_CODE); an unwritten one stops it with the lab's message."""
    import yaml

    from reference_app.launchers.prometheus import write_prometheus_config

    settings = Settings(_env_file=None, data_dir=str(tmp_path / "data"))
    monkeypatch.setenv(labcode.ENV, str(lab_dir(12) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 12: .* is not written yet"):
        write_prometheus_config(settings, tmp_path / "a")
    # `fraudlab up --monitoring` says so before it starts any server.
    from reference_app.launchers.stack import free_port, stack_file, stack_up

    ports = ("mlflow", "http", "grpc", "metrics", "monitor", "prometheus", "alertmanager", "ct")
    free = settings.model_copy(update={f"{name}_port": free_port() for name in ports})
    with pytest.raises(labcode.LabCodeError, match=r"lab 12: .* is not written yet"):
        stack_up(free, monitoring=True)
    assert not stack_file(free).exists() and not (tmp_path / "data" / "state" / "logs").exists()
    (tmp_path / "burnrate.py").write_text(
        "def burn_rate_threshold(slo_target, period_days, window_hours, budget_share):\n"
        "    return 0.5\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    write_prometheus_config(settings, tmp_path / "b")
    groups = yaml.safe_load((tmp_path / "b" / "rules.yml").read_text())["groups"]
    (slo_group,) = [g for g in groups if g["name"] == "fraud-lab.slo"]
    exprs = [r["expr"] for r in slo_group["rules"] if "alert" in r]
    assert len(exprs) == 4 and all("> 0.5 and" in e for e in exprs), exprs
    assert {"fraud-lab.service", "fraud-lab.model"} <= {g["name"] for g in groups}


def test_the_simulator_runs_the_learners_terminals(tmp_path, monkeypatch):
    from reference_app.data.simulator import SimulationParams, simulate_transactions

    params = SimulationParams(40, 80, 5, "2018-04-01", 5, 1)
    reference = simulate_transactions(params)
    (tmp_path / "nearby.py").write_text(
        "import numpy as np\n\n\ndef terminals_near(customer_xy, terminal_xy, radius):\n"
        "    return np.arange(3)\n"  # every customer pays at terminals 0, 1 and 2
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    assert set(simulate_transactions(params)["TERMINAL_ID"]) <= {0, 1, 2}  # fraud scenarios aside
    monkeypatch.setenv(labcode.ENV, str(lab_dir(2) / "solution"))
    assert simulate_transactions(params).equals(reference)
    monkeypatch.setenv(labcode.ENV, str(lab_dir(2) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 02: .* is not written yet"):
        simulate_transactions(params)


def test_promotion_records_which_rule_decided(tmp_path, monkeypatch):
    from reference_app.training.promotion import PROMOTION_EXERCISE, QualityGate, decide_promotion

    (tmp_path / "promotion.py").write_text(
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return 'champion'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    decision = decide_promotion(
        {"auc_roc": 0.5, "average_precision": 0.1}, 0.7, QualityGate(0.85, 0.6)
    )
    assert (decision.alias, decision.passed_gate) == ("champion", False)  # the learner's rule
    assert decision.reason.startswith("fails the quality gate")  # the facts, as they are
    assert PROMOTION_EXERCISE.source().startswith("lab-05/promotion.py sha256:")
    (tmp_path / "b").mkdir()  # another file: the running system loads a file once
    (tmp_path / "b" / "promotion.py").write_text(
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return 'best'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path / "b"))
    with pytest.raises(labcode.LabCodeError, match="choose_alias returned 'best'"):
        decide_promotion({"auc_roc": 0.9, "average_precision": 0.7}, None, QualityGate(0.85, 0.6))


def test_an_unwritten_exercise_ends_the_command_with_its_message(tmp_path):
    import subprocess
    import sys

    env = {
        **os.environ,
        labcode.ENV: str(lab_dir(2) / "starter"),
        "FRAUD_DATA_DIR": str(tmp_path),
        "FRAUD_N_CUSTOMERS": "20",
        "FRAUD_N_TERMINALS": "40",
        "FRAUD_NB_DAYS": "3",
    }
    out = subprocess.run(
        [sys.executable, "-m", "reference_app", "simulate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error: lab 02: terminals_near in" in out.stdout and "TODO(lab-02)" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "raw").exists()  # nothing written from an unwritten function


def test_an_error_in_the_learners_code_names_its_line(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text(
        "def psi_from_shares(r, c):\n    shares = {}\n    return shares['current']\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError) as err:
        drift.psi(np.arange(100.0), np.arange(100.0) + 5)
    message = str(err.value)
    assert message.startswith("lab 11: psi_from_shares in ") and "psi.py raised KeyError" in message
    assert "at line 3" in message and "fraudlab exercise check 11 --code" in message


def image_labels_cli(tmp_path, code: Path | None, *args: str):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != labcode.ENV}
    if code is not None:
        env[labcode.ENV] = str(code)
    return subprocess.run(
        [sys.executable, "-m", "reference_app", "image-labels", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_image_build_labels_with_the_learners_function(tmp_path):
    """`fraudlab image-labels` (what the builds pass as --label) runs the learner's image_labels
    and records which file did; an unwritten or ill-formed one stops the build with a message."""
    import hashlib

    (tmp_path / "labels.py").write_text(
        "def image_labels(commit, lock):\n    return {'org.opencontainers.image.revision': 'mine'}\n"
    )
    out = image_labels_cli(tmp_path, tmp_path, "--commit", "abc")
    assert out.returncode == 0, out.stdout + out.stderr
    sha = hashlib.sha256((tmp_path / "labels.py").read_bytes()).hexdigest()[:12]
    assert out.stdout.splitlines() == [  # sorted; the lab-code label as labcode records sources
        f"io.fraud-lab.lab-code=lab-08/labels.py sha256:{sha}",
        "org.opencontainers.image.revision=mine",
    ]
    reference = image_labels_cli(tmp_path, None, "--commit", "abc")
    assert reference.stdout.splitlines() == [
        "io.fraud-lab.lab-code=reference",
        "io.fraud-lab.runtime.mlserver=1.7.1",
        "io.fraud-lab.runtime.onnxruntime=1.32.0",
        "io.fraud-lab.runtime.scikit-learn=1.9.1",
        "org.opencontainers.image.revision=abc",
    ]
    starter = image_labels_cli(tmp_path, lab_dir(8) / "starter", "--commit", "abc")
    assert starter.returncode == 2 and "TODO(lab-08)" in starter.stdout
    assert "Traceback" not in starter.stdout + starter.stderr
    (tmp_path / "labels.py").write_text(
        "def image_labels(commit, lock):\n    return {'Revision': commit + '\\n'}\n"
    )
    bad = image_labels_cli(tmp_path, tmp_path, "--commit", "abc")
    assert bad.returncode == 2 and "image_labels returned the key 'Revision'" in bad.stdout
    missing = image_labels_cli(tmp_path, None, "--commit", "abc", "--lock", str(tmp_path / "no"))
    assert missing.returncode == 2 and f"no lock file {tmp_path / 'no'}" in missing.stdout


def test_the_pinned_runtime_versions_are_the_lock_files():
    """The reference reads the versions the image installs: requirements.lock's pins, which
    pyproject.toml's pins of the serving runtime agree with."""
    import tomllib

    from reference_app import packaging

    labels = packaging.image_labels("x", (ROOT / "requirements.lock").read_text())
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for package in packaging.RUNTIME_PACKAGES:
        assert f"{package}=={labels[packaging.RUNTIME_LABEL_PREFIX + package]}" in declared
    with pytest.raises(ValueError, match="pins no onnxruntime"):
        packaging.image_labels("x", "mlserver==1.7.1\nscikit-learn==1.9.1\n")


def test_the_starters_label_names_are_the_apps():
    from reference_app import packaging

    for folder in ("starter", "solution"):
        module = labcode.load(str(lab_dir(8) / folder / "labels.py"), "image_labels", 8).__globals__
        assert module["REVISION_LABEL"] == packaging.REVISION_LABEL
        assert module["RUNTIME_LABEL_PREFIX"] == packaging.RUNTIME_LABEL_PREFIX
        assert module["RUNTIME_PACKAGES"] == packaging.RUNTIME_PACKAGES


def test_the_build_scripts_pass_each_label_as_a_flag(tmp_path):
    """scripts/versions.sh app_label_args: one `--label KEY=VALUE` pair per
    line of fraudlab image-labels, the learner's function when FRAUD_LAB_CODE names it."""
    import subprocess

    script = 'source scripts/versions.sh && app_label_args && printf "%s\\n" "${LABEL_ARGS[@]}"'
    env = {k: v for k, v in os.environ.items() if k != labcode.ENV}
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**env, labcode.ENV: str(lab_dir(8) / "solution")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0::2] == ["--label"] * 5
    assert lines[1].startswith("io.fraud-lab.lab-code=lab-08/labels.py sha256:")
    commit = subprocess.run(
        ["bash", "-c", "source scripts/versions.sh && app_commit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert lines[-1] == f"org.opencontainers.image.revision={commit}"
    failed = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**env, labcode.ENV: str(lab_dir(8) / "starter")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("✗ fraudlab image-labels: error: lab 08: image_labels in ")
    assert "TODO(lab-08)" in failed.stderr
