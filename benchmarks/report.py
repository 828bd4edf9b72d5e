"""The side-by-side tables, the targets of issues 4 and 11, and the machine-readable JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .timing import Cell


@dataclass
class Workload:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    cells: dict[str, Cell]
    load_average: list[float] = field(default_factory=list)  # when it ended: 1, 5, 15 minutes


@dataclass(frozen=True)
class Target:
    """``ours`` against ``against``: a speedup at least, a slowdown at most, or a value below.

    A speedup is how many times less time (or more throughput) ``ours`` takes; a slowdown, how many
    times the time of ``against`` it takes (0.25 = a quarter of it).
    """

    workload: str
    against: str
    kind: str  # "speedup" | "slowdown" | "below"
    threshold: float
    ours: str = "openrag"

    def describe(self, label: str, unit: str) -> str:
        if self.kind == "below":
            return f"< {self.threshold:g} {unit}"
        if self.kind == "slowdown":
            return f"<= {self.threshold:g}x {label}"
        if self.threshold == 1:
            return f"faster than {label}"
        return f">= {self.threshold:g}x {label}"


def _t(workload: str, against: str, threshold: float, kind: str = "speedup", ours: str = "openrag") -> Target:
    return Target(workload, against, kind, threshold, ours)


def _growth(workload: str, threshold: float) -> Target:
    """Issue 11: ten times the history costs at most ``threshold`` times the time."""
    return _t(f"growth_{workload}", "openrag", threshold, "slowdown", ours="openrag_large")


# Issues 4 and 11; the pairings listed are judged, the other cells are shown for information.
TARGETS = (
    _t("create_step", "builtin", 1.5), _t("create_step", "raw", 1.3, "slowdown"),
    _t("create_step", "sqlalchemy", 1),
    _t("chat_turn", "builtin", 2), _t("chat_turn", "sqlalchemy", 1),
    _t("update_step", "builtin", 1), _t("update_step", "sqlalchemy", 1),
    _t("get_thread", "builtin", 2), _t("get_thread", "sqlalchemy", 1),
    _t("get_user", "builtin", 1), _t("get_user", "sqlalchemy", 1),
    _t("list_first", "builtin", 5), _t("list_first", "sqlalchemy", 50),
    _t("list_deep", "builtin", 10), _t("list_deep", "sqlalchemy", 50),
    _t("list_search", "builtin", 10), _t("list_search", "sqlalchemy", 50),
    _t("list_feedback", "builtin", 1), _t("list_feedback", "sqlalchemy", 50),
    _t("sessions_p50", "builtin", 1), _t("sessions_p50", "sqlalchemy", 1),
    _t("sessions_p99", "builtin", 0.25, "slowdown"), _t("sessions_p99", "sqlalchemy", 1),
    _t("upload_rate", "aioboto3", 0.8), _t("upload_rate", "builtin", 1),
    _t("upload_memory", "", 64, "below"),
    _growth("get_thread", 1.5), _growth("list_first", 1.5), _growth("list_deep", 1.5),
    _growth("list_search", 3),
)  # fmt: skip


@dataclass
class Verdict:
    workload: str
    against: str
    target: str
    ratio: float | None
    met: bool | None
    reason: str = ""


def judge(target: Target, workload: Workload, labels: dict[str, str]) -> Verdict:
    ours = workload.cells.get(target.ours)
    text = target.describe(labels.get(target.against, target.against), workload.unit)
    if ours is None or ours.value is None:
        return Verdict(workload.key, target.against, text, None, False, "this package fails")
    if target.kind == "below":
        return Verdict(workload.key, "", text, None, ours.value < target.threshold)
    other = workload.cells.get(target.against)
    if other is None:
        return Verdict(workload.key, target.against, text, None, None, "not measured")
    if other.value is None:
        return Verdict(workload.key, target.against, text, None, None, f"{labels[target.against]} fails")
    speedup = ours.value / other.value if workload.higher_is_better else other.value / ours.value
    if target.kind == "slowdown":
        slowdown = 1 / speedup
        return Verdict(workload.key, target.against, text, slowdown, slowdown <= target.threshold)
    return Verdict(workload.key, target.against, text, speedup, speedup >= target.threshold and speedup > 0)


def verdicts(workloads: list[Workload], labels: dict[str, str]) -> list[Verdict]:
    by_key = {w.key: w for w in workloads}
    return [judge(t, by_key[t.workload], labels) for t in TARGETS if t.workload in by_key]


def _value(cell: Cell | None, unit: str, notes: list[str]) -> str:
    if cell is None:
        return ""
    if cell.value is None:
        return f"**{cell.failure}**"
    digits = 2 if cell.value < 10 else 1 if cell.value < 100 else 0
    text = f"{cell.value:.{digits}f} {unit}"
    if cell.note:
        notes.append(cell.note)
        text += f" [{len(notes)}]"
    return text


def _met(verdict: Verdict) -> str:
    if verdict.met is None:
        return f"n/a ({verdict.reason})"
    return "yes" if verdict.met else "**NO**"


def _ratio(verdict: Verdict) -> str:
    return "" if verdict.ratio is None else f"{verdict.ratio:.2f}x"


def table(workloads: list[Workload], labels: dict[str, str]) -> str:
    """Markdown: a workload's values on its first row, then one row per target."""
    notes: list[str] = []
    head = ["workload", *(labels[n] for n in ("openrag", "builtin", "sqlalchemy")),
            "reference (raw asyncpg / plain aioboto3)", "ratio", "target", "met?"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in workloads:
        cells = workload.cells
        values = [
            f"{workload.title} ({'higher' if workload.higher_is_better else 'lower'} is better)",
            *(_value(cells.get(name), workload.unit, notes) for name in ("openrag", "builtin", "sqlalchemy")),
            _value(cells.get("raw") or cells.get("aioboto3"), workload.unit, notes),
        ]
        judged = verdicts([workload], labels)
        if not judged:
            lines.append("| " + " | ".join([*values, "", "", ""]) + " |")
        for index, verdict in enumerate(judged):
            row = values if index == 0 else ["", "", "", "", ""]
            lines.append("| " + " | ".join([*row, _ratio(verdict), verdict.target, _met(verdict)]) + " |")
    lines += ["", *(f"[{i}] {note}" for i, note in enumerate(notes, 1))]
    return "\n".join(lines)


def growth_table(workloads: list[Workload], labels: dict[str, str], scales: tuple[str, str]) -> str:
    """Markdown: this package on the default history and on one ten times larger, with the ratio."""
    notes: list[str] = []
    head = ["this package", *scales, "ratio", "target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in workloads:
        values = [_value(workload.cells.get(n), workload.unit, notes) for n in ("openrag", "openrag_large")]
        judged = verdicts([workload], labels) or [Verdict(workload.key, "", "", None, None, "no target")]
        for verdict in judged:
            met = "" if verdict.reason == "no target" else _met(verdict)
            lines.append(
                "| " + " | ".join([workload.title, *values, _ratio(verdict), verdict.target, met]) + " |"
            )
    lines += ["", *(f"[{i}] {note}" for i, note in enumerate(notes, 1))]
    return "\n".join(lines)


def summary(workloads: list[Workload], labels: dict[str, str], others: list[str] | None = None) -> str:
    """Every missed target: the tables' verdicts, then ``others`` (lines from other reports)."""
    missed = [
        f"{v.workload}: {v.target}, measured {_ratio(v) or v.reason or 'over the limit'}"
        for v in verdicts(workloads, labels)
        if v.met is False
    ] + (others or [])
    if not missed:
        return "Every target holds."
    return "Targets MISSED:\n" + "\n".join(f"- {line}" for line in missed)


def machine(postgres_version: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text().split() if Path("/proc/meminfo").exists() else ["", "0"]
    packages = (
        "chainlit-openrag-datalayer",
        "chainlit",
        "sqlalchemy",
        "asyncpg",
        "aioboto3",
        "boto3",
        "moto",
    )
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "packages": {name: version(name) for name in packages},
    }


def write_json(
    path: Path, workloads: list[Workload], labels: dict[str, str], context: dict[str, Any]
) -> None:
    document = {
        **context,
        "workloads": [asdict(w) for w in workloads],
        "targets": [asdict(v) for v in verdicts(workloads, labels)],
        "all_targets_met": all(v.met is not False for v in verdicts(workloads, labels)),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def header(info: dict[str, Any], mode: str, load: dict[str, list[float]]) -> str:
    return (
        f"Machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gib']} GiB; "
        f"PostgreSQL {info['postgresql']}; Python {info['python']}; "
        f"chainlit {info['packages']['chainlit']}; mode: {mode}; "
        f"load average {load['start'][0]:.1f} at start, {load['end'][0]:.1f} at the end"
    )
