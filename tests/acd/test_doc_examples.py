"""Examples in the docs cannot drift from the code: each log line of README.md and
docs/operations.md is what one of the package's log calls prints, and the verdicts of
docs/staffing.md's sweep table are what `acd.planning.whatif.verdict` says of their intervals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/operations.md")
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?:INFO|WARNING|ERROR) (acd[.\w]*) (.*)$",
    re.MULTILINE,
)
CALL = re.compile(
    r"\.(?:info|warning|error)\(\s*((?:\"[^\"\n]*\"\s*)+)"  # log.info("..." "...", ...)
    r"|\blog\.log\(\s*[^,]+,\s*((?:\"[^\"\n]*\"\s*)+)"  # log.log(level, "...", ...)
)
CONVERSION = re.compile(r"%(?:\.\d+)?[sdrfg]")


def _pattern(fmt: str) -> re.Pattern[str]:
    parts = CONVERSION.split(fmt)
    return re.compile(".*?".join(map(re.escape, parts)) + "$")


def _formats() -> list[re.Pattern[str]]:
    formats = []
    for folder in ("acd", "drivers"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in CALL.finditer(path.read_text(encoding="utf-8")):
                literal = match.group(1) or match.group(2)
                text = "".join(re.findall(r"\"([^\"\n]*)\"", literal))
                formats.append(_pattern(text))
    return formats


FORMATS = _formats()
EXAMPLES = [
    (doc, m.group(1), m.group(2))
    for doc in DOCS
    for m in LINE.finditer((ROOT / doc).read_text(encoding="utf-8"))
]


def test_the_docs_have_log_excerpts():
    assert len(EXAMPLES) >= 15 and len(FORMATS) > 30


@pytest.mark.parametrize(("doc", "logger", "message"), EXAMPLES, ids=[e[2][:50] for e in EXAMPLES])
def test_each_logged_line_of_the_docs_is_what_the_code_logs(doc, logger, message):
    assert any(f.match(message) for f in FORMATS), f"{doc}: no log call prints {message!r}"


SWEEP_ROW = re.compile(
    r"^\| (\d+) \| ([\d.]+) % \(([\d.]+) \.\. ([\d.]+)\) \| [\d.]+ % \| ([a-z ]+) \|$",
    re.MULTILINE,
)


def test_the_sweep_table_of_staffing_md_says_what_acd_simulate_says():
    from acd.planning.whatif import Estimate, verdict

    rows = SWEEP_ROW.findall((ROOT / "docs" / "staffing.md").read_text(encoding="utf-8"))
    assert len(rows) >= 10
    for volume, mean, low, high, shown in rows:
        rate = Estimate(float(mean) / 100, float(low) / 100, float(high) / 100, 50)
        assert verdict(rate, 0.99)[0] == shown, f"{volume} calls/day"
