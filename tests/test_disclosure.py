"""Disclosure control (transforms.disclosure): small cells hidden, and no hidden value recoverable.

The attacker here is independent of the algorithm: it sees only what a report shows (every
cell not suppressed, in every linked table), knows how the tables add up, that counts are
non-negative integers and that every listed row has at least one person, and asks an
integer programme (scipy's HiGHS) for the smallest and largest value each suppressed cell
could take. A suppressed value is recovered when the two are equal. The property tests
generate tables with hypothesis and require every such attack to fail.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from reports.commissioner import PARTICIPATION_TABLES, RETURN_ROW_TABLES, ROW_KEY
from transforms.disclosure import CountTable, Suppression, audit, is_primary, suppress_counts, suppress_rate

STATUSES = ("active", "completed", "deferred", "enrolled", "withdrawn")


# --- The attacker ---------------------------------------------------------------------------------


def attack(counts: pd.DataFrame, tables, shown: dict[str, pd.DataFrame], present_by=None,
           value: str = "count") -> dict[tuple[str, int], tuple[float, float]]:
    """Integer min and max of every suppressed cell, from the shown cells only.

    ``counts`` supplies the structure (which atoms exist and their keys), never its values.
    """
    n = len(counts)
    rows, lo, hi, hidden = [], [], [], {}
    for spec in tables:
        frame = shown[spec.name]
        for i, cell in frame.iterrows():
            mask = np.ones(n, dtype=bool)
            for column in spec.by:
                mask &= (counts[column] == cell[column]).to_numpy()
            if cell["suppressed"]:
                hidden[(spec.name, i)] = mask.astype(float)
            else:
                rows.append(mask.astype(float))
                lo.append(float(cell[value if value in cell else "count"]))
                hi.append(float(cell[value if value in cell else "count"]))
    if present_by:
        for _, index in counts.groupby(list(present_by)).indices.items():
            mask = np.zeros(n)
            mask[index] = 1
            rows.append(mask)
            lo.append(1.0)
            hi.append(np.inf)
    constraints = [LinearConstraint(np.array(rows), lo, hi)] if rows else []
    out = {}
    for key, mask in hidden.items():
        low = milp(mask, constraints=constraints, integrality=np.ones(n), bounds=Bounds(0, np.inf))
        assert low.status == 0, low.message  # the true counts are a solution
        high = milp(-mask, constraints=constraints, integrality=np.ones(n), bounds=Bounds(0, np.inf))
        # feasible (it has the true counts) and not solved to optimality: unbounded above
        out[key] = (round(low.fun, 6), round(-high.fun, 6) if high.status == 0 else np.inf)
    return out


def recovered(counts, tables, result: Suppression, present_by=None) -> dict:
    return {k: v for k, v in attack(counts, tables, result.tables, present_by).items() if v[0] == v[1]}


# --- Small literal cases -----------------------------------------------------------------------------

GRID = (CountTable("cells", ("row", "col"), 1.0), CountTable("rows", ("row",), 2.0), CountTable("cols", ("col",), 2.0),
        CountTable("total", (), 10.0))


def grid(values: list[list[int]]) -> pd.DataFrame:
    return pd.DataFrame([{"row": f"r{i}", "col": f"c{j}", "count": v} for i, row in enumerate(values)
                         for j, v in enumerate(row)])


def test_counts_of_1_to_4_are_primary():
    assert is_primary(pd.Series([0, 1, 2, 3, 4, 5, 120])).tolist() == [False, True, True, True, True, False, False]


def test_a_lone_small_cell_gets_partners_so_its_row_and_column_hide_it():
    counts = grid([[3, 20, 31], [12, 15, 40], [18, 22, 25]])
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    cells = result.tables["cells"]
    assert cells.loc[(cells["row"] == "r0") & (cells["col"] == "c0"), "suppressed"].item()
    assert cells["suppressed"].sum() == 4  # the 2 x 2 rectangle: no total is touched
    assert not result.tables["total"]["suppressed"].any()
    assert not result.tables["rows"]["suppressed"].any() and not result.tables["cols"]["suppressed"].any()
    assert not recovered(counts, GRID, result)


def test_zeros_are_never_the_partners_that_would_pin_a_value():
    # The cheap-looking partners are zeros; with them, non-negativity would give the 3 away.
    counts = grid([[3, 0, 30], [0, 9, 12], [14, 8, 25]])
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    assert not recovered(counts, GRID, result)
    naive = Suppression({name: frame.assign(suppressed=frame["primary"] | (frame["count"] == 0) & (frame.index < 4))
                         for name, frame in result.tables.items()})
    assert recovered(counts, GRID, naive), "the attacker should break suppression that leans on zeros"


def test_the_attacker_recovers_values_from_primary_suppression_alone():
    counts = grid([[3, 20, 31], [12, 15, 40], [18, 22, 25]])
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    primary_only = Suppression({name: frame.assign(suppressed=frame["primary"]) for name, frame in result.tables.items()})
    assert recovered(counts, GRID, primary_only) == {("cells", 0): (3.0, 3.0)}


def test_a_small_total_is_protected_too():
    counts = grid([[1, 0], [2, 0]])  # everything small: the grand total 3 itself must not be recoverable
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    assert result.tables["total"]["suppressed"].item()
    assert not recovered(counts, GRID, result)


def test_every_primary_has_a_certificate_that_the_audit_checks():
    counts = grid([[3, 20, 31], [12, 2, 40], [18, 22, 1]])
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    assert audit(counts, GRID, result) == []
    assert len(result.certificates) == int(sum(f["primary"].sum() for f in result.tables.values()))
    for name, frame in result.tables.items():  # un-suppress one secondary cell: the audit must notice
        secondary = frame.index[frame["suppressed"] & ~frame["primary"]]
        if len(secondary):
            frame.loc[secondary[0], "suppressed"] = False
            break
    assert audit(counts, GRID, result)


def test_the_result_does_not_depend_on_row_order():
    counts = grid([[3, 20, 31, 2], [12, 15, 40, 9], [18, 22, 25, 4], [1, 6, 7, 8]])
    first = suppress_counts(counts, GRID, row=("row",), column="col")
    second = suppress_counts(counts.sample(frac=1, random_state=3), GRID, row=("row",), column="col")
    for name in first.tables:
        pd.testing.assert_frame_equal(first.tables[name], second.tables[name])


def test_rates_come_from_true_counts_and_are_hidden_with_them():
    rates = suppress_rate(pd.Series([3, 10, 0, 7]), pd.Series([9, 40, 0, 7]), [True, False, False, False])
    assert rates["suppressed"].tolist() == [True, False, False, False]
    assert rates["rate"].iloc[0] == pytest.approx(100 * 3 / 9)  # computed from the true value, then hidden
    assert rates["rate"].iloc[1] == 25.0 and np.isnan(rates["rate"].iloc[2]) and rates["rate"].iloc[3] == 100.0


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        suppress_counts(grid([[-1, 5]]), GRID, row=("row",), column="col")


# --- Properties ---------------------------------------------------------------------------------

ORGS = {"A": "lead trust", "B": "partner trust", "C": "partner trust", "D": "voluntary"}
COHORTS = {"C1": "2023/24", "C2": "2023/24", "C3": "2024/25"}
small_count = st.one_of(st.integers(0, 6), st.integers(0, 6), st.integers(0, 40))


@st.composite
def participation_atoms(draw) -> pd.DataFrame:
    """The commissioner workbook's atoms: organisation x cohort x profession x status counts."""
    keys = draw(st.lists(st.tuples(st.sampled_from(sorted(ORGS)), st.sampled_from(sorted(COHORTS)),
                                   st.sampled_from(["Nursing", "Social Work"])), min_size=1, max_size=7, unique=True))
    rows = []
    for org, cohort, profession in sorted(keys):
        values = draw(st.lists(small_count, min_size=5, max_size=5))
        if sum(values) == 0:
            values[draw(st.integers(0, 4))] = draw(st.integers(1, 9))
        for status, v in zip(STATUSES, values, strict=True):
            rows.append({"organisation_code": org, "cohort_code": cohort, "profession": profession, "status": status,
                         "programme_year": COHORTS[cohort], "organisation_type": ORGS[org], "count": v})
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(participation_atoms())
def test_no_suppressed_value_of_the_linked_participation_tables_can_be_recovered(counts):
    result = suppress_counts(counts, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY)
    for frame in result.tables.values():
        shown = frame.loc[~frame["suppressed"], "count"]
        assert not ((shown >= 1) & (shown <= 4)).any(), "a count of 1 to 4 is shown"
        assert (frame["suppressed"] | ~frame["primary"]).all()
    assert not recovered(counts, PARTICIPATION_TABLES, result, present_by=ROW_KEY)


