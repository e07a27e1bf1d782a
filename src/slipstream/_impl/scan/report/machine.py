"""The machine-readable reports: ``json`` (a list of findings, for scripts) and ``sarif``
(SARIF 2.1.0, for code-scanning services: the rule catalogue, one result per finding with its
chain as related locations and a code flow, stable partial fingerprints, and the files that
could not be scanned as notifications)."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from ...core import rules as _catalogue
from ...core.version import __version__, home_page
from ..engine import FileError, ScanReport
from ..model import Finding, Rule, RuntimeFinding, Severity
from .common import rule_of
from .runtime import UNMATCHED_TITLE, measured_of, runtime_dict, site, unmatched_dict

__all__ = [
    "FINGERPRINT_KEY",
    "ROOT_ID",
    "SARIF_LEVEL",
    "SARIF_SCHEMA",
    "finding_dict",
    "fingerprint",
    "to_json",
    "to_sarif",
]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL: dict[Severity, str] = {"high": "error", "medium": "warning", "low": "note"}
FINGERPRINT_KEY = "slipstream/v1"
ROOT_ID = "SRCROOT"


def finding_dict(f: Finding) -> dict[str, Any]:
    """The JSON object of one finding: exactly ``code``, ``name``, ``path``, ``line``,
    ``col``, ``end_line``, ``end_col``, ``message``, ``severity``, ``fix``, ``chain``."""
    return {
        "code": f.code,
        "name": f.name,
        "path": f.path,
        "line": f.line,
        "col": f.col,
        "end_line": f.end_line,
        "end_col": f.end_col,
        "message": f.message,
        "severity": f.severity,
        "fix": f.fix,
        "chain": [str(step) for step in f.chain],
    }


def to_json(report: ScanReport) -> str:
    """A JSON list with one object per finding (see :func:`finding_dict`).

    Joined with run-time findings (``--runtime``), each object also has ``runtime``:
    ``{"ran", "count", "total_s"}``, and the run-time findings no static finding accounts
    for follow, in the same shape with ``runtime.static`` false."""
    measured = measured_of(report)
    if measured is None or report.runtime is None:
        return json.dumps([finding_dict(f) for f in report.findings], indent=2) + "\n"
    items = [{**finding_dict(f), "runtime": runtime_dict(measured.get(f))} for f in report.findings]
    items += [unmatched_dict(report, r) for r in report.runtime.unmatched]
    return json.dumps(items, indent=2) + "\n"


# -- sarif -----------------------------------------------------------------------------------


def _sarif_rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.why or r.summary},
        "help": {"text": f"Fix: {r.fix}", "markdown": r.doc()},
        "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
        "properties": {"tags": ["performance", r.family] if r.family else ["performance"]},
    }


def _artifact(path: str) -> dict[str, Any]:
    return {"uri": urllib.parse.quote(path), "uriBaseId": ROOT_ID}


def _physical(path: str, region: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"artifactLocation": _artifact(path)}
    if region is not None:
        out["region"] = region
    return out


def fingerprint(f: Finding, occurrence: int = 1) -> str:
    """The SARIF partial fingerprint of ``f``: a hash of its code, path and
    :attr:`Finding.fingerprint` (the normalised code, which does not change when lines move),
    and ``occurrence`` (1 for the first finding with that hash in the file, 2 for the
    next, ...), so two identical statements in one file stay distinct."""
    basis = f.fingerprint or f"{f.message}\0{f.excerpt}"
    digest = hashlib.sha256(f"{f.code}\0{f.path}\0{basis}".encode()).hexdigest()[:32]
    return f"{digest}:{occurrence}"


def _sarif_result(f: Finding, index: int, occurrence: int) -> dict[str, Any]:
    region: dict[str, Any] = {
        "startLine": f.line,
        "startColumn": f.col + 1,
        "endLine": max(f.end_line, f.line),
        "endColumn": max(f.end_col + 1, 1),
    }
    if f.excerpt:
        region["snippet"] = {"text": f.excerpt}
    result: dict[str, Any] = {
        "ruleId": f.code,
        "level": SARIF_LEVEL[f.severity],
        "message": {"text": f"{f.message} (fix: {f.fix})"},
        "locations": [{"physicalLocation": _physical(f.path, region)}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f, occurrence)},
    }
    if index >= 0:
        result["ruleIndex"] = index
    if f.chain:
        steps = [
            {
                "id": i,
                "physicalLocation": _physical(step.path, {"startLine": step.line}),
                "message": {"text": f"via {step.function}"},
            }
            for i, step in enumerate(f.chain, 1)
        ]
        result["relatedLocations"] = steps
        flow = [
            {
                "location": {
                    "physicalLocation": result["locations"][0]["physicalLocation"],
                    "message": {"text": f.message},
                }
            }
        ]
        flow += [{"location": step} for step in steps]
        result["codeFlows"] = [{"threadFlows": [{"locations": flow}]}]
    return result


def _sarif_unmatched(report: ScanReport, r: RuntimeFinding, index: int) -> dict[str, Any]:
    """A run-time finding with no static match: a result at its call site (relative to
    ``SRCROOT`` when under the root, else an absolute file URI)."""
    where = site(report, r)
    physical: dict[str, Any]
    if Path(where).is_absolute():
        physical = {"artifactLocation": {"uri": Path(where).as_uri()}}
    else:
        physical = {"artifactLocation": _artifact(where)}
    physical["region"] = {"startLine": max(r.line, 1)}
    try:
        rule = _catalogue.rule(r.code)
        level, fix = SARIF_LEVEL[rule.severity], rule.fix
    except KeyError:
        level, fix = "warning", ""
    digest = hashlib.sha256(f"{r.code}\0{where}\0{r.fingerprint}".encode()).hexdigest()[:32]
    result: dict[str, Any] = {
        "ruleId": r.code,
        "level": level,
        "message": {
            "text": f"{UNMATCHED_TITLE}, in {r.function}" + (f" (fix: {fix})" if fix else "")
        },
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: f"{digest}:1"},
        "properties": unmatched_dict(report, r)["runtime"],
    }
    if index >= 0:
        result["ruleIndex"] = index
    return result


def _notification(e: FileError) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"{e.path}: {e.reason}"},
        "locations": [{"physicalLocation": _physical(e.path)}],
    }


def to_sarif(report: ScanReport) -> str:
    """A SARIF 2.1.0 log with one run: the rule catalogue in ``tool.driver.rules``, one result
    per finding (paths relative to ``SRCROOT``, the scanned root; 1-based columns; the chain as
    related locations and a code flow; stable ``partialFingerprints``), and the files that could
    not be scanned as ``invocations[0].toolExecutionNotifications``."""
    rules = list(_catalogue.RULES)
    known = {r.code for r in rules}
    for f in report.findings:  # codes the catalogue does not (yet) describe
        if f.code not in known:
            rules.append(rule_of(f))
            known.add(f.code)
    index = {r.code: i for i, r in enumerate(rules)}
    seen: Counter[str] = Counter()
    occurrence: dict[Finding, int] = {}
    # occurrences are counted in scan order, so a --runtime ranking keeps the fingerprints
    for f in sorted(report.findings, key=lambda f: (f.path, f.line, f.col, f.code)):
        base = fingerprint(f).rpartition(":")[0]
        seen[base] += 1
        occurrence[f] = seen[base]
    measured = measured_of(report)
    results = []
    for f in report.findings:
        result = _sarif_result(f, index.get(f.code, -1), occurrence[f])
        if measured is not None:
            result["properties"] = runtime_dict(measured.get(f))
        results.append(result)
    if report.runtime is not None:
        results += [
            _sarif_unmatched(report, r, index.get(r.code, -1)) for r in report.runtime.unmatched
        ]
    driver: dict[str, Any] = {
        "name": "slipstream",
        "version": __version__,
        "rules": [_sarif_rule(r) for r in rules],
    }
    uri = home_page()
    if uri:
        driver["informationUri"] = uri
    root_uri = Path(report.root).resolve().as_uri().rstrip("/") + "/"
    run = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {ROOT_ID: {"uri": root_uri}},
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": [_notification(e) for e in report.errors],
            }
        ],
        "results": results,
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"
