"""A replayed counterexample as one self-contained HTML page (no network, no external files).

Layout: the violated invariant's name, text and message at the top; then a
table with one row per step and one lane (column) per actor, hardware
threads first, grouped by core.  The acting lane shows the step's
operations; every lane is coloured by what that thread is doing (guest,
KVM, host, QEMU, nap, idle).  Hovering a cell shows the call stack;
clicking a row shows every operation of the step with its call stack, MSR
and value in the panel below the header.  The violating step is
highlighted and selected when the page opens (at the top; a link in the
header jumps to it).  With the states of the replay (``replay --html``
always has them), clicking a step also shows what it changed and the whole
shared state after it, grouped by structure, its changed fields highlighted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcoresim.check.states import change_text
from vcoresim.check.trace import jsonable
from vcoresim.engine.msr import msr_str
from vcoresim.files import write_atomic
from vcoresim.report.timeline import from_execution
from vcoresim.simulate.states import STATES

COLOURS = {"guest": "#4caf50", "KVM": "#ff9800", "host": "#2196f3", "QEMU": "#9c27b0", "nap": "#bdbdbd", "idle": "#e0e0e0", "running": "#90caf9"}


def _invariant_text(name: str | None) -> str:
    if not name:
        return ""
    from vcoresim.kvm.catalog import INVARIANTS

    return INVARIANTS.get(name, "")


def page_data(res: Any, states: Any = None) -> dict[str, Any]:
    """What the page shows, as JSON (also handy for tests).  ``states``: a
    ``check.states.TraceStates`` of the replay (each step's changes and the
    state the page rebuilds after any step)."""
    ex = res.execution
    trace = res.trace
    tl = from_execution(ex, trace.scenario)
    lanes = [{"actor": t.actor, "group": t.group} for t in tl.tracks if t.kind != "task"]
    n = len(ex.records)
    state: dict[str, list[str]] = {ln["actor"]: [""] * n for ln in lanes}
    for start, end, actor, st, _fn in tl.slices:
        if actor in state:
            for i in range(start, min(end, n)):
                state[actor][i] = st
    changes: dict[int, dict[str, Any]] = {}
    if states is not None:
        for st in states.steps:
            changes[st.step] = {
                "mem": {loc: _show(b) for loc, (_a, b) in st.changes.items()},
                "modes": {t: b for t, (_a, b) in st.modes.items()},
                "text": change_text(st),
            }
    steps = []
    for rec in ex.records:
        ch = changes.get(rec.index + 1, {})
        steps.append(
            {
                "index": rec.index + 1,
                "actor": rec.actor,
                "changes": ch.get("text", []),
                "mem": ch.get("mem", {}),
                "modes": ch.get("modes", {}),
                "ops": [
                    {"stack": list(op.stack), "op": op.op, "loc": op.loc, "value": None if op.value is None else repr(op.value), "msr": msr_str(op.msr)}
                    for op in rec.ops
                ],
            }
        )
    v = ex.violation
    viol = None
    if v is not None:
        viol = {"kind": v.kind, "invariant": v.name, "text": _invariant_text(v.name), "message": v.message, "step": v.step, "row": max(0, v.step - 1)}
    initial: dict[str, Any] = {}
    threads0: dict[str, str] = {}
    if states is not None:
        initial = {loc: _show(val) for loc, val in states.initial.items()}
        threads0 = dict(states.initial_threads)
    return {
        "scenario": trace.scenario,
        "patches": trace.config.get("patches", []),
        "summary": res.summary,
        "violation": viol,
        "window": getattr(res, "window", None),
        "lanes": lanes,
        "states": state,
        "steps": steps,
        "colours": {k: COLOURS[k] for k in STATES},
        "initial": initial,
        "threads": threads0,
    }


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    return str(jsonable(v)) if not isinstance(v, (bool, int, float)) and v is not None else str(v)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vcoresim: __TITLE__</title>
<style>
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ccc; padding: 8px 12px; z-index: 2; }
h1 { font-size: 17px; margin: 0 0 4px; }
#invariant-text { margin: 2px 0; }
#message { color: #b71c1c; margin: 2px 0; }
#window { margin: 2px 0; font-size: 12px; }
#window b { color: #e65100; }
#legend span { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 3px; }
#details { font: 12px monospace; white-space: pre; max-height: 24vh; overflow: auto; background: #fafafa; border: 1px solid #ddd; padding: 4px; margin-top: 6px; }
#state-box { margin-top: 4px; }
#state { font: 12px monospace; white-space: pre-wrap; max-height: 24vh; overflow: auto; background: #fafafa; border: 1px solid #ddd; padding: 4px; }
#state b { background: #fff59d; }
table { border-collapse: collapse; margin: 8px 12px; }
th, td { border: 1px solid #e4e4e4; padding: 1px 4px; vertical-align: top; }
th { background: #f5f5f5; position: sticky; top: 0; }
td.lane { min-width: 90px; max-width: 260px; font: 11px monospace; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.lane.act { font-weight: bold; outline: 2px solid #333; outline-offset: -2px; }
tr.step { cursor: pointer; }
tr.step:hover td { filter: brightness(0.93); }
tr.selected td.idx { background: #333; color: #fff; }
tr.violation td { box-shadow: inset 0 0 0 2px #d50000; }
tr.violation td.idx { background: #d50000; color: #fff; }
</style>
</head>
<body>
<header>
  <h1 id="title"></h1>
  <div id="invariant"><b id="invariant-name"></b> <span id="invariant-text"></span></div>
  <div id="message"></div>
  <div id="summary"></div>
  <div id="window"></div>
  <div id="legend"></div>
  <div id="details">click a step to see its operations and call stacks</div>
  <details id="state-box"><summary id="state-title">shared state (click a step)</summary><div id="state"></div></details>
</header>
<table id="steps"><thead><tr id="lanes"><th>step</th></tr></thead><tbody></tbody></table>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const el = (tag, attrs, text) => { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
const V = D.violation;
document.getElementById("title").textContent = D.scenario + (D.patches.length ? "  [" + D.patches.join(", ") + "]" : "  [no patches]");
if (V) {
  document.getElementById("invariant-name").textContent = V.kind + " " + V.invariant + ":";
  document.getElementById("invariant-text").textContent = V.text;
  const msg = document.getElementById("message");
  msg.textContent = (V.step ? "violated at step " + V.step : "violated in the initial state") + ": " + V.message + " ";
  if (V.step) { const a = el("a", {"href": "#violation", "id": "jump"}, "(go to step " + V.step + ")"); msg.appendChild(a); }
} else {
  document.getElementById("invariant-name").textContent = "no violation";
}
document.getElementById("summary").textContent = D.summary;
if (D.window) {
  const w = document.getElementById("window");
  w.appendChild(el("b", {}, "timing window: "));
  const needs = D.window.needs || [];
  if (!needs.length) w.appendChild(el("span", {}, D.window.summary));
  for (const n of needs) {
    const d = el("div", {"class": "need", "data-kind": n.kind}, n.text);
    d.style.cursor = "pointer";
    d.title = "click: select step " + n.last_step;
    d.addEventListener("click", () => { const r = document.querySelector('tr[data-step="' + Math.min(n.last_step, D.steps.length - 1) + '"]'); if (r) { r.click(); r.scrollIntoView({block: "center"}); } });
    w.appendChild(d);
  }
}
const legend = document.getElementById("legend");
for (const s in D.colours) { const x = el("span", {"class": "state"}, s); x.style.background = D.colours[s]; legend.appendChild(x); }
const head = document.getElementById("lanes");
for (const ln of D.lanes) head.appendChild(el("th", {"title": ln.group, "data-actor": ln.actor}, ln.actor));
const stackText = op => (op.stack.length ? op.stack.join(" > ") : "-");
const details = document.getElementById("details");
let selected = null;
function show(row, i) {
  const st = D.steps[i];
  if (selected) selected.classList.remove("selected");
  selected = row; row.classList.add("selected");
  const lines = ["step " + st.index + "  actor " + st.actor];
  for (const op of st.ops) lines.push("  " + stackText(op) + "\\n      " + op.op + (op.value !== null ? "  -> " + op.value : "") + "  [" + op.msr + "]");
  if (st.changes.length) lines.push("  changed: " + st.changes.join("; "));
  if (V && i === V.row) lines.push("^^^ " + V.invariant + ": " + V.message);
  details.textContent = lines.join("\\n");
  showState(i);
}
const split = loc => { const k = loc.lastIndexOf("."); return k < 0 ? ["(globals)", loc] : [loc.slice(0, k), loc.slice(k + 1)]; };
function showState(i) {
  if (!Object.keys(D.initial).length) return;
  const mem = Object.assign({}, D.initial), modes = Object.assign({}, D.threads);
  for (let k = 0; k <= i; k++) { Object.assign(mem, D.steps[k].mem); Object.assign(modes, D.steps[k].modes); }
  const changed = new Set([...Object.keys(D.steps[i].mem), ...Object.keys(D.steps[i].modes)]);
  const groups = new Map();
  for (const loc in mem) { const [g, f] = split(loc); if (!groups.has(g)) groups.set(g, []); groups.get(g).push([loc, f]); }
  const box = document.getElementById("state");
  box.textContent = "";
  const line = (label, items) => {
    const div = el("div");
    div.appendChild(document.createTextNode(label + ": "));
    items.forEach(([key, text], n) => {
      if (n) div.appendChild(document.createTextNode(", "));
      div.appendChild(changed.has(key) ? el("b", {}, text) : document.createTextNode(text));
    });
    box.appendChild(div);
  };
  line("threads", Object.keys(modes).map(t => [t, t + " " + modes[t]]));
  for (const [g, fields] of groups) line(g, fields.map(([loc, f]) => [loc, f + " = " + mem[loc]]));
  document.getElementById("state-title").textContent = "shared state after step " + D.steps[i].index + " (changed fields highlighted)";
}
const body = document.querySelector("#steps tbody");
D.steps.forEach((st, i) => {
  const tr = el("tr", {"class": "step", "data-step": String(st.index), "data-actor": st.actor});
  tr.appendChild(el("td", {"class": "idx"}, String(st.index)));
  for (const ln of D.lanes) {
    const s = D.states[ln.actor][i] || "";
    const td = el("td", {"class": "lane", "data-state": s});
    if (s) td.style.background = D.colours[s];
    if (ln.actor === st.actor) {
      td.classList.add("act");
      const last = st.ops[st.ops.length - 1];
      td.textContent = st.ops.map(o => o.op).join("; ");
      td.title = st.ops.map(o => stackText(o) + "\\n    " + o.op).join("\\n");
      if (!last) td.textContent = "(no op)";
    }
    tr.appendChild(td);
  }
  if (V && i === V.row) { tr.classList.add("violation"); tr.id = "violation"; }
  tr.addEventListener("click", () => show(tr, i));
  body.appendChild(tr);
});
// Open at the top (a screenshot or a print shows the header and the first steps);
// the violating step is selected, and "go to step N" scrolls to it.
if (V && D.steps.length) { show(document.getElementById("violation"), V.row); }
document.body.setAttribute("data-rendered", String(D.steps.length));
</script>
</body>
</html>
"""


def render(res: Any, states: Any = None) -> str:
    data = page_data(res, states)
    # Inside <script>, only "</" can end the element early; JSON allows "<\\/".
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = data["scenario"].replace("&", "&amp;").replace("<", "&lt;")
    return _PAGE.replace("__TITLE__", title).replace("__DATA__", blob)


def write(res: Any, path: Path, states: Any = None) -> None:
    write_atomic(path, render(res, states), "--html")
