"""Build glue of the documentation site (mkdocs.yml), so that the README and the docstrings read on the site as
they do on GitHub and in the code.

* mkdocs hook ``on_files``: the home page ``index.md`` is README.md, its links into ``docs/`` made relative to the
  site's root (``docs/papers.md`` -> ``papers.md``, ``docs/app.png`` -> ``app.png``); ``examples/*.ipynb`` are copied
  to the site's ``examples/`` (downloadable, linked from the Examples page).
* griffe extension ``DoctestBlocks`` (mkdocstrings): the package's docstrings hold doctests (``>>> ...`` and their
  output) as plain lines, under an ``Example:`` heading or in the text; each run of them becomes a ``pycon`` code
  block, which Markdown would otherwise read as nested quotes (and ``x[-1]`` as a link). Sphinx roles
  (``:class:`TrainedModel```) become code spans.
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
#: a Markdown link or image target that starts with docs/ (``](docs/papers.md)``, ``](docs/app.png)``)
DOCS_LINK = re.compile(r"\]\(docs/")
FENCE = "```"
#: a doctest directive at the end of a line (``# doctest: +SKIP``): for doctest, not for readers
DOCTEST_FLAG = re.compile(r"\s*# doctest:.*$")
#: a Sphinx cross-reference role, e.g. :class:`TrainedModel` or :func:`scaled`
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


def readme_page() -> str:
    """README.md with its links into docs/ relative to the site's root."""
    return DOCS_LINK.sub("](", (ROOT / "README.md").read_text(encoding="utf-8"))


def on_files(files: Files, config) -> Files:
    """Add the home page (from the README) and the example notebooks to the site's files."""
    files.append(File.generated(config, "index.md", content=readme_page()))
    for notebook in sorted((ROOT / "examples").glob("*.ipynb")):
        files.append(File(f"examples/{notebook.name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def fence_doctests(text: str) -> str:
    """Each run of doctest lines (a ``>>>`` line, its ``...`` continuations and its output, up to a blank line or
    a shallower line) wrapped in a ``pycon`` fence at its own indentation; text already in a fence is kept."""
    out: list[str] = []
    in_fence, block_indent = False, None
    for line in text.splitlines():
        stripped, indent = line.lstrip(), len(line) - len(line.lstrip())
        if block_indent is not None and (not stripped or indent < block_indent):
            out.append(" " * block_indent + FENCE)
            block_indent = None
        if block_indent is None and stripped.startswith(FENCE):
            in_fence = not in_fence
        elif block_indent is None and not in_fence and stripped.startswith(">>>"):
            block_indent = indent
            out.append(" " * indent + FENCE + "pycon")
        out.append(DOCTEST_FLAG.sub("", line) if block_indent is not None else line)
    if block_indent is not None:
        out.append(" " * block_indent + FENCE)
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fences the doctests of every docstring and turns its Sphinx roles into code spans (module docstring)."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is None:
            return
        text = ROLE.sub(r"`\1`", obj.docstring.value)
        obj.docstring.value = fence_doctests(text) if ">>>" in text else text
