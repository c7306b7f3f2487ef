"""``ctloop ci``: what a pull request runs. The project's tests (JUnit XML), the drift of
the CI sample from the training data, then the pipeline on the CI sample in the ``test``
environment, gated against that environment's champion; ``ci-report.md`` (suitable as a
pull-request comment) shows each check and the metrics with their deltas vs the champion.

    ctloop ci --report ci-report.md --junit ci-junit.xml

``ctloop.yaml`` names the environment's store and what CI runs::

    environments:
      test:
        store_url: sqlite:///.ctloop/test/metadata.db
        artifact_url: .ctloop/test/artifacts
        ci:
          pipeline: pipeline.py:training
          params: {path: data/ci.csv}
          drift:
            reference: data/train.csv
            current: data/ci.csv
            columns: [plan, tenure_months]   # all shared columns when omitted
            max_drifted_share: 0.25
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ctloop.errors import ConfigError

__all__ = ["ci"]


@dataclass
class _Check:
    """One line of the report and one JUnit test case."""

    name: str
    passed: bool
    detail: str


@dataclass
class _Outcome:
    """What ``ctloop ci`` found: its checks and the metrics table vs the champion."""

    checks: list[_Check] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def ci(
    environment: Annotated[
        str, typer.Option(help="Environment of ctloop.yaml to gate in.")
    ] = "test",
    report: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("ci-report.md"),
    junit: Annotated[Path, typer.Option(help="JUnit XML to write.")] = Path("ci-junit.xml"),
    tests: Annotated[str, typer.Option(help="What pytest runs (a folder or file).")] = "tests",
) -> None:
    """Run the tests, a drift check, the pipeline on CI data and the gate vs the champion;
    write a Markdown report and JUnit XML; exit 1 when any check fails."""
    settings = _environment(environment)
    outcome = _Outcome()
    outcome.checks.append(_run_tests(tests, junit))
    drift = settings["ci"].get("drift")
    if drift:
        outcome.checks.append(_check_drift(drift, environment))
    _run_pipeline(settings, outcome)
    _add_junit_cases(junit, outcome.checks[1:])
    report.write_text(_markdown(environment, outcome))
    from ctloop.cli.output import console

    for check in outcome.checks:
        console.print(f"{'ok  ' if check.passed else 'FAIL'} {check.name}", markup=False)
    console.print(f"wrote {report} and {junit}", markup=False)
    if not outcome.passed:
        raise typer.Exit(1)


def _environment(name: str) -> dict[str, Any]:
    from ctloop.registry import environment_named, load_environments

    path = Path("ctloop.yaml")
    if not path.is_file():
        raise ConfigError(
            "ctloop ci needs a ctloop.yaml with environments; run it in a project folder"
        )
    environment = environment_named(name, load_environments(path))
    settings = environment.settings
    ci_section = settings.get("ci") or {}
    if not isinstance(ci_section, dict) or "pipeline" not in ci_section:
        raise ConfigError(
            f"{path}: environments.{name}.ci.pipeline is missing; e.g. pipeline.py:training"
        )
    return {
        **settings,
        "store_url": environment.store_url,
        "artifact_url": environment.artifact_url,
        "ci": ci_section,
    }


def _run_tests(tests: str, junit: Path) -> _Check:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", tests, f"--junitxml={junit}"],
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = lines[-1] if lines else "pytest printed nothing"
    return _Check("tests", proc.returncode == 0, "\n".join([*failures, summary]))


def _check_drift(drift: dict[str, Any], environment: str) -> _Check:
    """The CI sample against the training data, with ``ctloop.testing.check_drift``."""
    from ctloop.testing import CheckFailed, check_drift

    where = f"environments.{environment}.ci.drift"
    if not isinstance(drift, dict) or not {"reference", "current"} <= drift.keys():
        raise ConfigError(f"ctloop.yaml: {where} needs reference: and current: (CSV or Parquet)")
    reference, current = (_read_table(Path(drift[key]), where) for key in ("reference", "current"))
    share = float(drift.get("max_drifted_share", 0.0))
    columns = drift.get("columns")
    try:
        found = check_drift(reference, current, max_drifted_share=share, columns=columns)
    except CheckFailed as exc:
        return _Check("drift", False, str(exc))
    drifted = ", ".join(found.drifted_columns) or "none"
    return _Check(
        "drift",
        True,
        f"{drift['current']} vs {drift['reference']}: {len(found.columns)} columns tested, "
        f"drifted: {drifted} (share {found.drifted_share:.2f}, at most {share:.2f})",
    )


def _read_table(path: Path, where: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"ctloop.yaml: {where} names {path}, which does not exist")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _run_pipeline(settings: dict[str, Any], outcome: _Outcome) -> None:
    from ctloop.errors import CtloopError
    from ctloop.pipeline._loading import load_pipeline
    from ctloop.pipeline._params import parse_cli_params
    from ctloop.pipeline._runner import run_pipeline
    from ctloop.store.workspace import Workspace

    ci_section = settings["ci"]
    workspace = Workspace.open(
        settings.get("store_url", "sqlite:///.ctloop/test/metadata.db"),
        artifacts=settings.get("artifact_url", ".ctloop/test/artifacts"),
    )
    pipeline_obj, canonical = load_pipeline(ci_section["pipeline"])
    pairs = [f"{k}={v}" for k, v in (ci_section.get("params") or {}).items()]
    params = parse_cli_params(pipeline_obj.fn, pairs, f"pipeline '{pipeline_obj.name}'")
    result: Any
    try:
        result = run_pipeline(
            pipeline_obj, params, trigger="ci", reference=canonical, workspace=workspace
        )
    except CtloopError as exc:
        result = getattr(exc, "result", None)
        if result is None:
            outcome.checks.append(_Check("pipeline", False, f"the run did not start: {exc}"))
            outcome.checks.append(_Check("gate", False, "not reached"))
            return
    status = str(getattr(result.status, "value", result.status))
    lines = [f"run {result.run_id}: {status}"]
    lines += [f"{step}: {step_status}" for step, step_status in result.step_status.items()]
    outcome.checks.append(_Check("pipeline", status == "succeeded", "\n".join(lines)))
    _gate_and_metrics(result, outcome)


def _gate_and_metrics(result: Any, outcome: _Outcome) -> None:
    from ctloop.evaluate._gate import Blessing
    from ctloop.evaluate._report import Evaluation

    blessing = _record_of(result, Blessing)
    evaluation = _record_of(result, Evaluation)
    if evaluation is not None:
        gated = sorted({c.metric for c in blessing.comparisons}) if blessing else []
        outcome.metrics = _metrics_table(evaluation, gated)
    if blessing is None:
        outcome.checks.append(
            _Check("gate", False, "the pipeline has no gate step, or it did not run")
        )
        return
    from ctloop.components._evaluation import describe_blessing

    outcome.checks.append(_Check("gate", bool(blessing.passed), describe_blessing(blessing)))


def _metrics_table(evaluation: Any, gated: list[str]) -> list[str]:
    """Markdown rows: every overall metric, and per slice the gated metrics, vs the champion."""
    champion = evaluation.baseline
    rows = ["| where | metric | candidate | champion | delta |", "|---|---|---|---|---|"]
    base = champion.metrics if champion is not None else {}
    for metric, value in sorted(evaluation.metrics.items()):
        rows.append(_metric_row("overall", metric, value, base.get(metric), champion))
    for slice_name, results in sorted(evaluation.slices.items()):
        for item in results:
            if not item.scored:
                continue
            theirs = champion.slice(slice_name, item.value) if champion is not None else None
            for metric in gated or sorted(item.metrics)[:1]:
                if metric in item.metrics:
                    rows.append(
                        _metric_row(
                            f"{slice_name}={item.value} ({item.rows} rows)",
                            metric,
                            item.metrics[metric],
                            theirs.metrics.get(metric) if theirs is not None else None,
                            champion,
                        )
                    )
    return rows


def _metric_row(
    where: str, metric: str, value: float | None, base: float | None, champion: Any
) -> str:
    if champion is None:
        return f"| {where} | {metric} | {_number(value)} | no champion | |"
    delta = value - base if value is not None and base is not None else None
    signed = "" if delta is None else f"{delta:+.4f}"
    return f"| {where} | {metric} | {_number(value)} | {_number(base)} | {signed} |"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _record_of(result: Any, kind: type) -> Any:
    """The first output of the run that is a ``kind`` (a gate's Blessing, an Evaluation)."""
    import tempfile

    from ctloop.artifacts import load_value

    cache = Path(tempfile.mkdtemp(prefix="ctloop-ci-"))
    for outputs in result.outputs.values():
        for record in outputs.values():
            if record.type == "Record":
                value = load_value(record, result.workspace.artifacts, cache_dir=cache)
                if isinstance(value, kind):
                    return value
    return None


def _add_junit_cases(junit: Path, checks: list[_Check]) -> None:
    """Add ctloop's own checks to pytest's JUnit XML as a ``ctloop-ci`` suite."""
    import xml.etree.ElementTree as ET

    root = ET.parse(junit).getroot() if junit.is_file() else ET.Element("testsuites")
    if root.tag != "testsuites":
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        root = wrapper
    suite = ET.SubElement(root, "testsuite", name="ctloop-ci", tests=str(len(checks)))
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname="ctloop.ci", name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=f"{check.name} failed")
            failure.text = check.detail
    suite.set("failures", str(sum(not check.passed for check in checks)))
    ET.ElementTree(root).write(junit, encoding="unicode", xml_declaration=True)


def _markdown(environment: str, outcome: _Outcome) -> str:
    verdict = "passed" if outcome.passed else "FAILED"
    lines = [f"## ctloop ci: {verdict} (environment `{environment}`)", ""]
    lines += ["| check | result |", "|---|---|"]
    lines += [f"| {c.name} | {'passed' if c.passed else '**failed**'} |" for c in outcome.checks]
    if outcome.metrics:
        lines += ["", "### metrics vs the champion", "", *outcome.metrics]
    for check in outcome.checks:
        lines += ["", f"### {check.name}", "", "```", check.detail, "```"]
    return "\n".join(lines) + "\n"
