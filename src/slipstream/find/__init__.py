"""find: ``slipstream scan``, a static scanner that reports where code loses time and names the
slipstream primitive that fixes each finding. It never imports or runs the code it scans, and
imports nothing from slipstream's runtime primitives (``fix``, ``prove``)."""

from ._catalogue import RULES, rule
from ._engine import FileError, ScanReport, scan, scan_report
from ._model import SEVERITIES, ChainStep, Finding, Rule, Severity

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
