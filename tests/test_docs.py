"""The user guide runs: every ```python block of every docs/*.md page, against PostgreSQL.

Each page gets a scratch database of its own, migrated to head with Alembic and
handed to the examples as ``$DATABASE_URL``, so they call ``Database.connect()``
with no argument. A page's blocks run in order, in one namespace and one event
loop, with top-level ``await`` allowed; a failure's traceback points at the
line of the ``.md`` file. Fences in any other language (``sh``, ``text``, ...)
are shown, not run; so is a python fence that only includes a file
(``--8<-- "lending/app.py"``, pymdownx.snippets): the file is real code, run
by a test of its own (docs/project.md's example: tests/integration/test_project_guide.py).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import itertools
import os
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import attrs
import pytest
from alembic import command
from alembic.config import Config

from repo import Database, InvalidState
from repo._postgres.dsn import resolve_dsn, with_database

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
RUNNABLE = frozenset({"python", "py"})
# Shown, not run. A fence in a language in neither set is refused, so that a
# typo such as ```pyhton cannot quietly stop an example from running.
SHOWN = frozenset({"sh", "console", "text", "sql", "ini", "toml", "yaml"})

_SNIPPET = re.compile(r"^\s*-{1,2}8<-{1,2}\s")
_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_databases = itertools.count(1)


@attrs.frozen
class Block:
    """One fenced code block: its language, its first line (1-based) and its text."""

    language: str
    line: int
    source: str

    @property
    def runs(self) -> bool:
        """Whether the block is code to run here: python, and not only files included."""
        lines = [line for line in self.source.splitlines() if line.strip()]
        included = bool(lines) and all(_SNIPPET.match(line) for line in lines)
        return self.language in RUNNABLE and not included


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order, dedented to their fence."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _OPENING.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].split()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        found.append(Block(info[0].lower() if info else "", i + 2, "\n".join(body) + "\n"))
        i = end + 1
    return found


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def scratch_dsn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database migrated to head, set as ``$DATABASE_URL``; dropped afterwards."""
    server = resolve_dsn()
    name = f"repo_docs_{os.getpid()}_{next(_databases)}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        dsn = with_database(server, name)
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["dsn"] = dsn
        # env.py calls asyncio.run: this runs before the page's event loop starts.
        command.upgrade(config, "head")
        monkeypatch.setenv("DATABASE_URL", dsn)
        yield dsn
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _open_databases(namespace: dict[str, object]) -> list[Database]:
    """The pools a page left open under a top-level name."""
    found = []
    for value in namespace.values():
        if isinstance(value, Database):
            try:
                value.pool  # noqa: B018 - raises InvalidState unless open
            except InvalidState:
                continue
            found.append(value)
    return found


async def _run_page(page: Path, code_blocks: list[Block], namespace: dict[str, object]) -> None:
    try:
        for block in code_blocks:
            if not block.runs:
                continue
            # Padding with blank lines keeps line numbers those of the .md
            # file, so a traceback shows the failing line of the page.
            source = "\n" * (block.line - 1) + block.source
            code = compile(
                source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
            )
            result = eval(code, namespace)
            if code.co_flags & inspect.CO_COROUTINE:
                await result
    except BaseException:
        # A failed example skips its own cleanup: end its pools here, so that
        # the failure is reported rather than unclosed-connection warnings.
        for db in _open_databases(namespace):
            db.pool.terminate()
        raise
    left_open = _open_databases(namespace)
    for db in left_open:
        await db.close()
    assert not left_open, f"{page.name} leaves {left_open!r} open: examples close what they open"


def test_docs_pages_exist_and_are_in_the_nav() -> None:
    """The guide has pages, and mkdocs.yml's nav lists each of them exactly once."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", config, re.MULTILINE)
    assert sorted(p.name for p in PAGES) == sorted(nav)
    assert PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_fences_name_known_languages(page: Path) -> None:
    """Every fence names a language that is either run or deliberately only shown."""
    languages = {b.language for b in blocks(page.read_text(encoding="utf-8"))}
    assert set() == languages - RUNNABLE - SHOWN


def test_blocks_are_found_with_their_language_and_line() -> None:
    """Fences are parsed with their language, first body line, and indentation removed."""
    text = textwrap.dedent(
        """\
        Intro.

        ```python title="x.py"
        a = 1
        ```

        !!! note
            ````sh
            echo ```
            ````

        ```
        plain
        ```
        """
    )
    expected = [
        Block("python", 4, "a = 1\n"),
        Block("sh", 9, "echo ```\n"),
        Block("", 13, "plain\n"),
    ]
    assert expected == blocks(text)


def test_blocks_that_only_include_files_are_not_run() -> None:
    """A python fence of snippet lines shows a file that its own test runs; others run."""
    assert not Block("python", 3, '--8<-- "lending/app.py"\n\n').runs
    assert not Block("python", 3, '--8<-- "lending/app.py"\n--8<-- "lending/tables.py"\n').runs
    assert Block("python", 3, 'x = 1\n--8<-- "lending/app.py"\n').runs
    assert not Block("sh", 3, "ls\n").runs
    assert Block("py", 3, "x = 1\n").runs


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, scratch_dsn: str) -> None:
    """Every ```python block of the page runs, in order, in one namespace and one loop."""
    assert os.environ["DATABASE_URL"] == scratch_dsn
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    module.__file__ = str(page)
    # Registered as a module so that classes defined on the page resolve their
    # annotations (typing.get_type_hints) as they would in real code.
    sys.modules[module.__name__] = module
    try:
        code_blocks = blocks(page.read_text(encoding="utf-8"))
        asyncio.run(_run_page(page, code_blocks, module.__dict__))
    finally:
        del sys.modules[module.__name__]
