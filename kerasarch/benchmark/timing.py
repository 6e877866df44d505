"""Interleaved timing and its arithmetic: rates per round, ratios per round, median and spread.

Contenders run one after another inside each round, the order rotated from round to round,
so that a drift in the machine's speed (another process, a frequency change) reaches every
contender alike. A ratio is taken within a round (two measurements seconds apart) and only
then summarized over rounds: the median, and the spread as min / max and the interquartile
range.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Spread:
    """A figure measured over rounds: its median and spread."""

    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarizes per-round values.

        Args:
            values: One value per round (at least one).

        Returns:
            Their median, min, max and quartiles (linear interpolation, numpy's default).

        Raises:
            ValueError: No values, or a value that is not finite.
        """
        array = np.asarray(values, dtype=np.float64)
        if array.size == 0 or not np.all(np.isfinite(array)):
            raise ValueError(f"Invalid value for argument `values`: {list(values)!r}. "
                             "Expected one finite number per round.")
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        return cls(float(median), float(array.min()), float(array.max()), float(q1), float(q3),
                   int(array.size))

    def format(self, digits: int = 2, suffix: str = "") -> str:
        """`"1.23x [1.10-1.31]"`: the median, then min-max over the rounds."""
        return (f"{self.median:.{digits}f}{suffix} [{self.minimum:.{digits}f}-"
                f"{self.maximum:.{digits}f}]")

    def as_dict(self) -> dict[str, float]:
        """The figures as plain JSON data."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Contender:
    """One thing timed: `run()` does `work` units of work (images, FLOPs) per call.

    A contender timed elsewhere (the PyTorch worker, another process) gives `measure`
    instead of `run`: `measure(seconds)` works for about that long and returns `(calls,
    seconds)` as it measured them; `interleave` then neither calibrates nor times it.
    """

    name: str
    run: Callable[[], object] | None
    work: float
    kind: str = "inference"
    measure: Callable[[float], tuple[int, float]] | None = None

    def __post_init__(self):
        if (self.run is None) == (self.measure is None):
            raise ValueError(f"Contender {self.name!r}: give exactly one of `run` and `measure`.")


def calibrate(run: Callable[[], object], target_seconds: float, warmup: int = 2,
              clock: Callable[[], float] = time.perf_counter) -> int:
    """Calls per timed round so that a round of `run` lasts about `target_seconds`.

    The first calls (tracing, allocation, one-time compilation) are not timed.
    """
    for _ in range(warmup):
        run()
    start = clock()
    run()
    once = max(clock() - start, 1e-6)
    return max(1, math.ceil(target_seconds / once))


def interleave(
    contenders: Sequence[Contender],
    rounds: int,
    target_seconds: float = 0.5,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Times contenders round by round, in a rotated order; returns work per second per round.

    Args:
        contenders: What to time.
        rounds: Rounds (each contender is timed once per round).
        target_seconds: About how long each contender runs in each round.
        clock: The clock (injectable for tests).
        progress: Called after each contender's turn (a progress bar's update).

    Returns:
        `{name: [work per second in round 1, 2, ...]}`.

    Raises:
        ValueError: Fewer than one round, or two contenders with one name.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"Invalid value for argument `rounds`: {rounds!r}. Expected an integer >= 1.")
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ValueError(f"Contender names must differ; got {names}.")
    calls = {c.name: calibrate(c.run, target_seconds, clock=clock) for c in contenders if c.run}
    rates: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % max(1, len(contenders))
        for contender in [*contenders[shift:], *contenders[:shift]]:
            if contender.measure is not None:
                done, seconds = contender.measure(target_seconds)
            else:
                done, start = calls[contender.name], clock()
                for _ in range(done):
                    contender.run()
                seconds = clock() - start
            rates[contender.name].append(contender.work * done / max(seconds, 1e-12))
            if progress is not None:
                progress()
    return rates


def ratios(rates: Mapping[str, Sequence[float]], reference: str,
           names: Iterable[str] | None = None) -> dict[str, Spread]:
    """Each contender's rate over the reference's, round by round, then summarized.

    Args:
        rates: `interleave`'s result.
        reference: The name every rate is divided by.
        names: The contenders to report; default all but the reference.

    Returns:
        `{name: Spread of the per-round ratios}`.

    Raises:
        ValueError: An unknown reference, or round counts that differ.
    """
    if reference not in rates:
        raise ValueError(f"Invalid value for argument `reference`: {reference!r}. "
                         f"Expected one of {sorted(rates)}.")
    base = np.asarray(rates[reference], np.float64)
    result = {}
    for name in names if names is not None else [n for n in rates if n != reference]:
        values = np.asarray(rates[name], np.float64)
        if values.shape != base.shape:
            raise ValueError(f"{name!r} has {values.size} rounds, {reference!r} {base.size}.")
        result[name] = Spread.of(values / base)
    return result
