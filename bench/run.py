"""Patchbay benchmark: every figure beside a floor measured in the same run, as a ratio.

    python bench/run.py [--quick | --tiny] [--out bench/results.json] [--keep]

``--quick`` (< 2 minutes) and ``--tiny`` (seconds; the smoke test) use smaller sizes and say
so in the ``size`` column. Prints a table and writes a JSON results file (see
docs/BENCHMARKS.md for the method and the meaning of each figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import floors  # noqa: E402
import inproc  # noqa: E402
import journals  # noqa: E402
import served  # noqa: E402
from common import ROOT, Figure, Home  # noqa: E402

SIZES: dict[str, dict[str, Any]] = {
    "full": {"floor_seconds": 2.0, "echo_count": 3000, "connects": 50, "inproc_seconds": 10.0,
             "api_seconds": 8.0, "clients": [1, 8, 64], "latency_seconds": 15.0, "e2e": 200,
             "journals": [10_000, 100_000, 1_000_000], "reconnects": 30, "fanout": [1, 50, 200],
             "fanout_submissions": 100, "scale_sessions": 1000, "scale_commands": 100_000, "live": 100,
             "scale_stream_seconds": 10.0, "idle_seconds": 10.0, "stream_seconds": 10.0, "spawns": 200,
             "imports": 5},
    "quick": {"floor_seconds": 1.0, "echo_count": 1000, "connects": 20, "inproc_seconds": 4.0,
              "api_seconds": 3.0, "clients": [1, 8, 64], "latency_seconds": 5.0, "e2e": 40,
              "journals": [10_000, 100_000], "reconnects": 15, "fanout": [1, 50, 200],
              "fanout_submissions": 30, "scale_sessions": 1000, "scale_commands": 20_000, "live": 100,
              "scale_stream_seconds": 3.0, "idle_seconds": 4.0, "stream_seconds": 4.0, "spawns": 50,
              "imports": 2},
    "tiny": {"floor_seconds": 0.2, "echo_count": 100, "connects": 3, "inproc_seconds": 0.5,
             "api_seconds": 0.5, "clients": [1, 8], "latency_seconds": 0.5, "e2e": 3,
             "journals": [1_000], "reconnects": 3, "fanout": [1, 5], "fanout_submissions": 3,
             "scale_sessions": 20, "scale_commands": 200, "live": 10, "scale_stream_seconds": 0.5,
             "idle_seconds": 0.5, "stream_seconds": 0.5, "spawns": 5, "imports": 1},
}
TARGETS = {"inproc_rate": 5000.0, "api_rate": 1500.0, "latency_p50": 2.0, "latency_p99": 10.0, "reconnect": 20.0,
           "recovery": 2.0, "replay": 100_000.0, "fanout_p99": 50.0, "rss": 250.0, "idle_cpu": 1.0,
           "deltas": 2000.0}


class Progress:
    def __init__(self) -> None:
        self.begin = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.begin:6.1f} s] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(), "load_average": os.getloadavg()}


@contextmanager
def attempt(errors: list[dict[str, str]], section: str, say: Progress) -> Iterator[None]:
    """Run one section; a failure is recorded (and makes the run exit non-zero) but the other
    sections still run, so one broken scenario does not lose a 15-minute run."""
    try:
        yield
    except Exception as error:  # recorded in the results and reported; the run goes on
        errors.append({"section": section, "error": repr(error)[-3000:]})
        say(f"{section} FAILED: {error!r}"[:2000])


SECTIONS = ("inproc", "api", "latency", "fanout", "streaming", "e2e", "journals", "scale")


def run(mode: str, tmp: Path, say: Progress, only: frozenset[str] = frozenset(SECTIONS),
        overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    s = {**SIZES[mode], **(overrides or {})}
    errors: list[dict[str, str]] = []
    figures: list[Figure] = []
    axes: dict[str, list[dict[str, Any]]] = {"api_clients": [], "fanout": [], "journal": []}
    fl: dict[str, Any] = {}
    sized = "" if mode == "full" else f"{mode} size"
    t = TARGETS

    def add(*args: Any) -> None:
        figures.append(Figure(*args))

    main = Home(tmp / "main", shell_adapter=True)
    try:
        say("floors: apsw append, websocket echo, HTTP POST, spawn, imports, idle")
        fl["apsw_1"] = floors.apsw_append(1, s["floor_seconds"])
        echo = floors.EchoServer(main)
        fl["ws"] = floors.ws_echo(echo.url, s["echo_count"], s["connects"])
        fl["spawn"] = floors.spawn_times(s["spawns"])
        fl["import_s"] = floors.import_time(s["imports"])
        before = echo.child.cpu_seconds()
        time.sleep(s["idle_seconds"])  # a wall-time window for the idle floor, not a synchronization
        fl["echo_idle_cpu_percent"] = 100 * (echo.child.cpu_seconds() - before) / s["idle_seconds"]
        fl["http"] = {}
        for clients in s["clients"]:
            cpu = echo.child.cpu_seconds()
            fl["http"][clients] = floors.http_post_rate(main, echo.url, clients, s["api_seconds"],
                                                        1 if clients < 16 else 2)
            fl["http"][clients]["server_cpu_ms"] = (1000 * (echo.child.cpu_seconds() - cpu)
                                                    / max(1, fl["http"][clients]["ok"]))
        fl["http_open"] = floors.open_loop_post(main, echo.url, min(5.0, s["latency_seconds"]), 200.0, "floor-open")
        echo.stop()
        floor50 = fl["ws"]["rtt_p50_ms"] + fl["apsw_1"]["commit_p50_ms"]
        floor99 = fl["ws"]["rtt_p99_ms"] + fl["apsw_1"]["commit_p99_ms"]

        if "inproc" in only:
            with attempt(errors, "acceptance in-process", say):
                say("acceptance in-process (Core.submit)")
                result = inproc.acceptance(Home(tmp / "inproc"), s["inproc_seconds"], 64)
                batch = max(1, round(result["mean_batch"]))
                fl["apsw_batch"] = {**floors.apsw_append(batch, s["floor_seconds"]), "batch": batch}
                add("acceptance", "in-process accepted/s (64 submitters)", result["rate"], "/s",
                    f"apsw FULL append, {batch} rows/txn", fl["apsw_batch"]["rows_per_s"], "higher", t["inproc_rate"],
                    sized, f"CPU {result['cpu_ms']:.2f} ms/command, mean batch {result['mean_batch']:.0f}, "
                    f"p99 {result['p99_ms']:.1f} ms")

        say("serve: acceptance over the API")
        server = main.serve()
        token = server.login()
        fl["serve_idle_rss_mb"] = server.child.memory()["rss_mb"]
        adapter = served.start_adapter(main, server, s["live"])
        if "api" in only:
            for clients in s["clients"]:
                with attempt(errors, f"API throughput, {clients} clients", say):
                    cpu = server.child.cpu_seconds()
                    tp = served.throughput(main, server, token, clients, s["api_seconds"], s["live"])
                    cpu_ms = 1000 * (server.child.cpu_seconds() - cpu) / max(1, tp["ok"])
                    floor = fl["http"][clients]
                    if tp["statuses"].keys() - {"200"}:
                        raise RuntimeError(f"submissions were refused: {tp['statuses']} {tp['errors']}")
                    add("acceptance", f"API accepted/s, {clients} clients", tp["rate"], "/s",
                        f"bare hypercorn POST, {clients} clients", floor["rate"], "higher",
                        t["api_rate"] if clients == max(s["clients"]) else None, sized,
                        f"serve CPU {cpu_ms:.2f} ms/command vs {floor['server_cpu_ms']:.2f} ms/request bare; "
                        f"client CPU {tp['client_cpu_share']:.0%} of a core, {tp['processes']} process(es); "
                        f"p99 {tp['p99_ms']:.1f} ms")
                    axes["api_clients"].append({"clients": clients, "accepted_per_s": tp["rate"], "p50_ms": tp["p50_ms"],
                                                "p99_ms": tp["p99_ms"], "floor_per_s": floor["rate"],
                                                "client_cpu": tp["client_cpu_share"], "serve_cpu_ms_per_cmd": cpu_ms,
                                                "bare_cpu_ms_per_req": floor["server_cpu_ms"]})

        if "latency" in only:
            with attempt(errors, "latency", say):
                say("acceptance latency at 200/s over live sessions")
                lat = served.latency(main, server, token, 200.0, s["latency_seconds"], s["live"])
                bare = fl["http_open"]
                note = (f"{s['live']} live sessions, {lat['ok']} submissions; from the scheduled time p50 "
                        f"{lat['scheduled_p50_ms']:.2f} / p99 {lat['scheduled_p99_ms']:.2f} ms (client timer lateness "
                        f"p50 {lat['lateness_p50_ms']:.2f} ms); bare hypercorn POST, same client at 200/s: p50 "
                        f"{bare['p50_ms']:.2f} / p99 {bare['p99_ms']:.2f} ms")
                add("latency", "submit -> accepted p50, 200/s", lat["p50_ms"], "ms", "ws RTT p50 + FULL commit p50",
                    floor50, "lower", t["latency_p50"], sized, note)
                add("latency", "submit -> accepted p99, 200/s", lat["p99_ms"], "ms", "ws RTT p99 + FULL commit p99",
                    floor99, "lower", t["latency_p99"], sized, note)

        if "fanout" in only:
            say("fan-out to websocket subscribers")
            fl["fanout"] = {}
            for count, slow in [*((c, False) for c in s["fanout"]), (max(s["fanout"]), True)]:
                with attempt(errors, f"fan-out {count}{' + slow' if slow else ''}", say):
                    if count not in fl["fanout"]:
                        fl["fanout"][count] = floors.fanout_broadcast(main, count, s["fanout_submissions"])
                    bare = fl["fanout"][count]
                    fan = served.fan_out(main, server, token, count, s["fanout_submissions"], slow=slow)
                    label = f"{count} subscribers" + (" + 1 that never reads" if slow else "")
                    note = (f"{fan['deliveries']} deliveries, p50 {fan['p50_ms']:.1f} ms (bare p50 "
                            f"{bare['p50_ms']:.1f} ms)")
                    if slow:
                        note += f", submit p99 {fan['submit_p99_ms']:.1f} ms; the slow one: {fan['slow']}"
                    add("fan-out", f"delivery p99, {label}", fan["p99_ms"], "ms",
                        f"bare hypercorn broadcast p99, {count} subscribers", bare["p99_ms"],
                        "lower", t["fanout_p99"] if count == max(s["fanout"]) else None, sized, note)
                    axes["fanout"].append({"subscribers": label, **{k: v for k, v in fan.items() if k != "slow"},
                                           "floor_p50_ms": bare["p50_ms"], "floor_p99_ms": bare["p99_ms"]})

        if "streaming" in only:
            with attempt(errors, "streaming", say):
                say("streaming deltas to subscribers under acceptance load")
                st = served.streaming(main, server, token, deltas=t["deltas"], subscribers=10,
                                      duration=s["stream_seconds"], rate=200.0, sessions=s["live"])
                add("streaming", "deltas/s journaled and streamed (10 subscribers)", st["deltas_per_s"], "/s",
                    "apsw FULL append, 1 row/txn", fl["apsw_1"]["rows_per_s"], "higher", t["deltas"], sized,
                    f"delta delivery p99 {st['delta_delivery_p99_ms']:.1f} ms")
                add("streaming", "submit -> accepted p99 while streaming", st["accept_p99_ms"], "ms",
                    "bare hypercorn POST p99, same client, same streaming load", st["bare_p99_ms"], "lower",
                    t["latency_p99"], sized,
                    f"p50 {st['accept_p50_ms']:.1f} ms at 200/s (bare p50 {st['bare_p50_ms']:.1f} ms); from the "
                    f"scheduled time p99 {st['accept_scheduled_p99_ms']:.1f} ms; ws RTT p99 + FULL commit p99 on "
                    f"an idle machine {floor99:.2f} ms")
        adapter.stop()

        if "e2e" in only:
            with attempt(errors, "end-to-end", say):
                say("end to end through the real shell adapter")
                e2e = served.e2e(main, server, token, s["e2e"], tmp / "workspace")
                add("end-to-end", "submit -> completed p50 (shell `true`)", e2e["p50_ms"], "ms",
                    "spawn /bin/sh -c true p50", fl["spawn"]["p50_ms"], "lower", None, sized)
                add("end-to-end", "submit -> completed p99 (shell `true`)", e2e["p99_ms"], "ms",
                    "spawn /bin/sh -c true p99", fl["spawn"]["p99_ms"], "lower", None, sized)
        server.stop()
    finally:
        main.stop()

    if "journals" in only:
        for size in s["journals"]:
            with attempt(errors, f"journal of {size:,} events", say):
                say(f"journal of {size:,} events: build, recovery, reconnect, replay")
                journal_scenarios(tmp / f"j{size}", size, size == max(s["journals"]), mode, s, fl, add, axes)

    if "scale" in only:
        with attempt(errors, "scale and idle", say):
            say("scale: registered sessions, live streaming sessions, historical commands; then idle")
            scale(tmp / "scale", s, mode, fl, add)
    return {"figures": [f.as_dict() for f in figures], "floors": fl, "axes": axes, "errors": errors}


def journal_scenarios(tmp: Path, size: int, largest: bool, mode: str, s: dict[str, Any], fl: dict[str, Any],
                      add: Any, axes: dict[str, list[dict[str, Any]]]) -> None:
    t = TARGETS
    home = Home(tmp)
    try:
        built = journals.build(home, events=size, sessions=100)
        scan = floors.sqlite_scan(home.journal)
        tail = floors.sqlite_tail(home.journal, 100)
        server = home.serve()
        token = server.login()
        rec = served.reconnect(server, token, 100, s["reconnects"])
        server.stop()
        floor = fl["ws"]["connect_rtt_p50_ms"] + tail
        sized = f"{built['events']:,} events" + ("" if mode == "full" else f" ({mode})")
        add("reconnect", f"cursor 100 behind -> live p50, {size:,} events", rec["p50_ms"], "ms",
            "ws connect+echo p50 + SQLite read of 100 rows", floor, "lower", t["reconnect"], sized,
            f"p99 {rec['p99_ms']:.1f} ms")
        if largest:
            fl["scan"] = scan
            add("recovery", f"serve start -> listening, {size:,} events + checkpoint", server.startup_seconds, "s",
                "python start + import of daemon and web app", fl["import_s"], "lower", t["recovery"], sized)
        replay = served.replay_rate(home)
        axes["journal"].append({"events": built["events"], "reconnect_p50_ms": rec["p50_ms"],
                                "reconnect_p99_ms": rec["p99_ms"], "startup_s": server.startup_seconds,
                                "replay_per_s": replay["events_per_s"], "scan_per_s": scan["rows_per_s"],
                                "build_s": built["seconds"]})
        if largest:
            add("recovery", f"replay --check, {size:,} events", replay["events_per_s"], "/s",
                "raw SQLite scan of events", scan["rows_per_s"], "higher", t["replay"], sized)
    finally:
        home.stop()
        shutil.rmtree(home.tmp, ignore_errors=True)


def scale(tmp: Path, s: dict[str, Any], mode: str, fl: dict[str, Any], add: Any) -> None:
    t = TARGETS
    home = Home(tmp)
    try:
        built = journals.build(home, events=s["scale_commands"] * 4, sessions=s["scale_sessions"])
        server = home.serve()
        token = server.login()
        adapter = served.start_adapter(home, server, s["live"], deltas=2.0 * s["live"], stream_sessions=s["live"],
                                       stream_seconds=s["scale_stream_seconds"])
        adapter.wait_line(served.STREAMED, timeout=300)
        drained_s = served.wait_quiet(server, token)
        memory = server.child.memory()
        idle_cpu = served.idle(server, s["idle_seconds"])["cpu_percent"]
        sized = (f"{s['scale_sessions']:,} sessions, {s['live']} live, {built['commands']:,} commands"
                 + ("" if mode == "full" else f" ({mode})"))
        add("scale", "resident memory (peak)", memory["hwm_mb"], "MB", "RSS of serve on an empty home",
            fl["serve_idle_rss_mb"], "lower", t["rss"], sized,
            f"now {memory['rss_mb']:.0f} MB; start-up {server.startup_seconds:.1f} s")
        add("scale", "idle CPU", idle_cpu, "%", "idle CPU of the bare hypercorn app",
            max(fl["echo_idle_cpu_percent"], 0.01), "lower", t["idle_cpu"], sized,
            f"over {s['idle_seconds']:.0f} s with the adapter attached, once the journal head stood still "
            f"(it took {drained_s:.1f} s after the adapter's last delta)")
        adapter.stop()
        server.stop()
    finally:
        home.stop()


def table(results: dict[str, Any]) -> str:
    rows = [("scenario", "figure", "value", "floor", "ratio", "target", "met", "size")]
    for f in results["figures"]:
        target = "" if f["target"] is None else (">= " if f["better"] == "higher" else "<= ") + f"{f['target']:g}"
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        ratio = f"{f['ratio']:.2f}x" if f["better"] == "lower" else f"{f['ratio']:.0%}"
        rows.append((f["scenario"], f["name"], f"{f['value']:,.2f} {f['unit']}",
                     f"{f['floor']:,.2f} ({f['floor_name']})", ratio, target, met, f["size"]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    group.add_argument("--tiny", action="store_true", help="seconds; for the smoke test")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, homes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (floors always run): {','.join(SECTIONS)}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override one size of the mode, e.g. --set 'journals=[1000000]' (see SIZES)")
    args = parser.parse_args()
    only = frozenset(part.strip() for part in args.only.split(",") if part.strip())
    if only - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(only - set(SECTIONS)))}; known: {', '.join(SECTIONS)}")
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in SIZES["full"]:
            parser.error(f"--set wants KEY=JSON with KEY one of {', '.join(SIZES['full'])}; got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError as error:
            parser.error(f"--set {key}: not JSON: {error}")
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    tmp = Path(tempfile.mkdtemp(prefix="patchbay-bench-"))
    say = Progress()
    say(f"mode {mode}; working in {tmp}")
    try:
        results = run(mode, tmp, say, only, overrides)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    results.update({"mode": mode, "sections": sorted(only), "overrides": overrides, "machine": machine(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "seconds": time.perf_counter() - say.begin})
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(f"\nresults written to {args.out} ({mode}, {results['seconds']:.0f} s)")
    for error in results["errors"]:
        print(f"FAILED {error['section']}: {error['error']}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
