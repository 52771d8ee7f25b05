"""The learner's output of `make lab-N`, a pytest plugin (registered by labs/conftest.py).

The learner sees one line per check:

    Lab 02-kubernetes-for-ml · target cluster (context kind-fraud-lab)
    ✓ a check that passed
    ✗ a check that failed
        expected: …
        found:    …
        debug:    <the exact command to look closer>
    – a check that was skipped (an earlier check failed, it needs a cluster, or it checks an
      optional part that is not deployed), with the reason
    5/6 checks passed

and the exit status is 0 only when every check that applies to the target passed. No
tracebacks (`--tracebacks` shows them, for course developers). Instructors get JUnit XML
(`--junitxml`, the sentence as a property, the hint as the failure message) and a JSON summary
(`--lab-json`); `make lab-N REPORT=path` writes both. `--list` prints a run where every check
passes, without running them (the lab READMEs' Verification).

Markers: `cluster` (skipped with `--target local`, reason printed), `local` (skipped with
`--target cluster`), `needs("test_name", …)` (skipped when a named earlier check did not pass).
A check of an optional part the learner has not deployed calls `not_deployed(reason)`: it does not
apply, like a check for the other target, and does not count as a failure.
The options are defined in labs/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from .endpoints import data_dir
from .hints import describe_error, short
from .names import KUBE_CONTEXT

PASS, FAIL, SKIP = "✓", "✗", "–"
NEEDS_CLUSTER = "needs a cluster"
LOCAL_ONLY = "local mode only"
EARLIER_FAILED = "skipped because an earlier check failed"
OPTIONAL_NOT_DEPLOYED = "optional, not deployed"
# Check name → its outcomes ("passed", "failed", "skipped:target", "skipped:optional",
# "skipped:earlier").
OUTCOMES = pytest.StashKey[dict]()
# Fixture name → the check that found it broken (later checks are skipped).
GATES = pytest.StashKey[dict]()
# Check name → the sentence learners read (of its first failure, if any).
DESCRIPTIONS: dict[str, str] = {}


def not_deployed(reason: str) -> None:
    """Skip a check of an optional part that is not deployed; it does not apply (exit status 0).

    Raises:
        pytest.skip.Exception: always, with "optional, not deployed: <reason>".
    """
    pytest.skip(f"{OPTIONAL_NOT_DEPLOYED}: {reason}")


# --- markers and ordering -------------------------------------------------------------------------
def description(item: pytest.Item) -> str:
    """The sentence a learner reads: the check's docstring (first paragraph), with its parameters."""
    doc = getattr(item, "obj", None).__doc__ if hasattr(item, "obj") else None
    if not doc:
        return item.name
    text = " ".join(doc.strip().split("\n\n")[0].split())
    params = getattr(getattr(item, "callspec", None), "params", {})
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def base_name(item: pytest.Item) -> str:
    """The check's function name without parameters (what `needs` refers to)."""
    return getattr(item, "originalname", None) or item.name.split("[")[0]


def target_skip(item: pytest.Item, target: str) -> str | None:
    """Why a check does not apply to `target` (the reason printed), or None."""
    marker = item.get_closest_marker("cluster")
    if marker and target == "local":
        return f"{NEEDS_CLUSTER}: {marker.args[0] if marker.args else 'kind mode only'}"
    marker = item.get_closest_marker("local")
    if marker and target == "cluster":
        return f"{LOCAL_ONLY}: {marker.args[0] if marker.args else 'checks the local stack'}"
    return None


def lab_name(item: pytest.Item) -> str:
    return Path(str(item.path)).parent.name