@st.composite
def return_rows(draw) -> pd.DataFrame:
    orgs = draw(st.lists(st.sampled_from(["A", "B", "C", "D", "E"]), min_size=1, max_size=5, unique=True))
    rows = []
    for org in sorted(orgs):
        accepted, rejected = draw(small_count), draw(small_count)
        rows += [{"organisation_code": org, "outcome": "accepted", "count": accepted},
                 {"organisation_code": org, "outcome": "rejected", "count": rejected}]
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(return_rows())
def test_no_suppressed_row_count_of_the_data_quality_table_can_be_recovered(counts):
    result = suppress_counts(counts, RETURN_ROW_TABLES, row=("organisation_code",), column="outcome")
    for frame in result.tables.values():
        shown = frame.loc[~frame["suppressed"], "count"]
        assert not ((shown >= 1) & (shown <= 4)).any()
    assert not recovered(counts, RETURN_ROW_TABLES, result)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(small_count, min_size=2, max_size=5), min_size=2, max_size=5).filter(
    lambda rows: len({len(r) for r in rows}) == 1))
def test_no_suppressed_value_of_a_table_with_margins_can_be_recovered(values):
    counts = grid(values)
    result = suppress_counts(counts, GRID, row=("row",), column="col")
    assert not recovered(counts, GRID, result)


