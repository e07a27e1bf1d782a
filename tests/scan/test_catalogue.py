"""The rule catalogue: the issue's codes and names, documentation that parses and uses the real
API, lookups by code or name, and docs/scan.md generated from it (so the two cannot drift)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import slipstream as ss
from slipstream._impl.core.rules import (
    DOCS_BEGIN,
    DOCS_END,
    PAGES,
    RUNTIME,
    _nest,
    rules_markdown,
    update_docs,
)
from slipstream._impl.scan import RULES, SEVERITIES, rule
from slipstream._impl.scan.model import Rule

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scan.md"
REGENERATE = "make docs"

# The published contract: codes and names exactly these, in this order (users suppress and
# select by them, so a rename or a reordering is a breaking change).
PUBLISHED_RULES = [
    ("SLP101", "client-in-loop"),
    ("SLP102", "client-per-call"),
    ("SLP103", "invariant-in-loop"),
    ("SLP201", "query-in-loop"),
    ("SLP202", "write-in-loop"),
    ("SLP203", "commit-in-loop"),
    ("SLP301", "await-in-loop"),
    ("SLP302", "unbounded-gather"),
    ("SLP401", "blocking-in-async"),
    ("SLP501", "unbounded-cache"),
    ("SLP502", "dangling-task"),
    ("SLP503", "lazy-init-race"),
]
FAMILIES = {"1": "clients", "2": "queries", "3": "concurrency", "4": "event-loop", "5": "state"}
_SS_MENTION = re.compile(r"\bss\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")


def _ids(r: Rule) -> str:
    return r.code


def _ss_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "ss"
    ]


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.S | re.M)


class TestCatalogue:
    def test_codes_and_names_are_the_issues(self) -> None:
        """The catalogue holds exactly the issue's twelve rules, in code order."""
        assert PUBLISHED_RULES == [(r.code, r.name) for r in RULES]

    def test_severities(self) -> None:
        """The round-trip-per-item rules are high; invariant work is low; the rest medium."""
        expected = {
            "SLP101": "high",
            "SLP201": "high",
            "SLP203": "high",
            "SLP401": "high",
            "SLP103": "low",
        }
        for r in RULES:
            assert r.severity in SEVERITIES
            assert expected.get(r.code, "medium") == r.severity

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_family_follows_the_code(self, r: Rule) -> None:
        """SLP1xx are clients, SLP2xx queries, SLP3xx concurrency, SLP4xx event-loop, SLP5xx
        state."""
        assert FAMILIES[r.code[3]] == r.family

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_every_section_is_written(self, r: Rule) -> None:
        """Summary and fix are one line, why is 2-5 sentences, and nothing is empty."""
        assert r.summary
        assert "\n" not in r.summary
        assert r.fix
        assert "\n" not in r.fix
        sentences = re.findall(r"[.!?](?:\s|$)", r.why.strip())
        assert 2 <= len(sentences) <= 5, r.why
        assert r.example.strip()
        assert r.fixed.strip()
        assert r.example != r.fixed
        assert f"# noqa: {r.code}" in r.options

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_snippets_parse(self, r: Rule) -> None:
        """Every example and every fixed snippet is valid Python."""
        ast.parse(r.example, filename=f"{r.code}-example")
        ast.parse(r.fixed, filename=f"{r.code}-fixed")

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_fixed_snippets_use_slipstream(self, r: Rule) -> None:
        """Each "use instead" imports slipstream as ss and uses at least one primitive."""
        tree = ast.parse(r.fixed)
        imports = [
            alias
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "slipstream"
        ]
        assert [("slipstream", "ss")] == [(a.name, a.asname) for a in imports]
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ss"
        }
        assert used
        for name in sorted(used):
            assert hasattr(ss, name), f"{r.code}: ss.{name} does not exist"

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_fixed_snippets_call_the_real_signatures(self, r: Rule) -> None:
        """Every ``ss.<name>(...)`` call in a fixed snippet binds to the primitive's signature."""
        for call in _ss_calls(ast.parse(r.fixed)):
            assert isinstance(call.func, ast.Attribute)
            target = getattr(ss, call.func.attr)
            assert not any(isinstance(a, ast.Starred) for a in call.args)
            keywords = [k.arg for k in call.keywords]
            assert None not in keywords  # no **kwargs in the docs: every option is named
            signature = inspect.signature(target)
            signature.bind(*call.args, **{k: None for k in keywords if k is not None})

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_text_names_real_primitives(self, r: Rule) -> None:
        """Every ``ss.X`` (or ``ss.X.method``) named in the prose exists in slipstream."""
        for field in (r.summary, r.fix, r.why, r.options):
            for name, attr in _SS_MENTION.findall(field):
                assert hasattr(ss, name), f"{r.code}: ss.{name}"
                if attr:
                    assert hasattr(getattr(ss, name), attr), f"{r.code}: ss.{name}.{attr}"


class TestLookup:
    def test_code_and_name_give_the_same_rule(self) -> None:
        """A rule is found by its code (any case) or its name."""
        assert rule("SLP201") is rule("query-in-loop")
        assert rule("slp201") is rule("SLP201")
        for r in RULES:
            assert r is rule(r.code) is rule(r.name)

    @pytest.mark.parametrize("key", ["SLP999", "query-in-loops", "N+1"])
    def test_unknown_key_raises_key_error_naming_it(self, key: str) -> None:
        """An unknown key raises KeyError whose message names the key and the known codes."""
        with pytest.raises(KeyError) as info:
            rule(key)
        message = info.value.args[0]
        assert repr(key) in message
        assert "SLP101" in message


