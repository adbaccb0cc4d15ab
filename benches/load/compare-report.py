#!/usr/bin/env python3
"""Reads the meshd-load JSON lines that benches/load/compare-istiod.sh left in WORK
(istiod.json, meshd.json) and prints both servers' figures side by side with the ratio
istiod / meshd (above 1: meshd needs less, or is faster), as a Markdown table.

usage: compare-report.py WORK PROXIES"""
import json
import os
import sys


def figures(report, proxies):
    server = report.get("server") or {}
    before = server.get("before") or {}
    synced = server.get("synced") or {}
    after = server.get("after") or {}
    change = report.get("change") or {}
    delay = change.get("delay") or {}
    f = {}
    f["proxies synced"] = report.get("synced")
    f["cold start, all synced (s)"] = (
        report["cold_start_ms"] / 1e3 if report.get("cold_start_ms") is not None else None
    )
    f["server CPU for the cold start (s)"] = report.get("server_cpu_s_cold_start")
    f["server RSS before proxies (MiB)"] = before.get("rss_kib", 0) / 1024 or None
    f["server RSS, all synced (MiB)"] = synced.get("rss_kib", 0) / 1024 or None
    if before and synced:
        f["memory per connected proxy (KiB)"] = (
            synced["rss_kib"] - before["rss_kib"]
        ) / proxies
    f["bytes per proxy at cold start (mean)"] = report["cold_bytes_per_proxy"]["mean"]
    f["change received by"] = change.get("received")
    f["change fan-out p50 (ms)"] = delay.get("p50_ms")
    f["change fan-out p99 (ms)"] = delay.get("p99_ms")
    f["change fan-out max (ms)"] = delay.get("max_ms")
    f["server CPU for the change (s)"] = change.get("server_cpu_s")
    f["bytes per proxy for the change (mean)"] = (change.get("bytes_per_proxy") or {}).get(
        "mean"
    )
    f["server RSS after the change (MiB)"] = after.get("rss_kib", 0) / 1024 or None
    return f


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.3f}"
    return f"{v:,}"


def main():
    work, proxies = sys.argv[1], int(sys.argv[2])
    reports = {}
    for name in ("istiod", "meshd"):
        path = os.path.join(work, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                reports[name] = figures(json.load(f), proxies)
    if not reports:
        raise SystemExit(f"compare-report: no istiod.json or meshd.json in {work}")
    rows = list(next(iter(reports.values())).keys())
    print(f"\n{proxies} proxies\n")
    print("| figure | istiod | meshd | istiod / meshd |")
    print("|---|---|---|---|")
    for row in rows:
        i = reports.get("istiod", {}).get(row)
        m = reports.get("meshd", {}).get(row)
        ratio = "-"
        if isinstance(i, (int, float)) and isinstance(m, (int, float)) and m:
            ratio = f"{i / m:,.1f}x"
        print(f"| {row} | {fmt(i)} | {fmt(m)} | {ratio} |")


main()