def test_two_atoms_in_one_grid_cell_are_refused():
    counts = pd.concat([grid([[3, 5]]), grid([[1, 0]])], ignore_index=True)
    with pytest.raises(ValueError, match="one atom per row and column"):
        suppress_counts(counts, GRID, row=("row",), column="col")


# --- The search's short cuts: the same cells suppressed as the plain greedy search -------------------


def plain_greedy(counts: pd.DataFrame, tables, *, row, column, present_by=None) -> np.ndarray:
    """Which cells the plain greedy search suppresses: the cheapest candidate (first of equals)
    for every primary cell in turn, with none of ``protect``'s short cuts."""
    from transforms.disclosure import _Problem

    problem = _Problem(counts.reset_index(drop=True), tables, "count", row, column, present_by)
    for k in np.flatnonzero(problem.primary):
        atoms, coefs, _, _ = problem.cheapest(int(k))
        problem.suppressed[problem.changed_cells(atoms, coefs)] = True
    return problem.suppressed


def suppressed_cells(result: Suppression, tables) -> np.ndarray:
    return np.concatenate([result.tables[t.name]["suppressed"].to_numpy() for t in tables])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(participation_atoms())
def test_the_short_cuts_suppress_the_cells_the_plain_greedy_search_does(counts):
    result = suppress_counts(counts, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY)
    want = plain_greedy(counts, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY)
    assert (suppressed_cells(result, PARTICIPATION_TABLES) == want).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(small_count, min_size=2, max_size=5), min_size=2, max_size=5).filter(
    lambda rows: len({len(r) for r in rows}) == 1), st.sampled_from([0.2, 0.5, 1.0, 3.0]))
def test_the_short_cuts_hold_when_a_table_is_cheaper_than_the_one_sided_penalty(values, weight):
    # With a table lighter than the penalty, a one-sided move that suppresses nothing new is
    # not always the cheapest: it may only be reused when it is (protect).
    tables = (CountTable("cells", ("row", "col"), weight), *GRID[1:])
    counts = grid(values)
    result = suppress_counts(counts, tables, row=("row",), column="col")
    assert (suppressed_cells(result, tables) == plain_greedy(counts, tables, row=("row",), column="col")).all()
    assert audit(counts, tables, result) == []