class TestDocs:
    def test_rule_sections_are_generated_from_the_catalogue(self) -> None:
        """docs/scan.md's rules part is exactly what rules_markdown() renders."""
        text = DOCS.read_text(encoding="utf-8")
        assert update_docs(text) == text, f"docs/scan.md is stale: run {REGENERATE}"
        start = text.index(DOCS_BEGIN) + len(DOCS_BEGIN)
        assert rules_markdown() == text[start : text.index(DOCS_END)].strip("\n") + "\n"

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_each_rule_section_is_its_doc(self, r: Rule) -> None:
        """Each rule's section is Rule.doc() (what ``slipstream rule`` prints), its headings
        nested under the page's ``## Rules``."""
        section = _nest(r.doc(), 2)
        assert section.startswith(f"### {r.code} {r.name}\n")
        assert section in DOCS.read_text(encoding="utf-8")
        # nesting touches headings only: the code blocks (with their # comments) are intact
        assert 2 == len(_code_blocks(section))
        assert _code_blocks(r.doc()) == _code_blocks(section)
        assert [line.lstrip("#") for line in r.doc().splitlines()] == [
            line.lstrip("#") for line in section.splitlines()
        ]

    def test_detect_page_carries_the_runtime_rules(self) -> None:
        """docs/detect.md's rules part is what rules_markdown("detect") renders: the run-time
        rules (the codes the detectors report), each its Rule.doc() and what is counted for it."""
        from slipstream._impl.detect.detectors import CODES

        page = DOCS.with_name("detect.md").read_text(encoding="utf-8")
        assert update_docs(page, "detect") == page, f"docs/detect.md is stale: run {REGENERATE}"
        assert set(CODES.values()) == set(RUNTIME)
        generated = rules_markdown("detect")
        for r in RULES:
            section = _nest(r.doc(), 3)
            assert (section in generated) == (r.code in RUNTIME), r.code
        assert all(f"Fires when {text} (" in generated for text in RUNTIME.values())
        assert PAGES["detect"][1] in page
        assert PAGES["scan"][1] not in page

    def test_update_docs_rejects_an_unknown_page(self) -> None:
        """A page name the generator does not know raises ValueError naming the parameter."""
        with pytest.raises(ValueError, match="'page'"):
            update_docs(f"{DOCS_BEGIN}\n{DOCS_END}\n", "scanner")

    def test_update_docs_needs_its_markers(self) -> None:
        """A page without the markers is an error, not a page silently left alone."""
        with pytest.raises(ValueError, match="markers"):
            update_docs("# a page without markers\n")

    def test_update_docs_replaces_only_the_generated_part(self) -> None:
        """Text before and after the markers is kept; the part between them is regenerated."""
        page = f"# Title\n\nintro\n\n{DOCS_BEGIN}\nold rules\n{DOCS_END}\n\nafter\n"
        updated = update_docs(page)
        assert updated.startswith(f"# Title\n\nintro\n\n{DOCS_BEGIN}\n\n| Code |")
        assert updated.endswith(f"{DOCS_END}\n\nafter\n")
        assert "old rules" not in updated
        assert update_docs(updated) == updated

    @pytest.mark.parametrize(
        "needle",
        [
            "slipstream scan",
            "python -m slipstream scan",
            "slipstream.scan(",
            "--format",
            "--select",
            "--ignore",
            "--min-severity",
            "--exclude",
            "--baseline",
            "--write-baseline",
            "--jobs",
            "--no-cache",
            "[tool.slipstream.scan]",
            "[tool.slipstream.scan.knowledge]",
            "# noqa: SLP201",
            "# noqa: query-in-loop",
            'external = ["SLP"]',
            "slipstream-scan",
            "sarif",
            "markdown",
            "partialFingerprints",
            "chain",
        ],
    )
    def test_the_page_covers_the_command(self, needle: str) -> None:
        """The usage part of docs/scan.md documents every option and integration."""
        assert needle in DOCS.read_text(encoding="utf-8")

    def test_fix_lines_are_table_safe(self) -> None:
        """The summary table renders: one row per rule, pipes escaped."""
        rows = [line for line in rules_markdown().splitlines() if line.startswith("| [SLP")]
        assert [r.code for r in RULES] == [row.split("]")[0][3:] for row in rows]


class TestExamplesAgainstTheScanner:
    """The documentation's snippets are the scanner's contract: each example is reported by
    its rule, and its "use instead" is reported by no rule."""

    @staticmethod
    def _codes(tmp_path: Path, source: str) -> list[str]:
        from slipstream._impl.scan import scan_report

        (tmp_path / "snippet.py").write_text(source, encoding="utf-8")
        report = scan_report(tmp_path, jobs=1, cache_dir=None)
        assert () == report.errors
        return [f.code for f in report.findings]

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_example_is_reported_by_its_rule(self, r: Rule, tmp_path: Path) -> None:
        """Scanning a rule's example finds that rule."""
        assert r.code in self._codes(tmp_path, r.example)

    @pytest.mark.parametrize("r", RULES, ids=_ids)
    def test_fixed_is_not_reported(self, r: Rule, tmp_path: Path) -> None:
        """Scanning a rule's "use instead" finds nothing."""
        assert [] == self._codes(tmp_path, r.fixed)
