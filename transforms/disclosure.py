"""Disclosure control for published counts of people (SPEC 8): a transform at the report layer.

The marts keep true counts; a report asks this module which of the figures it is about
to publish must be shown as ``[c]``. Pure pandas and numpy, no Excel.

The model. A report publishes several tables of counts that are all sums of the same
*atoms*: one row of ``counts`` each (for the commissioner workbook an atom is the number
of participants of one organisation x cohort x profession x status). Each
``CountTable`` groups the atoms by some of their columns, and each group is one published
cell; the tables are therefore linked (a headline total, a row's headcount and a growth
chart's bar may all contain the same atom).

- Primary suppression: every published cell whose value is 1 to 4 (``LOW``..``HIGH``).
- Secondary suppression, by certificate. For each primary cell the algorithm finds a small
  integer *perturbation* of the atoms (move one person between two atoms, a 2 x 2
  rectangle of such moves, or one person more) such that the atoms plus or minus the
  perturbation are still non-negative, every listed row keeps at least one person
  (``present_by``), and the cell's value changes. Every published cell the perturbation
  changes is suppressed too. Among the candidates it picks the cheapest: cells already
  suppressed cost nothing, then small cells of weakly weighted tables (headline totals are
  weighted heavily, so they go last). Where some candidate suppresses nothing new, any
  such one leaves the same cells suppressed as the cheapest would, and the search takes
  the first it meets (often one already chosen for another cell).

The guarantee. For every suppressed cell there are two sets of atoms, both consistent with
everything published (each shown cell's value, non-negativity, integer counts, and every
listed row having at least one person), in which that cell takes different values. So no
suppressed value can be recovered exactly from the shown cells and totals, whatever
combination of rows, columns and tables is used. (Suppressing more cells only removes
constraints, so a certificate stays valid as the suppression grows.) The perturbation for
each primary cell is kept in ``Suppression.certificates`` and re-checked by ``audit``.

Rates are computed from the true counts and suppressed whenever a count they are made
from is suppressed (``suppress_rate``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("qi.disclosure")

LOW, HIGH = 1, 4  # counts of 1 to 4 people are suppressed (SPEC 8)
ONE_SIDED_PENALTY = 0.5  # prefer perturbations that can move a value both up and down
ZIGZAG_NEIGHBOURS = 8  # rows tried as the far end of a three-row move
BOUND_SLACK = 1e-9  # (a lower bound of a cost, summed in another order, may exceed it by a rounding)


@dataclass(frozen=True)
class CountTable:
    """One published table: the sum of the atoms' counts over each group of ``by``.

    ``weight`` is what suppressing one of its cells costs, relative to other tables (a
    headline total should cost far more than a cell deep inside a breakdown).
    """

    name: str
    by: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class Certificate:
    """Why one primary cell cannot be recovered: a perturbation of the atoms.

    ``atoms`` and ``coefficients``: atom positions in ``counts`` and +1/-1 each.
    ``directions``: which of counts + perturbation (+1) and counts - perturbation (-1)
    are valid alternatives (non-negative, every listed row still present).
    """

    table: str
    cell: int
    atoms: tuple[int, ...]
    coefficients: tuple[int, ...]
    directions: tuple[int, ...]


@dataclass
class Suppression:
    """The result: each table's cells with ``count``, ``primary`` and ``suppressed``."""

    tables: dict[str, pd.DataFrame]
    certificates: list[Certificate] = field(default_factory=list)


def is_primary(values: pd.Series | np.ndarray) -> np.ndarray:
    """Counts of ``LOW`` to ``HIGH`` people: the cells that must not be shown."""
    v = np.asarray(values, dtype="int64")
    return (v >= LOW) & (v <= HIGH)


