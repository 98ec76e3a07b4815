"""Render a results file as the Markdown tables used in docs/BENCHMARKS.md.

    python bench/report.py [bench/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def figures(results: dict[str, Any]) -> list[str]:
    lines = ["| scenario | figure | value | floor (same run) | ratio | target | met | size |",
             "|---|---|---|---|---|---|---|---|"]
    for f in results["figures"]:
        ratio = f"{f['ratio']:.2f}x floor" if f["better"] == "lower" else f"{f['ratio']:.1%} of floor"
        target = "" if f["target"] is None else ("≥ " if f["better"] == "higher" else "≤ ") + f"{f['target']:g}"
        met = "" if f["met"] is None else ("yes" if f["met"] else "**no**")
        value = f"{fmt(f['value'], 2)} {f['unit']}"
        floor = f"{fmt(f['floor'], 2)} — {f['floor_name']}"
        name = f["name"] + (f" ({f['note']})" if f["note"] else "")
        lines.append(f"| {f['scenario']} | {name} | {value} | {floor} | {ratio} | {target} | {met} | {f['size']} |")
    return lines


def axis(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    keys = list(rows[0].keys())
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k), 2) for k in keys) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    fl = results["floors"]
    out = [f"Run: `{results['mode']}` mode, finished {results['finished']}, {results['seconds']:.0f} s; "
           f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory']}, Python {m['python']}, "
           f"load average at the end {', '.join(f'{v:.1f}' for v in m['load_average'])}.", ""]
    out += figures(results)
    out += ["", "Floors measured in the run:", ""]
    ws = fl.get("ws", {})
    out.append(f"- apsw append, 1 row per FULL transaction: {fmt(fl['apsw_1']['rows_per_s'])}/s, commit p50 "
               f"{fmt(fl['apsw_1']['commit_p50_ms'], 2)} ms, p99 {fmt(fl['apsw_1']['commit_p99_ms'], 2)} ms")
    if "apsw_batch" in fl:
        out.append(f"- apsw append, {fl['apsw_batch']['batch']} rows per FULL transaction: "
                   f"{fmt(fl['apsw_batch']['rows_per_s'])} rows/s")
    out.append(f"- websocket echo (hypercorn-trio + trio-websocket): RTT p50 {fmt(ws.get('rtt_p50_ms'), 2)} ms, "
               f"p99 {fmt(ws.get('rtt_p99_ms'), 2)} ms; connect + first echo p50 "
               f"{fmt(ws.get('connect_rtt_p50_ms'), 2)} ms")
    for clients, http in fl.get("http", {}).items():
        out.append(f"- bare hypercorn POST, {clients} client connection(s): {fmt(http['rate'])}/s, "
                   f"p50 {fmt(http['p50_ms'], 2)} ms")
    if "http_open" in fl:
        bare = fl["http_open"]
        out.append(f"- bare hypercorn POST, open loop at 200/s on 16 connections (the latency client): p50 "
                   f"{fmt(bare['p50_ms'], 2)} ms, p99 {fmt(bare['p99_ms'], 2)} ms from ready-to-send; from the "
                   f"scheduled time p50 {fmt(bare['scheduled_p50_ms'], 2)} ms (client timer lateness p50 "
                   f"{fmt(bare['lateness_p50_ms'], 2)} ms, p99 {fmt(bare['lateness_p99_ms'], 2)} ms)")
    for count, bare in fl.get("fanout", {}).items():
        out.append(f"- bare hypercorn broadcast to {count} subscriber(s) (same client): delivery p50 "
                   f"{fmt(bare['p50_ms'], 2)} ms, p99 {fmt(bare['p99_ms'], 2)} ms")
    if "scan" in fl:
        out.append(f"- SQLite scan of {fl['scan']['rows']:,} events: {fmt(fl['scan']['rows_per_s'])} rows/s")
    out.append(f"- spawn `/bin/sh -c true`: p50 {fmt(fl['spawn']['p50_ms'], 2)} ms, p99 {fmt(fl['spawn']['p99_ms'], 2)} ms")
    out.append(f"- python start + import of the daemon: {fmt(fl['import_s'], 2)} s")
    for name, rows in results["axes"].items():
        out += ["", f"Axis `{name}`:", ""] + axis(rows)
    if results.get("errors"):
        out += ["", "Failed sections:", ""] + [f"- {e['section']}: `{e['error'][:300]}`" for e in results["errors"]]
    return "\n".join(out)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results.json")
    print(render(json.loads(path.read_text())))
