"""The README's Python API example runs as written, against the real model, tantivy and FAISS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import FIXTURE_DOCS, REPO, write_corpus


def _python_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's Python API section holds no python block"
    return found.group(1)


@pytest.mark.slow  # it loads the real model, as a reader's first run does
def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_corpus(tmp_path / "docs", FIXTURE_DOCS)
    (tmp_path / "more").mkdir()
    lines = [{"_id": f"n{i}", "title": f"Note {i}", "text": f"Field note {i} on sea otters."}
             for i in range(3)]  # fmt: skip
    (tmp_path / "more" / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(_python_example(), "README.md", "exec"), namespace)
    assert namespace["report"].documents == len(FIXTURE_DOCS) + len(lines)  # type: ignore[attr-defined]
