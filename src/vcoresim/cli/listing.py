"""``vcoresim list``: the built-in scenarios, patches, kernel presets and invariants."""

from __future__ import annotations

import json

import click
from rich.table import Table

from vcoresim.cli.common import out
from vcoresim.scenarios import catalog
from vcoresim.scenarios.registry import builtin_scenarios


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
    t = Table(title="Scenarios", title_justify="left")
    for col in ("name", "kind", "expected", "strategy", "description"):
        t.add_column(col)
    for s in doc["scenarios"]:
        t.add_row(s["name"], s["kind"], s["expected"] or "-", s["strategy"], s["description"])
    out.print(t)
    for section, cols in (("patches", ("name", "commit", "release", "seed", "default", "description")), ("presets", ("name", "patches", "description")), ("invariants", ("name", "kind", "description"))):
        if not doc[section]:
            continue
        t = Table(title=section.capitalize(), title_justify="left")
        for col in cols:
            t.add_column(col)
        for row in doc[section]:
            t.add_row(*[", ".join(row[c]) if isinstance(row[c], list) else str(row[c]) for c in cols])
        out.print(t)
