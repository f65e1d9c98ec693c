"""Tables from notebook outputs, numbered as tables: "Table 3", cited by ``{numref}``.

myst-nb gives a cell's output a name and a caption through the cell's
metadata (``mystnb: figure: {name, caption}``), and Sphinx then numbers it,
cites it with ``{numref}`` and fails the strict build on a misspelt name; but
it numbers every such output as a *figure*.  A table printed by a cell (a
pandas DataFrame) should count among the tables.  This extension does that
and nothing else: a myst-nb figure whose ``classes`` include ``table`` becomes
a :class:`numbered_table` node, which Sphinx counts as a ``table`` (so
``numfig_format["table"]`` and ``{numref}`` say "Table N"), drawn in HTML as a
``<div class="numbered-table">`` holding the caption and the cell's output.

A chapter marks a table like this (in the MyST text of the chapter)::

    ```{code-cell} ipython3
    :mystnb:
    :  figure:
    :    name: tips-tab-rates
    :    caption: Each dropout rate against the baseline.
    :    caption_before: true
    :    classes: table
    table
    ```

Tested in tests/test_numbered_tables.py.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform

TABLE_CLASS = "table"


class numbered_table(nodes.General, nodes.Element):  # noqa: N801 (docutils' node naming)
    """A cell's output with a caption, counted with the tables."""


def _caption_text(node: nodes.Element) -> str | None:
    for child in node.children:
        if isinstance(child, nodes.caption):
            return child.astext()
    return None


class FiguresMarkedAsTables(SphinxTransform):
    """Turn each myst-nb figure with the ``table`` class into a :class:`numbered_table`."""

    # Before Sphinx's own transforms that look at figures and targets.
    default_priority = 200

    def apply(self, **kwargs) -> None:
        for figure in list(self.document.findall(nodes.figure)):
            if TABLE_CLASS not in figure["classes"]:
                continue
            table = numbered_table(figure.rawsource, *figure.children)
            table.update_all_atts(figure)
            table["classes"] = [
                c for c in figure["classes"] if c != TABLE_CLASS
            ]
            table.source, table.line = figure.source, figure.line
            # Not replace_self: it would copy the figure's classes back.
            figure.parent.replace(figure, table)
            # The document's index of targets still points at the figure.
            for node_id in table["ids"]:
                self.document.ids[node_id] = table


def visit_numbered_table(translator, node: numbered_table) -> None:
    translator.body.append(
        translator.starttag(node, "div", CLASS="numbered-table")
    )


def depart_numbered_table(translator, node: numbered_table) -> None:
    translator.body.append("</div>\n")


def setup(app):
    app.add_enumerable_node(
        numbered_table,
        "table",
        _caption_text,
        html=(visit_numbered_table, depart_numbered_table),
    )
    app.add_transform(FiguresMarkedAsTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
