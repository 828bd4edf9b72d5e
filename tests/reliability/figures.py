"""The figures the reliability suite prints at the end: what was tried, what survived, what was lost."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# RELIABILITY_FULL=1 runs the heavy variants (200 sessions x 20 turns, more Hypothesis examples).
FULL = os.environ.get("RELIABILITY_FULL", "").strip().lower() in ("1", "true", "yes")


@dataclass
class Figures:
    """Counters filled in by the tests of this session."""

    sessions: int = 0
    turns: int = 0
    writes: int = 0
    outages: list[tuple[str, float, int]] = field(default_factory=list)  # (what, seconds, writes issued)
    inputs_tried: dict[str, int] = field(default_factory=dict)
    lost_writes: int = 0
    workers: int = 0
    shutdowns: list[tuple[str, int, float]] = field(default_factory=list)  # (set-up, writes pending, seconds)
    stalls: list[tuple[str, float, float]] = field(default_factory=list)  # (call, bound, seconds to end)

    def tried(self, what: str, count: int = 1) -> None:
        self.inputs_tried[what] = self.inputs_tried.get(what, 0) + count

    def lines(self) -> list[str]:
        inputs = sum(self.inputs_tried.values())
        lines = [
            "mode: full (RELIABILITY_FULL=1)"
            if FULL
            else "mode: light (RELIABILITY_FULL=1 runs the heavy variants)",
            f"sessions simulated: {self.sessions} ({self.turns} turns), writes issued: {self.writes}",
        ]
        for what, seconds, writes in self.outages:
            lines.append(f"outage survived: {what}, {seconds:.1f} s, {writes} writes issued during it")
        for setup, pending, seconds in self.shutdowns:
            lines.append(
                f"SIGTERM to a mounted app ({setup}): {pending} writes pending, all stored, "
                f"exit after {seconds:.1f} s"
            )
        for call, bound, seconds in self.stalls:
            ended = f"{call} ended after {seconds:.2f} s (bound {bound:g} s)"
            lines.append(f"stalled or blocked database: {ended}")
        if self.workers:
            lines.append(f"workers started at once against an empty database: {self.workers}")
        detail = ", ".join(f"{name} {count}" for name, count in sorted(self.inputs_tried.items()))
        lines.append(f"hypothesis inputs tried: {inputs}" + (f" ({detail})" if detail else ""))
        lines.append(f"lost writes: {self.lost_writes}")
        return lines


FIGURES = Figures()
