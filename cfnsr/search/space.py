"""The search space: Hydra's sweep syntax (``choice``, ``interval``, ``range``, ``tag(log, ...)``) as Optuna
distributions.

``hydra.sweeper.params`` and the command line use the syntax of Hydra's sweepers, so the settings of the former
hydra-optuna-sweeper keep their meaning: ``choice(a, b)`` is categorical, ``interval(lo, hi)`` a float range
(``tag(int, interval(lo, hi))`` an int range), ``range(start, stop[, step])`` an int (or float) range with its step, stop excluded
as in Python's ``range``, and the tag ``log`` samples on a log scale. Anything else is a fixed value that every
trial gets as it was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from cfnsr.search.study import SearchError


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override (``key=choice(...)`` etc.)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    key = override.get_key_element()
    log = "log" in (getattr(value, "tags", None) or set())
    if isinstance(value, ChoiceSweep):
        if log:
            raise SearchError(f"{key}: tag(log, ...) needs an interval or a range, not a choice")
        return CategoricalDistribution(list(value.list))
    if isinstance(value, IntervalSweep):
        lo, hi = value.start, value.end  # Hydra's parser makes both ends floats: tag(int, ...) asks for ints
        if "int" in (value.tags or set()):
            return IntDistribution(int(lo), int(hi), log=log)
        return FloatDistribution(float(lo), float(hi), log=log)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if log:
            raise SearchError(f"{key}: tag(log, range(...)) is not supported (a log scale has no fixed step); "
                              f"use tag(log, interval(lo, hi))")
        if all(isinstance(v, int) for v in (start, stop, step)):
            return IntDistribution(start, stop - 1 if step > 0 else stop + 1, step=abs(step))
        n = int((stop - start) / step)
        return FloatDistribution(float(start), float(start + (n - 1) * step), step=float(step))
    raise SearchError(f"{override.input_line}: a search accepts choice(...), interval(...), range(...) and "
                      f"tag(log, ...) sweeps, or a fixed value")


def parse_space(params: dict[str, Any], arguments: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """(name -> distribution, fixed overrides) from ``hydra.sweeper.params`` and the command-line arguments.

    A command-line argument replaces a ``params`` entry of the same key: ``optimizer.lr=1e-3`` fixes a searched
    key, ``fusion.model.num_layers=choice(2,4)`` searches one.
    """
    parser = OverridesParser.create()
    lines = {str(k): f"{k}={v}" for k, v in params.items()}
    for o in parser.parse_overrides(list(arguments)):
        lines[o.get_key_element()] = o.input_line
    space: dict[str, Any] = {}
    fixed: list[str] = []
    for key, line in lines.items():
        (o,) = parser.parse_overrides([line])
        if o.is_sweep_override():
            space[key] = distribution(o)
        else:
            fixed.append(o.input_line)
    return space, fixed


def override_value(value: Any) -> str:
    """A sampled value as an override's value: Hydra parses it back to the same type."""
    if isinstance(value, str):  # quoted unless a plain word, so "1e-3" or "a b" stays a string
        plain = value.isidentifier() and value.lower() not in ("true", "false", "null", "nan", "inf")
        return value if plain else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