class _Problem:
    """Atoms, published cells and their links, as integer arrays."""

    def __init__(self, counts: pd.DataFrame, tables: Sequence[CountTable], value: str,
                 row: Sequence[str], column: str, present_by: Sequence[str] | None):
        self.x = counts[value].to_numpy(dtype="int64")
        if (self.x < 0).any():
            raise ValueError("counts must be non-negative")
        self.n = len(self.x)
        self.tables = list(tables)
        self.frames: list[pd.DataFrame] = []
        # cell_of[t][i]: the global id of the cell of table t that contains atom i
        self.cell_of = np.zeros((len(self.tables), self.n), dtype="int32")
        values, weights, owners, locals_ = [], [], [], []
        self.offsets: list[int] = []
        offset = 0
        for t, spec in enumerate(self.tables):
            if spec.by:
                codes, keys = _group_codes(counts, list(spec.by))
            else:
                codes, keys = np.zeros(self.n, dtype="int64"), pd.DataFrame(index=[0])
            sums = np.bincount(codes, weights=self.x, minlength=len(keys)).astype("int64")
            self.cell_of[t] = codes + offset
            self.offsets.append(offset)
            frame = keys.reset_index(drop=True)
            frame["count"] = sums
            self.frames.append(frame)
            values.append(sums)
            # Cost of suppressing a cell: its table's weight, more for bigger values.
            weights.append(spec.weight * (1.0 + np.log1p(sums)))
            owners.append(np.full(len(keys), t))
            locals_.append(np.arange(len(keys)))
            offset += len(keys)
        # the table with the most cells: its cost alone bounds a candidate's cost cheaply
        self.finest = self.cell_of[[int(np.argmax([len(f) for f in self.frames]))]] if self.tables else self.cell_of
        # (each atom a cell of its own in that table, as the participation table's are)
        self.finest_is_atoms = bool(self.tables) and max(len(f) for f in self.frames) == self.n
        self.value = np.concatenate(values) if values else np.zeros(0, dtype="int64")
        self.weight = np.concatenate(weights) if weights else np.zeros(0)
        self.owner = np.concatenate(owners) if owners else np.zeros(0, dtype="int64")
        self.local = np.concatenate(locals_) if locals_ else np.zeros(0, dtype="int64")
        self.suppressed = is_primary(self.value)
        self.primary = self.suppressed.copy()
        self.members: list[np.ndarray] = []
        for t in range(len(self.tables)):
            index = _index(self.cell_of[t])
            cells = range(self.offsets[t], self.offsets[t] + len(self.frames[t]))
            self.members += [index.get(k, np.zeros(0, dtype="int64")) for k in cells]
        self.row = _group_codes(counts, list(row))[0] if row else np.arange(self.n)
        self.col = _group_codes(counts, [column])[0] if column else np.zeros(self.n, dtype="int64")
        if present_by:
            self.group = _group_codes(counts, list(present_by))[0]
            self.group_total = np.bincount(self.group, weights=self.x).astype("int64")
        else:
            self.group = np.zeros(self.n, dtype="int64")
            self.group_total = np.full(1, np.iinfo("int64").max // 4)
        self.by_row = _index(self.row)
        self.by_col = _index(self.col)
        self.grid = np.full((int(self.row.max(initial=-1)) + 1, int(self.col.max(initial=-1)) + 1), -1, dtype="int64")
        self.grid[self.row, self.col] = np.arange(self.n)
        if (self.grid >= 0).sum() != self.n:
            raise ValueError("counts must have one atom per row and column of the grid")
        # Suppressing a new cell costs at least its table's weight, so a candidate that costs
        # less than the lightest table's weight suppresses nothing new (see ``protect``).
        self._nothing_new_below = min((t.weight for t in self.tables), default=0.0)
        # cell -> a perturbation chosen before that changes it and suppresses nothing new now
        self._reusable: dict[int, tuple[np.ndarray, np.ndarray, bool, bool]] = {}

    # -- candidates ---------------------------------------------------------------------

    def candidate_blocks(self, k: int, best: Callable[[], float] | None = None,
                         allowed: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, ...]]:
        """Perturbations that may change cell ``k``, in blocks, in a fixed order: for each atom of
        ``k``, its one- and two-atom moves, then its rectangles with each other atom of its row.
        Each block is (atoms, coefficients), both (n, 4) and -1 padded, the valid directions
        (plus, minus) as ``_directions`` gives them, and each candidate's cost over the finest
        table (a lower bound of its cost, ``cost_bound`` without the one-sided penalty; None
        while nothing has been found, when nothing is pruned).

        ``best``: the best cost found so far, asked before each block; a candidate whose
        bound exceeds it cannot win and is left out before its directions are worked out.
        ``allowed``: the atoms a candidate may move (True for each), when only those may be
        (the others are left out before the blocks are made: the same blocks, less work)."""
        best = best or (lambda: np.inf)
        inside = np.zeros(self.n, dtype=bool)
        inside[self.members[k]] = True
        for a in self.members[k][self.x[self.members[k]] >= 1]:
            if allowed is not None and not allowed[a]:
                continue  # (every candidate below moves a)
            r, c = self.row[a], self.col[a]
            # one person more (or fewer) in atom a, or moved between a and another atom of its row or column
            partners = np.concatenate([self.by_row[r], self.by_col[c]])
            partners = np.sort(partners[~inside[partners]])  # (the row and the column share only a, inside)
            if allowed is not None:
                partners = partners[allowed[partners]]
            block = np.full((len(partners) + 1, 4), -1)
            block[:, 0], block[1:, 1] = a, partners
            coefs = np.zeros((len(partners) + 1, 4), dtype="int64")
            coefs[:, 0], coefs[1:, 1] = 1, -1
            yield from self._keep(k, inside, block, coefs, best())
            # 2 x 2 rectangles: a and f up, b and e down (row and column totals unchanged)
            others = self.by_col[c]
            others = others[self.row[others] != r]
            if not len(others):
                continue
            # (one block for all of them: the same candidates in the same order, fewer numpy calls)
            bs = self.by_row[r][self.by_row[r] != a]
            if allowed is not None:
                bs, others = bs[allowed[bs]], others[allowed[others]]
            f = self.grid[self.row[others][None, :], self.col[bs][:, None]]  # (b, other)
            ok = f >= 0
            if allowed is not None:
                ok &= allowed[np.maximum(f, 0)]
            if ok.any():
                which_b, which_e = np.nonzero(ok)  # b-major, as a loop over b then the others would go
                m = len(which_b)
                block = np.stack([np.full(m, a), bs[which_b], others[which_e], f[which_b, which_e]], axis=1)
                yield from self._keep(k, inside, block, np.tile(np.array([1, -1, -1, 1], dtype="int64"), (m, 1)),
                                      best())

    def _keep(self, k: int, inside: np.ndarray, atoms: np.ndarray, coefs: np.ndarray,
              best: float) -> Iterator[tuple[np.ndarray, ...]]:
        """The candidates that change the cell ``k`` (``inside``: its atoms), may cost no more
        than ``best`` and can move in at least one direction (as ``candidate_blocks`` yields them)."""
        atoms = atoms.astype("int64")
        valid = atoms >= 0
        safe = np.where(valid, atoms, 0)
        coefs = np.where(valid, coefs, 0)
        floor = None  # (not needed while nothing has been found: nothing is pruned)
        if np.isfinite(best):  # (first: the most selective, once something has been found)
            floor = self._cost(k, safe, coefs, valid, self.finest)[0]
            keep = floor <= best + BOUND_SLACK
            if not keep.all():
                atoms, safe, coefs, valid, floor = atoms[keep], safe[keep], coefs[keep], valid[keep], floor[keep]
        changes = np.zeros(len(atoms), dtype="int64")
        for i in range(atoms.shape[1]):  # (numpy reduces a short last axis slowly)
            changes += np.where(inside[safe[:, i]], coefs[:, i], 0)
        keep = changes != 0
        if not keep.all():
            atoms, safe, coefs, valid = atoms[keep], safe[keep], coefs[keep], valid[keep]
            floor = None if floor is None else floor[keep]
        if not len(atoms):
            return
        plus, minus = self._directions(safe, coefs, valid)
        keep = plus | minus
        if keep.any():
            yield atoms[keep], coefs[keep], plus[keep], minus[keep], None if floor is None else floor[keep]

    def zigzags(self, k: int, neighbours: int = ZIGZAG_NEIGHBOURS) -> tuple[np.ndarray, ...]:
        """Moves through three rows that keep every column total: +a(r, s) -b(r2, s) +c(r2, s2) -e(r1, s2).

        Row r gains one person and row r1 loses one; row r2 only changes status. The far
        end r1 is chosen among the rows from which moving one person into r would cost
        least (its cells already suppressed, or shared with r); r2 is any row. Tried when
        the simpler moves would suppress something new.
        """
        atoms: list[np.ndarray] = []
        inside = np.zeros(self.n, dtype=bool)
        inside[self.members[k]] = True
        for a in self.members[k][self.x[self.members[k]] >= 1]:
            r, c = self.row[a], self.col[a]
            b = self.grid[:, c]
            # what moving one person from each row's atom of column c into a would suppress
            donors = b[(b >= 0) & (self.row[np.maximum(b, 0)] != r)]
            if not len(donors):
                continue
            probe = np.full((len(donors), 4), -1)
            probe[:, 0], probe[:, 1] = a, donors
            _, cost, _, _ = self.evaluate(k, probe, np.tile([1, -1, 0, 0], (len(donors), 1)))
            near = self.row[donors[np.argsort(cost, kind="stable")[:neighbours]]]
            for c2 in range(self.grid.shape[1]):
                if c2 == c:
                    continue
                cc = self.grid[:, c2]
                middle = np.flatnonzero((b >= 0) & (cc >= 0))
                middle = middle[(middle != r) & (self.x[b[middle]] >= 1)]
                for r1 in near:
                    e = self.grid[r1, c2]
                    if e < 0 or self.x[e] < 1:
                        continue
                    rows = middle[middle != r1]
                    if len(rows):
                        ends = np.full(len(rows), a), np.full(len(rows), e)
                        atoms.append(np.stack([ends[0], b[rows], cc[rows], ends[1]], axis=1))
        if not atoms:
            return (np.zeros((0, 4), dtype="int64"), np.zeros((0, 4), dtype="int64"), np.zeros(0, dtype=bool),
                    np.zeros(0, dtype=bool))
        atoms_ = np.concatenate(atoms).astype("int64")
        coefs = np.tile([1, -1, 1, -1], (len(atoms_), 1))
        changes = np.where(inside[atoms_], coefs, 0).sum(axis=1) != 0
        plus, minus = self._directions(atoms_, coefs, np.ones_like(atoms_, dtype=bool))
        keep = changes & (plus | minus)
        return atoms_[keep], coefs[keep], plus[keep], minus[keep]

    # -- evaluation ---------------------------------------------------------------------

    def _directions(self, safe: np.ndarray, coefs: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether counts + d and counts - d are valid: non-negative, every listed row kept."""
        w = _width(valid)
        # position-major (w, m): each position's values contiguous
        safe, coefs, valid = safe[:, :w].T.copy(), coefs[:, :w].T.copy(), valid[:, :w].T.copy()
        empty = self.x[safe] < 1
        group = self.group[safe]
        gdelta, _ = _net_change(np.where(valid, group, -1), coefs)
        gtotal = self.group_total[group]
        plus = ~_any_position(((coefs < 0) & empty) | (valid & (gtotal + gdelta < 1)))
        minus = ~_any_position(((coefs > 0) & empty) | (valid & (gtotal - gdelta < 1)))
        return plus, minus

    def evaluate(self, k: int, atoms: np.ndarray, coefs: np.ndarray,
                 directions: tuple[np.ndarray, np.ndarray] | None = None):
        """For each candidate: does it change k, its cost, its valid directions (plus, minus).

        ``directions``: (plus, minus) when already known (``candidate_blocks``). The cells
        a chosen candidate changes are ``changed_cells``."""
        valid = atoms >= 0
        safe = np.where(valid, atoms, 0)
        coefs = np.where(valid, coefs, 0)
        plus, minus = directions if directions is not None else self._directions(safe, coefs, valid)
        cost, hit, cells = self._cost(k, safe, coefs, valid, self.cell_of)
        own = self.owner[k]
        changes_k = _any_position(hit[:, own] & (cells[:, own] == k))
        cost += np.where(plus & minus, 0.0, ONE_SIDED_PENALTY)
        usable = changes_k & (plus | minus)
        return usable, cost, plus, minus

    def cost_bound(self, k: int, atoms: np.ndarray, coefs: np.ndarray, plus: np.ndarray,
                   minus: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
        """A lower bound of each candidate's cost (as ``evaluate`` gives it): the cost of the
        cells of the finest table alone, a fraction of the work (``floor``: that cost, when known)."""
        if floor is None:
            valid = atoms >= 0
            floor, _, _ = self._cost(k, np.where(valid, atoms, 0), np.where(valid, coefs, 0), valid, self.finest)
        return floor + np.where(plus & minus, 0.0, ONE_SIDED_PENALTY)

    def _cost(self, k: int, safe: np.ndarray, coefs: np.ndarray, valid: np.ndarray,
              cell_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What suppressing the cells (of the tables in ``cell_of``) each candidate changes
        would cost now; which positions hit a changed cell, and the cells, both (w, T, m)."""
        # Positions past the last valid one in every candidate are padding: leave them out
        # (one- and two-atom moves use two of the four).
        w = _width(valid)
        # Every table at once, position-major: cells (w, T, m), -1 at padding. A cell counts
        # once, at the first position in it, with the net change of the cell.
        safe, coefs, valid = safe[:, :w].T, coefs[:, :w].T.copy(), valid[:, :w].T.copy()
        cells = cell_of[:, safe].transpose(1, 0, 2)
        cells = np.where(valid[:, None], cells, -1)
        delta, first = _net_change(cells, coefs[:, None])
        hit = first & (delta != 0) & valid[:, None]
        # Nothing, for a cell suppressed already, or for k.
        free = np.where(self.suppressed, 0.0, self.weight)
        free[k] = 0.0
        return (free[cells] * hit).sum(axis=(0, 1)), hit, cells  # (a padding cell is never hit)

    def _costs_below(self, k: int, atoms: np.ndarray, coefs: np.ndarray, plus: np.ndarray, minus: np.ndarray,
                     best: float, floor: np.ndarray | None = None) -> np.ndarray:
        """Each candidate's cost (infinite if it cannot be used), for those whose cost may not
        exceed ``best``; the others cannot win and get infinity without being evaluated."""
        cost = np.full(len(atoms), np.inf)
        keep = ((self.cost_bound(k, atoms, coefs, plus, minus, floor) <= best + BOUND_SLACK) if np.isfinite(best)
                else None)
        if keep is None or keep.all():
            usable, found, _, _ = self.evaluate(k, atoms, coefs, (plus, minus))
            return np.where(usable, found, np.inf)
        if keep.any():
            usable, found, _, _ = self.evaluate(k, atoms[keep], coefs[keep], (plus[keep], minus[keep]))
            cost[keep] = np.where(usable, found, np.inf)
        return cost

    def changed_cells(self, atoms: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """The published cells one perturbation changes (its atoms, -1 padded, and coefficients)."""
        net: dict[int, int] = {}
        for a, c in zip(atoms.tolist(), coefs.tolist(), strict=True):
            if a >= 0:
                for cell in self.cell_of[:, a].tolist():
                    net[cell] = net.get(cell, 0) + c
        return np.array(sorted(cell for cell, change in net.items() if change), dtype="int64")

    def protect(self, k: int) -> Certificate:
        """A certificate for cell ``k``; the cells its perturbation changes are suppressed.

        Which cells end up suppressed is what picking the cheapest candidate gives
        (``cheapest``). But when some perturbation changes ``k`` and suppresses nothing
        new, the cheapest one suppresses nothing new either (``_nothing_new_below``), so any
        such perturbation will do: one chosen before for another cell, if it changes ``k``
        too, else the first found (about half the primary cells of a commissioner workbook
        are changed by an earlier certificate, and most of the rest have such a candidate).
        Only which certificate is kept can differ from ``cheapest``'s."""
        zigzags = functools.cache(lambda: self.zigzags(k))  # (both searches may want them)
        choice = self._reusable.get(k)
        if choice is None and self._nothing_new_below > 0:
            choice = self.nothing_new(k, zigzags)
        if choice is None:
            choice = self.cheapest(k, zigzags)
        if choice is None:  # cannot happen: one person more in an atom of k always works
            raise AssertionError(f"no perturbation protects cell {k}")
        atoms, coefs, plus, minus = choice
        changed = self.changed_cells(atoms, coefs)
        self.suppressed[changed] = True
        if (0.0 if plus and minus else ONE_SIDED_PENALTY) < self._nothing_new_below:
            # From now on it costs nothing new for every cell it changes.
            for cell in changed.tolist():
                self._reusable.setdefault(cell, choice)
        keep = atoms >= 0
        directions = tuple(d for d, ok in ((1, plus), (-1, minus)) if ok)
        return Certificate(self.tables[self.owner[k]].name, int(self.local[k]),
                           tuple(int(a) for a in atoms[keep]), tuple(int(c) for c in coefs[keep]), directions)

    def cheapest(self, k: int, zigzags: Callable[[], tuple[np.ndarray, ...]] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, bool, bool] | None:
        """The cheapest candidate for cell ``k``, the first of equals: (atoms, coefficients, plus, minus).

        ``zigzags``: ``self.zigzags(k)``, when already worked out."""
        # Nothing costs less than 0, so the candidates are taken a block at a time and the
        # search stops at the first block holding a free one; and a candidate whose cost over
        # the finest table alone exceeds the best found so far cannot win, so it is not
        # evaluated in full. (The same choice as evaluating them all, found sooner.)
        found: list[tuple] = []
        best = np.inf
        for atoms, coefs, plus, minus, floor in self.candidate_blocks(k, lambda: best):
            cost = self._costs_below(k, atoms, coefs, plus, minus, best, floor)
            found.append((atoms, coefs, cost, plus, minus))
            best = min(best, float(cost.min(initial=np.inf)))
            if best <= 0:
                break
        if best > 0:  # something new would be suppressed: look further
            atoms, coefs, plus, minus = zigzags() if zigzags is not None else self.zigzags(k)
            if len(atoms):
                found.append((atoms, coefs, self._costs_below(k, atoms, coefs, plus, minus, best), plus, minus))
        if not found:
            return None
        atoms, coefs, cost, plus, minus = (np.concatenate([f[i] for f in found]) for i in range(5))
        if not np.isfinite(cost.min()):
            return None
        chosen = int(np.argmin(cost))  # first of equals: candidates are in a fixed order
        return _chosen(atoms, coefs, plus, minus, chosen)

    def nothing_new(self, k: int, zigzags: Callable[[], tuple[np.ndarray, ...]]
                    ) -> tuple[np.ndarray, np.ndarray, bool, bool] | None:
        """The first candidate found for cell ``k`` that suppresses nothing new, or None.

        Such a candidate changes no cell of the finest table that is not suppressed yet, so
        every other is left out before its directions are worked out (``candidate_blocks``
        with a best cost of 0); it costs 0, or the one-sided penalty. When each atom is a
        cell of the finest table, those are the candidates that move suppressed atoms only
        (the atoms of a candidate are distinct), and the others are not even made."""
        allowed = self.suppressed[self.finest[0]] if self.finest_is_atoms else None
        for atoms, coefs, plus, minus, floor in self.candidate_blocks(k, lambda: 0.0, allowed):
            if (choice := self._first_below(k, atoms, coefs, plus, minus, floor)) is not None:
                return choice
        atoms, coefs, plus, minus = zigzags()  # (as ``cheapest`` would look at them next)
        return self._first_below(k, atoms, coefs, plus, minus, None) if len(atoms) else None

    def _first_below(self, k: int, atoms: np.ndarray, coefs: np.ndarray, plus: np.ndarray, minus: np.ndarray,
                     floor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool, bool] | None:
        cost = self._costs_below(k, atoms, coefs, plus, minus, self._nothing_new_below, floor)
        i = int(np.argmin(cost))
        return _chosen(atoms, coefs, plus, minus, i) if cost[i] < self._nothing_new_below else None


def _chosen(atoms: np.ndarray, coefs: np.ndarray, plus: np.ndarray, minus: np.ndarray,
            i: int) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Candidate ``i`` of a block, as ``protect`` keeps it: copies, not views that would keep
    the whole block's arrays alive (tens of megabytes over an all-organisation problem)."""
    return atoms[i].copy(), coefs[i].copy(), bool(plus[i]), bool(minus[i])


def _group_codes(frame: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Dense group numbers in sorted key order (missing values last), and the keys (sorted)."""
    codes = np.zeros(len(frame), dtype="int64")
    for column in by:  # (each column's sorted codes, combined in key order and made dense again)
        column_codes, uniques = pd.factorize(frame[column], sort=True, use_na_sentinel=False)
        codes = np.unique(codes * len(uniques) + column_codes, return_inverse=True)[1].reshape(-1)
    _, first, codes = np.unique(codes, return_index=True, return_inverse=True)
    return codes.reshape(-1).astype("int64"), frame[by].iloc[first].reset_index(drop=True)


def _index(codes: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(codes, kind="stable")
    out: dict[int, np.ndarray] = {}
    for code in np.unique(codes):
        out[int(code)] = order[codes[order] == code]
    return out


def _width(valid: np.ndarray) -> int:
    """How many leading positions hold an atom in some candidate (the rest are padding)."""
    for w in range(valid.shape[1], 1, -1):
        if valid[:, w - 1].any():
            return w
    return 1


def _any_position(flags: np.ndarray) -> np.ndarray:
    """flags.any(axis=0) for a few positions (first axis), pairwise."""
    out = flags[0].copy()
    for i in range(1, len(flags)):
        out |= flags[i]
    return out


def _net_change(ids: np.ndarray, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position (first axis), the sum of the coefficients of the positions with the
    same id, and whether it is the first position with that id. ``coefs`` broadcasts to ``ids``.

    Pairwise by hand: each pair is compared once (numpy reduces a short axis slowly)."""
    w = len(ids)
    delta = np.empty(ids.shape, dtype="int8")  # (coefficients are -1, 0 or 1: a sum of four fits)
    delta[...] = coefs
    delta_of = coefs.astype("int8")  # (as given, before the sums)
    first = np.ones(ids.shape, dtype=bool)
    for i in range(w):
        for j in range(i + 1, w):
            same = ids[i] == ids[j]
            delta[i] += same * delta_of[j]
            delta[j] += same * delta_of[i]
            first[j] &= ~same
    return delta, first


def suppress_counts(counts: pd.DataFrame, tables: Sequence[CountTable], *, value: str = "count",
                    row: Sequence[str], column: str, present_by: Sequence[str] | None = None,
                    memo: Path | None = None) -> Suppression:
    """Decide which cells of the linked ``tables`` to suppress.

    ``counts``: one row per atom, with the columns every table groups by and ``value``
    (true, non-negative integer counts; zero atoms included). ``row`` and ``column`` lay
    the atoms out in a grid (for the commissioner workbook: a row per organisation x
    cohort x profession, a column per status) in which the 2 x 2 moves are sought.
    ``present_by``: the grouping whose groups are listed only when they have at least one
    person (so an alternative must keep each at one or more).

    Returns, per table name, its cells (the ``by`` columns in sorted order, ``count``,
    ``primary``, ``suppressed``) and a certificate per primary cell.

    ``memo``: a folder of solved problems, by a hash of everything the answer depends on.
    A problem solved before (the same counts, tables and layout: a period whose returns
    did not change since the last night) is answered from it; the answer is audited like a
    new one, and solved afresh if the audit finds anything.
    """
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"table names must be unique: {names}")
    counts = counts.reset_index(drop=True)
    problem = _Problem(counts, tables, value, row, column, present_by)
    key = _problem_key(counts, tables, value, row, column, present_by) if memo is not None else ""
    remembered = _recall(memo, key, problem) if memo is not None else None
    if remembered is not None:
        result = _result(problem, tables, *remembered)
        if not audit(counts, tables, result, value=value, present_by=present_by):
            return result
        log.warning("a remembered suppression failed its audit: solving the problem again")
    certificates = [problem.protect(k) for k in np.flatnonzero(problem.primary)]
    result = _result(problem, tables, problem.suppressed, certificates)
    problems = audit(counts, tables, result, value=value, present_by=present_by)
    if problems:  # the construction guarantees this never happens; refuse to publish if it does
        raise AssertionError("disclosure audit failed: " + "; ".join(problems[:5]))
    if memo is not None:
        _remember(memo, key, problem.suppressed, certificates)
    return result


def _result(problem: _Problem, tables: Sequence[CountTable], suppressed: np.ndarray,
            certificates: list[Certificate]) -> Suppression:
    out = {}
    for t, spec in enumerate(tables):
        frame = problem.frames[t].copy()
        span = slice(problem.offsets[t], problem.offsets[t] + len(frame))
        frame["primary"] = problem.primary[span]
        frame["suppressed"] = suppressed[span] | problem.primary[span]
        out[spec.name] = frame
    return Suppression(out, certificates)


# --- The memo of solved problems -----------------------------------------------------------------

# Bump when a change here changes which cells a problem suppresses: older answers are not used.
MEMO_VERSION = "1"
MEMO_KEEP_DAYS = 45  # answers not used for this long are deleted


def _problem_key(counts: pd.DataFrame, tables: Sequence[CountTable], value: str, row: Sequence[str], column: str,
                 present_by: Sequence[str] | None) -> str:
    spec = json.dumps([MEMO_VERSION, LOW, HIGH, ONE_SIDED_PENALTY, ZIGZAG_NEIGHBOURS, list(counts.columns),
                       [[t.name, list(t.by), t.weight] for t in tables], value, list(row), column,
                       list(present_by) if present_by else None], default=str)
    digest = hashlib.sha256(spec.encode())
    digest.update(pd.util.hash_pandas_object(counts, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:40]


def _recall(memo: Path, key: str, problem: _Problem) -> tuple[np.ndarray, list[Certificate]] | None:
    path = memo / f"{key}.json"
    try:
        stored = json.loads(path.read_text())
        suppressed = np.zeros(len(problem.value), dtype=bool)
        suppressed[np.asarray(stored["suppressed"], dtype="int64")] = True
        certificates = [Certificate(t, int(c), tuple(a), tuple(k), tuple(d)) for t, c, a, k, d in stored["certificates"]]
        os.utime(path)  # (kept while used)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        log.warning("a remembered suppression is unreadable: solving the problem again")
        return None
    return suppressed, certificates


def _remember(memo: Path, key: str, suppressed: np.ndarray, certificates: list[Certificate]) -> None:
    from transforms.storage import atomic_write_bytes

    try:
        memo.mkdir(parents=True, exist_ok=True)
        body = {"suppressed": np.flatnonzero(suppressed).tolist(),
                "certificates": [[c.table, c.cell, list(c.atoms), list(c.coefficients), list(c.directions)]
                                 for c in certificates]}
        atomic_write_bytes(memo / f"{key}.json", json.dumps(body, separators=(",", ":")).encode())
        cutoff = time.time() - MEMO_KEEP_DAYS * 86400
        for old in memo.glob("*.json"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
    except OSError as exc:  # a cache: the workbook is right without it
        log.warning("could not remember a suppression: %s", exc)


def audit(counts: pd.DataFrame, tables: Sequence[CountTable], result: Suppression, *, value: str = "count",
          present_by: Sequence[str] | None = None) -> list[str]:
    """Re-check every certificate against the final suppression; return the problems found.

    A certificate holds when its perturbation changes its own cell, leaves every shown cell
    of every table unchanged, and gives a valid alternative in each direction it claims.
    """
    counts = counts.reset_index(drop=True)
    x = counts[value].to_numpy(dtype="int64")
    problems = []
    primaries = {(name, int(i)) for name, frame in result.tables.items()
                 for i in np.flatnonzero(frame["primary"].to_numpy())}
    covered = {(c.table, c.cell) for c in result.certificates}
    for name, i in sorted(primaries - covered):
        problems.append(f"{name} cell {i} has no certificate")
    groups = _group_codes(counts, list(present_by))[0] if present_by else None
    codes: dict[str, np.ndarray] = {}
    for spec in tables:
        frame = result.tables[spec.name]
        if spec.by:
            table_codes, keys = _group_codes(counts, list(spec.by))
            if not keys.equals(frame[list(spec.by)].reset_index(drop=True)):
                problems.append(f"{spec.name}: cells not in key order")
                continue
            codes[spec.name] = table_codes
        else:
            codes[spec.name] = np.zeros(len(counts), dtype="int64")
    # Every certificate at once: its net change per atom, per listed row and per cell, as
    # (certificate, position) pairs (a certificate moves at most four atoms).
    certs = result.certificates
    n = len(counts)
    found: dict[int, list[str]] = {}

    def flag(which: np.ndarray, text: str) -> None:
        for c in np.unique(which):
            cert = certs[c]
            found.setdefault(int(c), []).append(f"{cert.table} cell {cert.cell}: {text}")

    def net(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        unique, inverse = np.unique(keys, return_inverse=True)
        return unique, np.bincount(inverse, weights=weights, minlength=len(unique)).astype("int64")

    which = np.repeat(np.arange(len(certs)), [len(c.atoms) for c in certs]).astype("int64")
    atoms = np.fromiter((a for c in certs for a in c.atoms), dtype="int64", count=len(which))
    coefs = np.fromiter((k for c in certs for k in c.coefficients), dtype="int64", count=len(which))
    pairs, d = net(which * n + atoms, coefs)
    cert_of, atom_of = pairs // n, pairs % n
    flag(np.flatnonzero([not c.directions for c in certs]), "no valid direction")
    if groups is not None:
        group_total = np.bincount(groups, weights=x).astype("int64")
        n_groups = len(group_total)
        gpairs, gd = net(cert_of * n_groups + groups[atom_of], d)
    for direction in (1, -1):
        claims = np.array([direction in c.directions for c in certs], dtype=bool)
        flag(cert_of[claims[cert_of] & (x[atom_of] + direction * d < 0)], "negative alternative")
        if groups is not None:
            # untouched listed rows keep their total: they matter only if already empty
            bad = gpairs[(group_total[gpairs % n_groups] + direction * gd < 1)] // n_groups
            if (group_total < 1).any():
                bad = np.arange(len(certs))
            flag(bad[claims[bad]], "alternative empties a listed row")
    for spec in tables:
        if spec.name not in codes:
            continue
        suppressed = result.tables[spec.name]["suppressed"].to_numpy(dtype=bool)
        n_cells = max(len(suppressed), 1)
        cpairs, cd = net(cert_of * n_cells + codes[spec.name][atom_of], d)
        changed = cd != 0
        flag(cpairs[changed & ~suppressed[cpairs % n_cells]] // n_cells, f"changes a shown cell of {spec.name}")
        own = np.array([c.table == spec.name for c in certs], dtype=bool)
        moved = set((cpairs[changed]).tolist())
        flag(np.array([i for i in np.flatnonzero(own) if i * n_cells + certs[i].cell not in moved], dtype="int64"),
             "does not change the cell")
    for c in sorted(found):
        problems += found[c]
    return problems


def suppress_rate(numerator: pd.Series, denominator: pd.Series, hidden: pd.Series | np.ndarray,
                  *, scale: float = 100.0) -> pd.DataFrame:
    """A rate from the true counts, suppressed when any count it is made from is suppressed.

    ``hidden``: True where the numerator or the denominator is suppressed. Returns
    ``rate`` (NaN where the denominator is 0) and ``suppressed``.
    """
    num = numerator.to_numpy(dtype="float64")
    den = denominator.to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(den > 0, scale * num / den, np.nan)
    return pd.DataFrame({"rate": rate, "suppressed": np.asarray(hidden, dtype=bool)}, index=numerator.index)


__all__ = ["HIGH", "LOW", "Certificate", "CountTable", "Suppression", "audit", "is_primary", "suppress_counts",
           "suppress_rate"]
