"""The ``Check`` record every suite module returns, and helpers to build common ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Check:
    """One rule: a GX expectation type and its kwargs, plus what a sender is told.

    ``statement`` says the rule itself in one plain sentence ("The denominator must be
    greater than 0."): it is the expectation's description in the Data Docs and the rule
    in the submission templates' Notes and the data dictionary.
    """

    rule: str
    column: str  # the canonical column the sender should look at
    severity: Severity
    message: str  # may use {value} and {column}
    fix: str
    expectation: str  # GX expectation class name, e.g. ExpectColumnValuesToNotBeNull
    kwargs: dict[str, Any]
    statement: str = ""

    @property
    def checked_column(self) -> str:
        """The column GX looks at: the canonical column, or a computed ``chk_*`` column."""
        return self.kwargs["column"]

    @property
    def rule_text(self) -> str:
        return self.statement or self.fix

    def description(self) -> str:
        """What the Data Docs show for this expectation (GX renders it as a template: no '$')."""
        return f"{self.severity.upper()} {self.rule} ({self.column}): {self.rule_text}".replace("$", "")


def required(column: str, label: str, *, checked: str | None = None) -> Check:
    """``column`` must not be blank; ``checked`` names the column GX sees when it is not
    ``column`` itself (staff_id: GX sees only the keyed participant_key)."""
    return Check(
        rule=f"{column}_required",
        column=column,
        severity="error",
        message=f"{label} is blank but is required.",
        fix=f"Fill in {label} for this row.",
        expectation="ExpectColumnValuesToNotBeNull",
        kwargs={"column": checked or column},
        statement=f"{label} is required.",
    )


def in_list(column: str, values: list[str] | tuple[str, ...], *, rule: str, message: str, fix: str,
            statement: str | None = None) -> Check:
    """``column`` must hold one of ``values`` (blank cells are left to the 'required' rule)."""
    return Check(rule, column, "error", message, fix, "ExpectColumnValuesToBeInSet",
                 {"column": column, "value_set": list(values)},
                 statement or "One of: " + ", ".join(values) + ".")


def organisation_known(org_codes: set[str]) -> Check:
    """organisation_code must be in reference/organisations.csv (every dataset)."""
    return in_list(
        "organisation_code",
        sorted(org_codes),
        rule="organisation_known",
        message="Organisation code {value} is not in the programme's list of organisations.",
        fix="Use your organisation's code as given in the submission template.",
        statement="A code from the programme's list of organisations.",
    )


def cohort_known(cohort_codes: set[str]) -> Check:
    """cohort_code must be in reference/cohorts.csv (enrolment return and register)."""
    cohorts = sorted(cohort_codes)
    return in_list(
        "cohort_code",
        cohorts,
        rule="cohort_known",
        message="Cohort {value} is not a cohort of the programme.",
        fix="Use a cohort code from the template's list, e.g. " + ", ".join(cohorts[-2:]) + ".",
        statement="A code from the programme's list of cohorts.",
    )


def passes(flag: str, column: str, *, rule: str, message: str, fix: str, severity: Severity = "error",
           statement: str = "") -> Check:
    """A computed ``chk_*`` column (transforms/checks.py) must be True where it applies."""
    return Check(rule, column, severity, message, fix, "ExpectColumnValuesToBeInSet",
                 {"column": flag, "value_set": [True]}, statement)
