"""Multiple-choice knapsack with several budgets: Lagrangian relaxation, then greedy moves.

Pick one item per group to minimise the summed objective subject to `sum cost[:, k] <=
budget[k]` for every resource k. The search:

1. Relaxation: for multipliers `lam >= 0`, every group independently takes the item that
   minimises `objective + sum_k lam[k] * cost[k] / scale[k]` (scale: the resource's range,
   so multipliers are comparable). Coordinate bisection sets each multiplier to the smallest
   value that satisfies its own budget with the others fixed, in rounds until they settle.
2. Repair: while a budget is exceeded, take the single change that removes the most
   (scaled) excess per unit of objective added.
3. Improvement: while a single change, or a change in two groups at once, lowers the
   objective and keeps every budget, take the best one.

Steps 2-3 run from two starts, the relaxed choice just inside the budgets and the one just
outside (the multipliers' lower bisection ends), which straddle the duality gap; the better
result is kept. Items beaten by another item of their group on the objective and on every
cost are dropped first (no optimum needs them). Groups are padded into one `[groups, items]`
array, so each step is a few numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BISECTION_STEPS = 50
ROUNDS = 12
MAX_MOVES = 1000
MAX_PAIR_MOVES = 100
PAIR_LIMIT = 2500  # items in all; above it only single changes are tried
PAIR_CHUNK = 256
TOLERANCE = 1e-9


@dataclass
class Solution:
    """The chosen item index per group, and how the search got there."""

    choice: list[int]
    feasible: bool
    multipliers: list[float]
    moves: dict = field(default_factory=dict)


def _dominated(objective: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Items another item of their group beats or ties on the objective and on every cost
    (strictly on one, or equal everywhere and earlier): no optimum needs them."""
    obj_le = objective[:, None, :] <= objective[:, :, None]  # [g, i, j]: j no worse than i
    cost_le = (costs[:, None, :, :] <= costs[:, :, None, :]).all(axis=-1)
    equal = (objective[:, None, :] == objective[:, :, None]) & (
        costs[:, None, :, :] == costs[:, :, None, :]
    ).all(axis=-1)
    width = objective.shape[1]
    earlier = np.arange(width)[None, :] < np.arange(width)[:, None]  # [i, j]: j before i
    beats = obj_le & cost_le & (~equal | earlier[None]) & np.isfinite(objective)[:, None, :]
    return beats.any(axis=2)


