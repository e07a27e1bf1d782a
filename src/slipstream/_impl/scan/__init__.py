"""scan: ``slipstream scan``, a static scanner that reports where code loses time and names the
slipstream primitive that fixes each finding. It never imports or runs the code it scans, and
imports nothing of slipstream but ``core`` (a contract in pyproject.toml checks it)."""

from ..core.rules import RULES, rule
from .engine import FileError, ScanReport, scan, scan_report
from .model import SEVERITIES, ChainStep, Finding, Rule, Severity

__all__ = [
    "RULES",
    "SEVERITIES",
    "ChainStep",
    "FileError",
    "Finding",
    "Rule",
    "ScanReport",
    "Severity",
    "rule",
    "scan",
    "scan_report",
]