def test_the_short_cuts_on_a_region_sized_problem():
    # six regions' worth of organisations
    regions = [demo_like_atoms(seed).assign(organisation_code=lambda f, s=seed: f["organisation_code"] + str(s))
               for seed in range(6)]
    counts = pd.concat(regions, ignore_index=True)
    result = solve(counts)
    want = plain_greedy(counts, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY)
    assert (suppressed_cells(result, PARTICIPATION_TABLES) == want).all()
    primaries = int(sum(f["primary"].sum() for f in result.tables.values()))
    assert primaries > 100 and len(result.certificates) == primaries
    # About half the primary cells are certified by a perturbation chosen for an earlier one.
    certificates = {(c.atoms, c.coefficients) for c in result.certificates}
    assert len(certificates) < 0.8 * primaries


def test_the_perturbations_kept_for_reuse_do_not_hold_their_blocks():
    # (a view of a block's row would keep the whole block alive: tens of megabytes per problem)
    from transforms.disclosure import _Problem

    problem = _Problem(demo_like_atoms(seed=2), PARTICIPATION_TABLES, "count", ROW_KEY, "status", ROW_KEY)
    for k in np.flatnonzero(problem.primary):
        problem.protect(int(k))
    kept = list(problem._reusable.values())
    assert kept and all(atoms.base is None and coefs.base is None for atoms, coefs, _, _ in kept)


def test_leaving_out_unsuppressed_atoms_first_gives_the_same_free_candidates():
    # nothing_new passes candidate_blocks the atoms whose cells are suppressed: the blocks must
    # be those a best cost of 0 leaves anyway, in the same order.
    from transforms.disclosure import _Problem

    problem = _Problem(demo_like_atoms(seed=5), PARTICIPATION_TABLES, "count", ROW_KEY, "status", ROW_KEY)
    assert problem.finest_is_atoms
    compared = 0
    for k in np.flatnonzero(problem.primary):
        allowed = problem.suppressed[problem.finest[0]]
        quick = list(problem.candidate_blocks(int(k), lambda: 0.0, allowed))
        plain = list(problem.candidate_blocks(int(k), lambda: 0.0))
        assert len(quick) == len(plain)
        for a, b in zip(quick, plain, strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
            compared += len(a[0])
        problem.protect(int(k))
    assert compared > 50


# --- The memo of solved problems ------------------------------------------------------------------


def demo_like_atoms(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for org in sorted(ORGS):
        for cohort in sorted(COHORTS):
            for profession in ("Nursing", "Social Work"):
                values = rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21], size=5)
                values[0] += 1  # every listed row has someone
                rows += [{"organisation_code": org, "cohort_code": cohort, "profession": profession, "status": s,
                          "programme_year": COHORTS[cohort], "organisation_type": ORGS[org], "count": int(v)}
                         for s, v in zip(STATUSES, values, strict=True)]
    return pd.DataFrame(rows)


def solve(counts, memo=None):
    return suppress_counts(counts, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY, memo=memo)


def same(a: Suppression, b: Suppression) -> bool:
    return a.certificates == b.certificates and all(a.tables[n].equals(b.tables[n]) for n in a.tables)


def test_a_problem_solved_before_is_answered_from_the_memo(tmp_path):
    counts = demo_like_atoms()
    fresh = solve(counts)
    first = solve(counts, tmp_path)
    assert same(first, fresh) and len(list(tmp_path.glob("*.json"))) == 1
    # Mark one more cell as suppressed in the remembered answer: the next answer shows it,
    # so it came from the memo (more suppression is always safe; the audit still passes).
    (path,) = tmp_path.glob("*.json")
    stored = json.loads(path.read_text())
    extra = next(i for i in range(1000) if i not in set(stored["suppressed"]))
    path.write_text(json.dumps({**stored, "suppressed": sorted([*stored["suppressed"], extra])}))

    again = solve(counts, tmp_path)

    hidden = sum(int(f["suppressed"].sum()) for f in again.tables.values())
    assert hidden == sum(int(f["suppressed"].sum()) for f in fresh.tables.values()) + 1
    assert audit(counts, PARTICIPATION_TABLES, again, present_by=ROW_KEY) == []


