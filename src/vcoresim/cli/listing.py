"""``vcoresim list``: the built-in scenarios, patches, kernel presets and invariants."""

from __future__ import annotations

import json

import click

from vcoresim.cli.common import out
from vcoresim.report.tables import Column, fit_table
from vcoresim.scenarios import catalog
from vcoresim.scenarios.registry import builtin_scenarios

#: Per section: (key, column) in display order.  Names never wrap; descriptions
#: wrap; lower-priority columns go first on a narrow terminal.
SECTIONS: dict[str, list[tuple[str, Column]]] = {
    "scenarios": [
        ("name", Column("name", 0)),
        ("kind", Column("kind", 3)),
        ("expected", Column("expected", 1)),
        ("strategy", Column("strategy", 3)),
        ("description", Column("description", 0, wrap=True)),
    ],
    "patches": [
        ("name", Column("name", 0)),
        ("seed", Column("seed", 1)),
        ("default", Column("default", 2)),
        ("description", Column("description", 0, wrap=True)),
    ],
    "presets": [
        ("name", Column("name", 0)),
        ("patches", Column("patches", 0, wrap=True)),
        ("description", Column("description", 1, wrap=True)),
    ],
    "invariants": [
        ("name", Column("name", 0)),
        ("kind", Column("kind", 1)),
        ("description", Column("description", 0, wrap=True)),
    ],
}


def _cell(v: object) -> str:
    if v is None:
        return "-"
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", "markdown", is_flag=True, help="Print the patch and preset tables of docs/scenarios.md (generated from the registry).")
def list_cmd(as_json: bool, markdown: bool) -> None:
    """Show the built-in scenarios, patches, kernel presets and invariants."""
    if markdown:
        from vcoresim.kvm import catalog as kvm_catalog

        click.echo(kvm_catalog.patches_markdown() + "\n" + kvm_catalog.presets_markdown(), nl=False)
        return
    doc = catalog.describe(builtin_scenarios())
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    for section, cols in SECTIONS.items():
        if not doc[section]:
            continue
        rows = [[_cell(row[key]) for key, _c in cols] for row in doc[section]]
        out.print(fit_table(section.capitalize(), [c for _k, c in cols], rows, out.width), markup=False)