def summary_line(passed: int, total: int, details: list[str]) -> str:
    return f"{passed}/{total} checks passed" + (f" ({', '.join(details)})" if details else "")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    target = config.getoption("--target")
    for item in items:
        item.user_properties.append(("check", description(item)))
        item.user_properties.append(("target", target))
    if config.getoption("--list"):
        # The transcript of a run where every check passes (the lab READMEs' Verification).
        lines, lab, applicable, not_here = [], None, 0, 0
        for item in items:
            if lab_name(item) != lab:
                lab = lab_name(item)
                lines.append(header(lab, target))
            reason = target_skip(item, target)
            if reason:
                not_here += 1
                lines.append(f"{SKIP} {description(item)} ({reason})")
            else:
                applicable += 1
                lines.append(f"{PASS} {description(item)}")
        details = [f"{not_here} not for target {target}"] if not_here else []
        lines += [
            "",
            summary_line(applicable, applicable, details),
            f"Lab {lab} done on target {target}.",
        ]
        reporter = config.pluginmanager.getplugin("terminalreporter")
        reporter.listing = True
        for line in lines:
            reporter.write_line(line)
        config.hook.pytest_deselected(items=list(items))
        items[:] = []


def header(lab: str, target: str) -> str:
    where = (
        f"context {KUBE_CONTEXT}" if target == "cluster" else f"local stack, data in {data_dir()}"
    )
    return f"Lab {lab} · target {target} ({where})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = target_skip(item, item.config.getoption("--target"))
    if reason:
        pytest.skip(reason)
    outcomes = item.config.stash[OUTCOMES]
    for needs in item.iter_markers("needs"):
        for name in needs.args:
            results = outcomes.get(name)
            if results is None:
                raise pytest.UsageError(f"{item.nodeid}: needs({name!r}) names no earlier check")
            if any(r not in ("passed", "skipped:target", "skipped:optional") for r in results):
                pytest.skip(f"{EARLIER_FAILED}: {DESCRIPTIONS.get(name, name)}")
            if "skipped:optional" in results:
                not_deployed(f"it needs: {DESCRIPTIONS.get(name, name)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    outcomes = item.config.stash[OUTCOMES].setdefault(base_name(item), [])
    if not outcomes or all(o in ("passed", "skipped:target", "skipped:optional") for o in outcomes):
        DESCRIPTIONS[base_name(item)] = description(item)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            outcomes.append("passed")
        elif report.skipped:
            reason = skip_reason(report)
            outcomes.append(f"skipped:{skip_kind(reason)}")
        else:
            outcomes.append("failed")
    if report.failed and call.excinfo is not None and not item.config.getoption("--tracebacks"):
        # The learner's message, not a traceback (also what JUnit XML records).
        report.longrepr = learner_message(call.excinfo)
    return report


def learner_message(excinfo: pytest.ExceptionInfo) -> str:
    """The hint of a failed assertion, or the exception on one line for anything else."""
    err = excinfo.value
    if isinstance(err, AssertionError) and err.args:
        return str(err.args[0])
    if isinstance(err, pytest.fail.Exception):
        return str(err.msg)
    return f"the check could not run: {describe_error(err)}"


def skip_kind(reason: str) -> str:
    """The kind of a skip: "target", "optional" (a part not deployed) or "earlier" (failed)."""
    if reason.startswith((NEEDS_CLUSTER, LOCAL_ONLY)):
        return "target"
    if reason.startswith(OPTIONAL_NOT_DEPLOYED):
        return "optional"
    return "earlier"


def skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = report.longrepr[2]
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    return str(report.longrepr or "")


# --- the learner's reporter --------------------------------------------------------------------------
@pytest.hookimpl(trylast=True)  # after pytest's terminal plugin has registered its reporter
def pytest_configure(config: pytest.Config) -> None:
    config.stash[OUTCOMES] = {}
    config.stash[GATES] = {}
    standard = config.pluginmanager.getplugin("terminalreporter")
    if standard is not None and not isinstance(standard, LabReporter):
        config.pluginmanager.unregister(standard)
        config.pluginmanager.register(LabReporter(config, sys.stdout), "terminalreporter")


class LabReporter(TerminalReporter):
    """One line per check, hints under failures, a final "N/M checks passed" line."""

    def __init__(self, config: pytest.Config, file=None):
        super().__init__(config, file)
        self.checks: list[dict] = []
        self.load_errors: list[str] = []
        self.current_lab: str | None = None
        self.listing = False
        self.started = dt.datetime.now(dt.UTC)

    # Silence pytest's own session header, collection and progress output.
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session

    def pytest_collection(self) -> None:
        pass

    def report_collect(self, final: bool = False) -> None:
        pass

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        pass

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        pass

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._add_stats("error", [report])
            message = str(report.longrepr).strip().splitlines()
            line = f"{FAIL} could not load {report.nodeid or 'the checks'}: {short(message[-1] if message else 'unknown error', 300)}"
            self.load_errors.append(line)
            self._tw.line(line, red=True)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        lab = Path(location[0]).parent.name
        if lab != self.current_lab:
            self.current_lab = lab
            self._tw.line(header(lab, self.config.getoption("--target")), bold=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or not report.passed:
            self._add_stats(report.outcome, [report])
        if report.when == "setup" and report.passed:
            return
        if report.when == "teardown" and not report.failed:
            return
        text = dict(report.user_properties).get("check", report.nodeid)
        if report.passed:
            self._record(report, text, "passed")
            self._tw.line(f"{PASS} {text}", green=True)
        elif report.skipped:
            reason = skip_reason(report)
            self._record(report, text, "skipped", reason=reason)
            self._tw.line(f"{SKIP} {text} ({reason})", yellow=True)
        else:
            message = str(report.longrepr).rstrip()
            self._record(report, text, "failed", message=message)
            self._tw.line(f"{FAIL} {text}", red=True)
            for line in message.splitlines():
                self._tw.line(f"    {line}")

    def _record(
        self,
        report: pytest.TestReport,
        text: str,
        outcome: str,
        reason: str = "",
        message: str = "",
    ) -> None:
        kind = ""
        if outcome == "skipped":
            kind = {"earlier": "earlier-failed"}.get(skip_kind(reason), skip_kind(reason))
        self.checks.append({
            "id": report.nodeid,
            "check": text,
            "outcome": outcome,
            "skip": kind,
            "reason": reason,
            "message": message,
            "phase": report.when,
            "seconds": round(report.duration, 3),
        })  # fmt: skip

    def summary(self) -> dict:
        applicable = [c for c in self.checks if c["skip"] not in ("target", "optional")]
        passed = sum(c["outcome"] == "passed" for c in applicable)
        failed = sum(c["outcome"] == "failed" for c in applicable)
        earlier = sum(c["skip"] == "earlier-failed" for c in applicable)
        not_here = sum(c["skip"] == "target" for c in self.checks)
        optional = sum(c["skip"] == "optional" for c in self.checks)
        ok = passed > 0 and passed == len(applicable) and not self.load_errors
        return {
            "passed": passed,
            "total": len(applicable),
            "failed": failed,
            "skipped_earlier_failed": earlier,
            "skipped_target": not_here,
            "skipped_optional": optional,
            "ok": ok,
        }

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus):
        result = yield
        if self.listing:
            session.exitstatus = 0
            return result
        s = self.summary()
        target = self.config.getoption("--target")
        details = []
        if s["failed"]:
            details.append(f"{s['failed']} failed")
        if s["skipped_earlier_failed"]:
            details.append(f"{s['skipped_earlier_failed']} skipped because an earlier check failed")
        if s["skipped_target"]:
            details.append(f"{s['skipped_target']} not for target {target}")
        if s["skipped_optional"]:
            details.append(f"{s['skipped_optional']} of an optional part that is not deployed")
        if self.load_errors:
            details.append("the checks could not all be loaded")
        line = summary_line(s["passed"], s["total"], details)
        self._tw.line("")
        self._tw.line(line, bold=True, green=s["ok"], red=not s["ok"])
        if s["ok"]:
            self._tw.line(f"Lab {self.current_lab} done on target {target}.")
        # Exit 0 only when every check that applies to the target passed.
        session.exitstatus = (
            0
            if s["ok"]
            else (pytest.ExitCode.USAGE_ERROR if exitstatus == pytest.ExitCode.USAGE_ERROR else 1)
        )
        path = self.config.getoption("--lab-json")
        if path:
            out = Path(path)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({
                "lab": self.current_lab,
                "target": target,
                "started_at": self.started.isoformat(timespec="seconds"),
                "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **s,
                "exit_status": int(session.exitstatus),
                "load_errors": self.load_errors,
                "checks": self.checks,
            }, indent=2, ensure_ascii=False) + "\n")  # fmt: skip
        return result

    def pytest_terminal_summary(self):  # the summary line above replaces pytest's sections
        return None