def test_a_remembered_answer_that_fails_its_audit_is_solved_again(tmp_path, caplog):
    counts = demo_like_atoms()
    fresh = solve(counts, tmp_path)
    (path,) = tmp_path.glob("*.json")
    stored = json.loads(path.read_text())
    primary = {(n, int(i)) for n, f in fresh.tables.items() for i in np.flatnonzero(f["primary"].to_numpy())}
    assert len(stored["suppressed"]) > len(primary)  # there are secondary cells to lose
    path.write_text(json.dumps({**stored, "suppressed": []}))  # every secondary cell "forgotten"

    again = solve(counts, tmp_path)

    assert "failed its audit" in caplog.text
    assert same(again, fresh)
    assert not recovered(counts, PARTICIPATION_TABLES, again, present_by=ROW_KEY)


def test_changed_counts_are_a_new_problem_and_junk_in_the_memo_is_ignored(tmp_path, caplog):
    counts = demo_like_atoms()
    solve(counts, tmp_path)
    changed = counts.copy()
    changed.loc[0, "count"] += 1
    assert same(solve(changed, tmp_path), solve(changed))
    assert len(list(tmp_path.glob("*.json"))) == 2
    for path in tmp_path.glob("*.json"):
        path.write_text("{not json")

    assert same(solve(counts, tmp_path), solve(counts))
    assert "unreadable" in caplog.text


# --- The vectorised evaluation of candidates, against a plain one --------------------------------


def plain_evaluation(problem, k: int, atoms, coefs) -> tuple[bool, float, bool, bool, set[int]]:
    """One candidate, from the definitions: the cells whose net change is not zero, what
    suppressing the new ones costs, and which of counts + d, counts - d stay valid."""
    net: dict[int, int] = {}
    for a, c in zip(atoms, coefs, strict=True):
        if a >= 0:
            for t in range(len(problem.tables)):
                cell = int(problem.cell_of[t, a])
                net[cell] = net.get(cell, 0) + int(c)
    changed = {cell for cell, change in net.items() if change}
    cost = sum(problem.weight[cell] for cell in changed if cell != k and not problem.suppressed[cell])

    def valid(sign: int) -> bool:
        x = problem.x.copy()
        for a, c in zip(atoms, coefs, strict=True):
            if a >= 0:
                x[a] += sign * c
        groups = np.bincount(problem.group, weights=x, minlength=len(problem.group_total))
        touched = {int(problem.group[a]) for a in atoms if a >= 0}
        return bool((x >= 0).all()) and all(groups[g] >= 1 for g in touched)

    plus, minus = valid(1), valid(-1)
    cost += 0.0 if plus and minus else 0.5
    return k in changed and (plus or minus), cost, plus, minus, changed


def test_the_vectorised_evaluation_of_candidates_agrees_with_a_plain_one():
    from transforms.disclosure import _Problem

    counts = demo_like_atoms(seed=3)
    problem = _Problem(counts.reset_index(drop=True), PARTICIPATION_TABLES, "count", ROW_KEY, "status", ROW_KEY)
    checked = 0
    for k in np.flatnonzero(problem.primary)[:25]:
        blocks = [b for b in problem.candidate_blocks(int(k))]
        zig = problem.zigzags(int(k))
        for atoms, coefs, plus, minus, *_ in [*blocks, zig]:
            pick = np.linspace(0, len(atoms) - 1, min(len(atoms), 12)).astype(int) if len(atoms) else []
            usable, cost, plus_v, minus_v = problem.evaluate(int(k), atoms[pick], coefs[pick])
            assert (plus_v == plus[pick]).all() and (minus_v == minus[pick]).all()
            for i, row in enumerate(pick):
                want = plain_evaluation(problem, int(k), atoms[row], coefs[row])
                assert (bool(usable[i]), bool(plus_v[i]), bool(minus_v[i])) == (want[0], want[2], want[3])
                assert cost[i] == pytest.approx(want[1])
                assert set(problem.changed_cells(atoms[row], coefs[row]).tolist()) == want[4]
                checked += 1
        problem.protect(int(k))  # the state moves on: later cells see more cells suppressed
    assert checked > 500