class _Problem:
    def __init__(self, objective: list[np.ndarray], costs: list[np.ndarray], budgets):
        self.budgets = np.asarray(budgets, dtype=np.float64)
        k = len(self.budgets)
        sizes = [len(o) for o in objective]
        self.groups, width = len(sizes), max(sizes)
        self.objective = np.full((self.groups, width), np.inf)
        self.costs = np.zeros((self.groups, width, k))
        for g, (o, c) in enumerate(zip(objective, costs)):
            self.objective[g, : len(o)] = o
            self.costs[g, : len(o)] = np.asarray(c, dtype=np.float64).reshape(len(o), k)
        self.objective[_dominated(self.objective, self.costs)] = np.inf
        real = np.isfinite(self.objective)
        high = np.where(real[..., None], self.costs, -np.inf).max(axis=1)
        low = np.where(real[..., None], self.costs, np.inf).min(axis=1)
        spans = (high - low).sum(axis=0)
        self.scales = np.where(spans > 0, spans, 1.0)
        self.rows = np.arange(self.groups)

    def pick(self, lam: np.ndarray) -> np.ndarray:
        return np.argmin(self.objective + self.costs @ (lam / self.scales), axis=1)

    def totals(self, choice: np.ndarray) -> np.ndarray:
        return self.costs[self.rows, choice].sum(axis=0)

    def value(self, choice: np.ndarray) -> float:
        return float(self.objective[self.rows, choice].sum())

    def fits(self, totals: np.ndarray) -> np.ndarray:
        return totals <= self.budgets + TOLERANCE * self.scales

    def excess(self, totals: np.ndarray) -> np.ndarray:
        return (np.maximum(totals - self.budgets, 0.0) / self.scales).sum(axis=-1)

    def deltas(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`[groups, items]` objective changes and `[groups, items, k]` cost changes."""
        d_obj = self.objective - self.objective[self.rows, choice][:, None]
        d_cost = self.costs - self.costs[self.rows, choice][:, None, :]
        return d_obj, d_cost


def _bisect(problem: _Problem, lam: np.ndarray, k: int) -> tuple[float, float]:
    """The multiplier `k` just satisfying budget `k` (the others as in `lam`), and the
    largest value found that does not."""

    def ok(value):
        trial = lam.copy()
        trial[k] = value
        return problem.fits(problem.totals(problem.pick(trial)))[k]

    if ok(0.0):
        return 0.0, 0.0
    low, high = 0.0, max(lam[k], 1e-6)
    while not ok(high):
        low, high = high, high * 4.0
        if high > 1e15:
            return high, high
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if ok(middle) else (middle, high)
        if high - low <= 1e-9 * high:
            break
    return high, low


def _relax(problem: _Problem) -> tuple[np.ndarray, np.ndarray]:
    lam = np.zeros(len(problem.budgets))
    outside = lam.copy()
    for _ in range(ROUNDS):
        before = lam.copy()
        for k in range(len(lam)):
            lam[k], outside[k] = _bisect(problem, lam, k)
        if np.allclose(lam, before, rtol=1e-6, atol=1e-12):
            break
    return lam, outside


def _repair(problem: _Problem, choice: np.ndarray) -> int:
    steps = 0
    while steps < MAX_MOVES:
        totals = problem.totals(choice)
        excess = float(problem.excess(totals))
        if excess <= 0.0:
            break
        d_obj, d_cost = problem.deltas(choice)
        gain = excess - problem.excess(totals + d_cost)
        useful = (gain > 1e-12) & np.isfinite(d_obj)
        if not useful.any():
            break
        score = np.where(useful, np.maximum(d_obj, 0.0) / np.where(useful, gain, 1.0), np.inf)
        g, i = np.unravel_index(int(np.argmin(score)), score.shape)
        choice[g] = i
        steps += 1
    return steps


def _best_single(problem, d_obj, d_cost, totals):
    ok = problem.fits(totals + d_cost).all(axis=-1) & (d_obj < -1e-12)
    if not ok.any():
        return None
    g, i = np.unravel_index(int(np.argmin(np.where(ok, d_obj, np.inf))), d_obj.shape)
    return [(g, i)]


def _best_pair(problem, d_obj, d_cost, totals):
    group = np.broadcast_to(problem.rows[:, None], d_obj.shape)
    worse = np.flatnonzero(np.isfinite(d_obj) & (d_obj > 0))  # frees room ...
    better = np.flatnonzero(d_obj < 0)  # ... for a change that lowers the objective
    if not len(worse) or not len(better):
        return None
    flat_obj, flat_cost, flat_group = (
        d_obj.ravel(),
        d_cost.reshape(-1, d_cost.shape[-1]),
        group.ravel(),
    )
    best, found = -1e-12, None
    for start in range(0, len(worse), PAIR_CHUNK):
        a = worse[start : start + PAIR_CHUNK, None]
        gain = flat_obj[a] + flat_obj[better][None, :]
        fits = problem.fits(totals + flat_cost[a] + flat_cost[better][None, :]).all(axis=-1)
        gain = np.where(fits & (flat_group[a] != flat_group[better][None, :]), gain, np.inf)
        i, j = np.unravel_index(int(np.argmin(gain)), gain.shape)
        if gain[i, j] < best:
            best, found = float(gain[i, j]), (int(a[i, 0]), int(better[j]))
    if found is None:
        return None
    return [np.unravel_index(index, d_obj.shape) for index in found]


def _improve(problem: _Problem, choice: np.ndarray) -> dict:
    counts = {"single": 0, "pair": 0}
    pairs = int(np.isfinite(problem.objective).sum()) <= PAIR_LIMIT
    while counts["single"] + counts["pair"] < MAX_MOVES:
        pairs = pairs and counts["pair"] < MAX_PAIR_MOVES
        totals = problem.totals(choice)
        d_obj, d_cost = problem.deltas(choice)
        changes = _best_single(problem, d_obj, d_cost, totals)
        kind = "single"
        if changes is None and pairs:
            changes, kind = _best_pair(problem, d_obj, d_cost, totals), "pair"
        if changes is None:
            break
        for g, i in changes:
            choice[g] = i
        counts[kind] += 1
    return counts


def solve(objective: list[np.ndarray], costs: list[np.ndarray], budgets) -> Solution:
    """Minimises `sum objective[g][choice[g]]` subject to `sum costs[g][choice[g]] <= budgets`.

    Args:
        objective: Per group, one finite value per item.
        costs: Per group, an `[items, resources]` array.
        budgets: One limit per resource.

    Returns:
        A `Solution`; `feasible` False when no budget-keeping choice was found (the
        choice is then the repair's best effort).

    Example:
        >>> from tfcompress.planning.knapsack import solve
        >>> loss = [np.array([0.0, 1.0, 3.0]), np.array([0.0, 0.5, 4.0])]
        >>> size = [np.array([[10.0], [5.0], [1.0]]), np.array([[10.0], [4.0], [1.0]])]
        >>> solve(loss, size, [10.0]).choice
        [1, 1]
    """
    if not objective:  # nothing to choose: the budgets hold or they do not
        fits = bool(np.all(np.asarray(budgets, dtype=np.float64) >= 0))
        return Solution([], fits, [0.0] * len(budgets))
    problem = _Problem(objective, costs, budgets)
    lam, outside = _relax(problem)
    best = None
    for start in (lam, outside):
        choice = problem.pick(start)
        counts = {"repair": _repair(problem, choice), "single": 0, "pair": 0}
        feasible = bool(problem.fits(problem.totals(choice)).all())
        if feasible:
            counts.update(_improve(problem, choice))
        key = (
            not feasible,
            problem.value(choice) if feasible else float(problem.excess(problem.totals(choice))),
        )
        if best is None or key < best[0]:
            best = (key, choice, feasible, counts)
    _, choice, feasible, counts = best
    return Solution([int(i) for i in choice], feasible, [float(v) for v in lam], counts)
