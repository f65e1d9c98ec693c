"""The page checker catches what it is meant to catch.

Each test breaks one page of a copy of the built book in one way (what a
slip in a chapter would produce) and asks the checker to find exactly that.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from .checker import check_page, glue_references
from .conftest import ROOT, serve

PAGE = (
    "chapters/04_training_vs_inference"  # equations, figures and glued values
)


@pytest.fixture(scope="module")
def copy_of_site(site, tmp_path_factory):
    root, _ = site
    copy = tmp_path_factory.mktemp("site") / "html"
    shutil.copytree(root, copy)
    server, origin = serve(copy)
    yield copy, origin
    server.shutdown()


def check_broken(page, copy_of_site, name, break_it):
    """Write a broken variant of PAGE next to it and check it."""
    root, origin = copy_of_site
    html = (root / f"{PAGE}.html").read_text(encoding="utf-8")
    broken = break_it(html)
    assert broken != html, "the test did not change the page"
    (root / f"chapters/{name}.html").write_text(broken, encoding="utf-8")
    return check_page(
        page,
        f"{origin}/chapters/{name}.html",
        root=root,
        origin=origin,
        expected_glue=glue_references(ROOT / f"{PAGE}.ipynb"),
    )


def only(problems, pattern):
    assert problems, "the checker found nothing wrong"
    assert all(re.search(pattern, p) for p in problems), problems


def test_the_unbroken_page_passes(page, copy_of_site):
    report = check_broken(
        page, copy_of_site, "unbroken", lambda html: html + "\n"
    )
    assert report.problems == []
    assert (
        report.equations > 0 and report.images > 0 and report.glued_values > 0
    )


def test_a_removed_image_is_caught(page, copy_of_site):
    def remove_image(html):
        return re.sub(
            r'(<img[^>]*src=")([^"]+)"',
            r'\1../_images/removed.png"',
            html,
            count=1,
        )

    report = check_broken(page, copy_of_site, "no-image", remove_image)
    # The image, its 404, and the browser's console line about the failed load.
    only(report.problems, r"removed\.png|Failed to load resource")
    assert "image did not load: ../_images/removed.png" in report.problems


def test_a_misspelt_glue_key_is_caught(page, copy_of_site):
    # A glue role whose key does not exist renders nothing at all.
    def drop_one_glued_value(html):
        return re.sub(
            r'<span class="pasted-text">[^<]*</span>', "", html, count=1
        )

    report = check_broken(
        page, copy_of_site, "glue-missing", drop_one_glued_value
    )
    only(
        report.problems, r"glued values on the page, but its source asks for"
    )


def test_equations_without_the_local_mathjax_are_caught(page, copy_of_site):
    # What the book's pages did before MathJax was shipped with them: load it
    # from a CDN, which an offline reader (and this test) cannot reach.
    def mathjax_from_a_cdn(html):
        return re.sub(
            r'src="\.\./_static/mathjax/tex-chtml\.js[^"]*"',
            'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"',
            html,
        )

    report = check_broken(
        page, copy_of_site, "cdn-mathjax", mathjax_from_a_cdn
    )
    text = "\n".join(report.problems)
    assert (
        "external request: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"
        in text
    )
    assert report.equations > 0
    untypeset = [
        p for p in report.problems if p.startswith("equation not typeset")
    ]
    assert len(untypeset) == report.equations
    assert any(p.startswith("raw TeX in the text") for p in report.problems)


def test_tex_that_mathjax_is_told_to_skip_is_caught(page, copy_of_site):
    def add_skipped_tex(html):
        return html.replace(
            "</main>",
            r'<p class="mathjax_ignore">$$ t = \frac{\bar d}{s} $$</p></main>',
            1,
        )

    report = check_broken(page, copy_of_site, "raw-tex", add_skipped_tex)
    only(report.problems, r"raw TeX in the text")


def test_a_dead_anchor_and_an_external_request_are_caught(page, copy_of_site):
    def add_dead_link_and_remote_image(html):
        return html.replace(
            "</main>",
            '<a href="#no-such-section">x</a><img src="https://example.org/logo.png"></main>',
            1,
        )

    report = check_broken(
        page, copy_of_site, "dead-link", add_dead_link_and_remote_image
    )
    text = "\n".join(report.problems)
    assert "link to a missing anchor" in text and "no-such-section" in text
    assert "external request: https://example.org/logo.png" in text


def test_glue_in_captions_is_counted(tmp_path):
    notebook = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": ["{glue:text}`a`"],
            },
            {
                "cell_type": "code",
                "metadata": {
                    "mystnb": {
                        "figure": {
                            "name": "x-tab-y",
                            "caption": "Over {glue:text}`n:d` folds, {glue}`b`.",
                        }
                    }
                },
                "source": ["table"],
                "outputs": [],
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": ["x"],
                "outputs": [],
            },
        ]
    }
    source = tmp_path / "page.ipynb"
    source.write_text(json.dumps(notebook))
    assert glue_references(source) == 3
