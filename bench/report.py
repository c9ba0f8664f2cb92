"""bench/results/latest.md from latest.json: one table per part, its machine and command."""

from __future__ import annotations

from typing import Any


def _machine(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    dirty = m.get("recorder_files_modified", 0)
    tree = f"commit {m.get('commit')}" + (
        f" + {dirty} uncommitted file(s) in recorder/ and api/" if dirty else ""
    )
    return (
        f"{m.get('cpu')} x{m.get('cores')}, {m.get('memory_gib')} GiB, {m.get('os')}, "
        f"kernel {m.get('kernel')}, Python {m.get('python')}, {m.get('gstreamer')}, "
        f"{m.get('ffmpeg')}; {tree}; "
        f"load average at start {' '.join(m.get('loadavg_at_start', []))}"
    )


def _head(title: str, result: dict[str, Any]) -> list[str]:
    return [
        f"## {title}",
        "",
        f"`{result.get('command')}` — {result.get('started')}, {result.get('elapsed_s')} s"
        + (" (quick smoke run)" if result.get("quick") else ""),
        "",
        f"Machine: {_machine(result)}",
        "",
    ]


def offline_md(result: dict[str, Any]) -> list[str]:
    lines = _head("Offline: CPU per RTP packet, `convert` vs GStreamer", result)
    lines += [
        "Inputs: "
        + "; ".join(
            f"{name} {facts['seconds']} s, {facts['packets']} packets, {facts['kbit_s']} kbit/s"
            for name, facts in result["inputs"].items()
        ),
        "",
        "| pair | ours µs/pkt | GStreamer µs/pkt | ratio (marginal) | ratio (whole process) "
        "| target ≤ 1.5x |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for ratio in result["ratios"]:
        verdict = "met" if ratio["meets_target"] else f"missed, {ratio['missed_by']}"
        lines.append(
            f"| {ratio['pair']} | {ratio['ours_us']} | {ratio['gstreamer_us']} | "
            f"{ratio['ratio_marginal']}x | {ratio['ratio_total']}x | {verdict} |"
        )
    lines += [
        "",
        "| tool | pair | median CPU s (min-max) | start-up CPU s | µs/pkt marginal "
        "| µs/pkt whole | wall s | max RSS MB | output |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['tool']} | {row['pair']} | {row['cpu_s_median']} "
            f"({min(row['cpu_s_runs'])}-{max(row['cpu_s_runs'])}) | "
            f"{row['startup_cpu_s_median']} | {row['us_per_packet_marginal']} | "
            f"{row['us_per_packet_total']} | {row['wall_s_median']} | {row['max_rss_mb']} | "
            f"{row['output']} |"
        )
    lines += ["", "Pipelines:", ""]
    lines += [f"- {row['tool']} {row['pair']}: `{row['pipeline']}`" for row in result["rows"]]
    lines.append("")
    return lines


def profile_md(result: dict[str, Any]) -> list[str]:
    lines = _head("Profile of `convert` (cProfile, own time per packet)", result)
    for run in result["runs"]:
        lines += [
            f"**{run['capture']}** ({run['packets']} packets, {run['profiled_cpu_s']} s CPU "
            "under cProfile, which roughly doubles it)",
            "",
            "| function | own µs/pkt | cumulative µs/pkt | calls/pkt | share |",
            "| --- | --- | --- | --- | --- |",
        ]
        for entry in run["top"]:
            lines.append(
                f"| `{entry['function']}` | {entry['own_us_per_packet']} | "
                f"{entry['cumulative_us_per_packet']} | {entry['calls_per_packet']} | "
                f"{entry['share'] * 100:.1f}% |"
            )
        lines.append("")
    return lines


def stop_md(result: dict[str, Any]) -> list[str]:
    lines = _head("Stop latency: stop request → archive file and its JSON in archive_dir", result)
    lines += [
        f"Media fed faster than real time through the API: {result.get('feeding')}",
        "",
        "| media | packets | fed in s | lost | file MB, s | stop → files (median) | runs "
        "| stop → archive.available | stop response | after os.sync() | target ≤ 200 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        verdict = "met" if row["meets_target"] else f"missed by {row['missed_by_ms']} ms"
        lines.append(
            f"| {row['label']} | {row['packets_sent']} | {row['feed_s']} | {row['lost']} | "
            f"{row['file_mb']}, {row.get('file_duration_s')} | {row['latency_ms_median']} ms | "
            f"{', '.join(str(v) for v in row['latency_ms_runs'])} | "
            f"{row.get('event_ms_median')} ms | {row['response_ms_median']} ms | "
            f"{row.get('latency_ms_after_sync')} ms | {verdict} |"
        )
    lines.append("")
    return lines


_SENDERS = {"c": "C (`bench/sender.c`, sendmmsg)", "python": "Python (one sendto per packet)"}


def live_md(result: dict[str, Any]) -> list[str]:
    lines = _head("Live: N concurrent VP8+Opus connections in real time into `serve`", result)
    lines += [
        f"{result.get('method')}",
        "",
        f"`serve --workers`: {result.get('workers', 'auto')}. Recorder CPU and RSS are those "
        "of serve and its worker processes together; per process: the API process first.",
        "",
        # Results from before bench/sender.c have no "sender": they were the Python loop's.
        f"Load generator: **{_SENDERS.get(result.get('sender', 'python'))}**"
        + (f" ({result['sender_note']})" if result.get("sender_note") else "")
        + ". Sender CPU: % of a core and µs per packet sent.",
        "",
        "| N | pkts/s | sent | recorded | socket drops | RcvbufErrors Δ | recorder lost "
        "| recorder CPU | per process | µs/pkt | RSS MB | RSS/conn MB | sender CPU "
        "| sender late s | backlog s | other CPU | zero loss | clean |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        sender = f"{row['sender_cpu_pct']}%"
        if "sender_us_per_packet" in row:
            sender += f", {row['sender_us_per_packet']} µs"
        lines.append(
            f"| {row['connections']} | {row['packets_per_s']} | {row['sent']} | "
            f"{row['recorded']} | {row['socket_drops']} | {row['rcvbuf_errors']} | "
            f"{row['recorder_lost']} | "
            f"{row['recorder_cpu_pct']}% | "
            f"{' + '.join(f'{p}%' for p in row.get('process_cpu_pct', [])) or '-'} | "
            f"{row['recorder_us_per_packet']} | {row['rss_mb']} | "
            f"{row['rss_mb_per_connection']} | {sender} | "
            f"{row['sender_max_late_s']} | {row.get('drain_s')} | {row.get('other_cpu_pct')}% | "
            f"{'yes' if row['zero_loss'] else 'no'} | {'yes' if row.get('clean') else 'no'} |"
        )
    lines += [
        "",
        f"Largest clean N: **{result.get('largest_zero_loss')}** "
        f"(target ≥ 500: {result.get('target_verdict')}).",
        "",
    ]
    return lines


def soak_md(result: dict[str, Any]) -> list[str]:
    lines = _head("Soak: RSS of `serve` over a long live run", result)
    [row] = result["rows"]
    series = ", ".join(f"{t} s: {mb}" for t, mb in row["rss_series_mb"])
    minutes = (result["seconds_per_step"] - row["rss_growth_from_s"]) / 60
    growth = row["rss_growth_mb"] / row["connections"] / minutes * 1024
    lines += [
        f"{row['connections']} VP8+Opus connections for {result['seconds_per_step']:g} s: "
        f"zero loss {'yes' if row['zero_loss'] else 'no'} (sent {row['sent']}, recorded "
        f"{row['recorded']}, socket drops {row['socket_drops']}), recorder CPU "
        f"{row['recorder_cpu_pct']}% ({row['recorder_us_per_packet']} µs/packet).",
        "",
        f"RSS before the recordings {row['rss_idle_mb']} MB, with them created "
        f"{row['rss_ready_mb']} MB, at most {row['rss_mb']} MB: "
        f"**{row['rss_mb_per_connection']} MB per connection** (target ≤ 2 MB); growth from "
        f"{row['rss_growth_from_s']} s to the end {row['rss_growth_mb']} MB = "
        f"{growth:.1f} KiB per connection per minute (target: flat).",
        "",
        f"RSS MB over time: {series}",
        "",
    ]
    return lines


SECTIONS = {
    "offline": offline_md,
    "stop": stop_md,
    "live": live_md,
    "soak": soak_md,
    "profile": profile_md,
}


def markdown(latest: dict[str, Any]) -> str:
    lines = [
        "# rtp-recorder benchmark: latest results",
        "",
        "Generated by `bench/run.py` from `latest.json`; see `bench/README.md` for the method.",
        "",
    ]
    for part, render in SECTIONS.items():
        if part in latest:
            lines += render(latest[part])
    return "\n".join(lines)


def summary(part: str, result: dict[str, Any]) -> str:
    return "\n".join(SECTIONS[part](result))
