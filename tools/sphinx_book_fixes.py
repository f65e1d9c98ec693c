"""Sphinx fixes for the book's HTML, loaded by _config.yml (``local_extensions``).

Two fixes: repeated inline scripts (below), and pages that glue values from
other notebooks being re-read when those notebooks change
(:func:`pages_that_glue_from`).

sphinx-thebe 0.3.1 adds its inline configuration script (``const THEBE_JS_URL
= ...``) each time Sphinx emits ``env-before-read-docs``, which happens twice
in a Jupyter Book 1 build, so every page declared the same ``const`` twice and
the browser reported "Identifier 'THEBE_JS_URL' has already been declared" on
every page (tests/browser found it); sphinx-togglebutton's inline script is
repeated the same way.  Sphinx removes a repeated script only when it is
added the same way (an inline script's file name is None on one path and ""
on the other); this extension drops the repeats, keeping the first of each.
tests/browser/test_book_pages.py fails if the error comes back.
"""

from __future__ import annotations

import re
from pathlib import Path

# A glue role or directive that takes its value from another document
# ("{glue:text}`chapters/05_tips.ipynb::key:.1f`"), as the FAQ page does.
CROSS_DOCUMENT_GLUE = re.compile(r"\{glue(?::[a-z]+)?\}`[^`]*\.ipynb::")


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # The same script added once with filename None and once with "" (how
        # Sphinx stores an inline script on each path) must count as one.
        filename = getattr(script, "filename", script) or ""
        attributes = sorted(getattr(script, "attributes", {}).items())
        key = (
            str(filename),
            getattr(script, "priority", None),
            tuple(attributes),
        )
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def pages_that_glue_from(app, env, added, changed, removed) -> list[str]:
    """Documents to re-read because a notebook they glue values from is being re-read.

    Sphinx does not know that a page pasting another notebook's glued values
    depends on that notebook, so an incremental ``make book`` after ``make
    execute`` left the FAQ showing the old numbers.  Re-read every page that
    glues across documents whenever any notebook is re-read (the pages are few).
    """
    rereading = set(added) | set(changed)
    if not any(
        str(env.doc2path(doc)).endswith(".ipynb") for doc in rereading
    ):
        return []
    stale = []
    for doc in sorted(env.found_docs - rereading - set(removed)):
        source = Path(env.doc2path(doc))
        if source.suffix == ".md" and CROSS_DOCUMENT_GLUE.search(
            source.read_text(encoding="utf-8")
        ):
            stale.append(doc)
    return stale


def setup(app):
    app.connect("env-get-outdated", pages_that_glue_from)
    # Late (priority 900), after the other extensions have added their scripts.
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
