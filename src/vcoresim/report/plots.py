"""PNG plots of a timed run (matplotlib, the optional ``vcoresim[plot]`` extra).

``write_run_plot``: latency CDFs (wake-to-entry, exit-to-entry, IPI-to-wake)
and each hardware thread's guest utilisation over time.  ``write_study_plot``:
the policy study's throughput and latency per threads-per-vcore.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Fixed metadata so the same run gives the same bytes.
_META = {"Software": None}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed: pip install 'vcoresim[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def utilisation(result: Any, bins: int = 50) -> tuple[list[float], dict[str, list[float]]]:
    """Per thread, the share of each of ``bins`` equal time bins spent in guest code."""
    end = max(1, result.end_ns)
    width = end / bins
    share: dict[str, list[float]] = {}
    open_: dict[str, int] = {}

    def add(thread: str, t0: int, t1: int) -> None:
        row = share.setdefault(thread, [0.0] * bins)
        b = int(t0 // width)
        while t0 < t1 and b < bins:
            stop = min(t1, (b + 1) * width)
            row[b] += (stop - t0) / width
            t0, b = stop, b + 1

    for e in result.events:
        if e.event == "guest_enter":
            open_.setdefault(str(e.data.get("thread", e.actor)), e.t)
        elif e.event == "guest_exit":
            t0 = open_.pop(str(e.data.get("thread", e.actor)), None)
            if t0 is not None:
                add(str(e.data.get("thread", e.actor)), t0, min(e.t, end))
    for thread, t0 in open_.items():
        add(thread, t0, end)
    centres = [(b + 0.5) * width / 1e3 for b in range(bins)]
    return centres, {k: share[k] for k in sorted(share, key=lambda n: (len(n), n))}


def write_run_plot(result: Any, metrics: Any, path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in ("wake_to_entry", "exit_to_entry", "ipi_to_wake", "signal_to_exit"):
        v = sorted(metrics.samples.get(name, []))
        if not v:
            continue
        ys = [(i + 1) / len(v) for i in range(len(v))]
        ax1.step([x / 1e3 for x in v], ys, where="post", label=f"{name} (n={len(v)})")
    ax1.set_xscale("log")
    ax1.set_xlabel("latency (µs, log)")
    ax1.set_ylabel("fraction ≤ x")
    ax1.set_title("Latency CDFs")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    centres, share = utilisation(result)
    for thread, row in share.items():
        ax2.plot(centres, [100 * x for x in row], label=thread, linewidth=1.2)
    ax2.set_xlabel("simulated time (µs)")
    ax2.set_ylabel("guest utilisation (%)")
    ax2.set_ylim(-2, 102)
    ax2.set_title("Guest utilisation per hardware thread")
    ax2.grid(True, alpha=0.3)
    if share:
        ax2.legend(fontsize=8)
    fig.suptitle(f"{metrics.program}, seed {metrics.seed}, {metrics.end_ns / 1e6:.3f} ms simulated")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_META)
    plt.close(fig)


#: One colour, marker and line style per CPU, so lines that coincide stay visible
#: (open markers over filled ones, dashes over solid lines).
_CPU_STYLE = {
    "POWER7": {"color": "tab:blue", "marker": "o", "linestyle": "-", "markersize": 9, "markerfacecolor": "tab:blue", "zorder": 2},
    "POWER8": {"color": "tab:orange", "marker": "s", "linestyle": "--", "markersize": 6, "markerfacecolor": "none", "markeredgewidth": 1.6, "zorder": 3},
}


def write_study_plot(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Rows with ``cpu``, ``threads``, ``guest_cpus``, ``work_per_s``, ``wake_to_entry_p50``/``p99``."""
    plt = _plt()
    fig = study_figure(rows, title)
    fig.savefig(path, dpi=100, metadata=_META)
    plt.close(fig)


def study_figure(rows: Sequence[dict[str, Any]], title: str) -> Any:
    """Three panels, one quantity and one unit each: completed guest work per
    second, guest CPU time delivered (vCPUs' worth) and the wake-to-entry
    latency (p50 and p99); each CPU has its own colour, marker and line style."""
    plt = _plt()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 4.5))
    cpus = sorted({r["cpu"] for r in rows})
    for cpu in cpus:
        rs = sorted((r for r in rows if r["cpu"] == cpu), key=lambda r: r["threads"])
        xs = [r["threads"] for r in rs]
        style = _CPU_STYLE.get(cpu, {"marker": "^"})
        ax1.plot(xs, [r["work_per_s"] for r in rs], label=cpu, **style)
        ax2.plot(xs, [r["guest_cpus"] for r in rs], label=cpu, **style)
        ax3.plot(xs, [(r["wake_to_entry_p99"] or 0) / 1e3 for r in rs], label=f"{cpu} p99", **style)
        p50 = {**style, "linestyle": ":", "alpha": 0.7}
        ax3.plot(xs, [(r["wake_to_entry_p50"] or 0) / 1e3 for r in rs], label=f"{cpu} p50", **p50)
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8])
        ax.set_xticklabels(["1", "2", "4", "8"])
        ax.set_xlabel("threads (vCPUs) per vcore")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    ax1.set_ylabel("guest work units completed per second")
    ax1.set_title("Guest throughput")
    ax2.set_ylabel("guest CPU time (vCPUs' worth)")
    ax2.set_title("Guest CPU time delivered")
    ax3.set_ylabel("vCPU wake-up to guest entry (µs)")
    ax3.set_title("Wake-to-entry latency")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
