"""The three submission datasets, declared once.

Everything that needs to know a dataset's columns reads them from here: the header
matcher, the normalisers, the validation suites, the templates and the demo generator.
Synonyms are domain knowledge and ship with the code; a deployment adds to them with
``reference/column_synonyms.csv`` and ``reference/value_synonyms.csv`` (SPEC 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ENROLMENT_RETURN = "enrolment_return"
PROJECT_REGISTER = "project_register"
MEASURE_DATA = "measure_data"
DATASETS = (ENROLMENT_RETURN, PROJECT_REGISTER, MEASURE_DATA)

Kind = Literal["code", "text", "date", "number", "category", "personal"]


@dataclass(frozen=True)
class Column:
    """One canonical column of a dataset."""

    name: str
    kind: Kind
    required: bool = False
    personal: bool = False
    synonyms: tuple[str, ...] = ()
    rule: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    grain: str
    columns: tuple[Column, ...]
    # Columns whose presence in a header row identifies this dataset.
    signature: tuple[str, ...] = field(default=())

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def personal(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.personal)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


PROFESSIONS = (
    "Social Work",
    "Nursing",
    "Midwifery",
    "Allied Health Professional",
    "Medical",
    "Pharmacy",
    "Psychology",
    "Administrative and Clerical",
    "Management",
    "Other",
)
ENROLMENT_STATUSES = ("Enrolled", "Active", "Completed", "Withdrawn", "Deferred")
LEAVING_STATUSES = ("Completed", "Withdrawn", "Deferred")
PROJECT_STATUSES = ("Active", "Sustaining", "Completed", "Abandoned")
MEASURE_TYPES = ("percentage", "count", "rate", "time")
IMPROVEMENT_DIRECTIONS = ("increase", "decrease")

# Allowed values of each categorical field, by canonical column name.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "profession": PROFESSIONS,
    "status": ENROLMENT_STATUSES,
    "project_status": PROJECT_STATUSES,
    "measure_type": MEASURE_TYPES,
    "improvement_direction": IMPROVEMENT_DIRECTIONS,
}

# Built-in value synonyms: field -> {synonym (normalised) -> canonical value}.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "profession": {
        "sw": "Social Work",
        "social worker": "Social Work",
        "social care": "Social Work",
        "socialwork": "Social Work",
        "nurse": "Nursing",
        "rn": "Nursing",
        "registered nurse": "Nursing",
        "midwife": "Midwifery",
        "ahp": "Allied Health Professional",
        "allied health": "Allied Health Professional",
        "allied health professions": "Allied Health Professional",
        "physiotherapy": "Allied Health Professional",
        "occupational therapy": "Allied Health Professional",
        "doctor": "Medical",
        "medic": "Medical",
        "medicine": "Medical",
        "pharmacist": "Pharmacy",
        "psychologist": "Psychology",
        "admin": "Administrative and Clerical",
        "admin and clerical": "Administrative and Clerical",
        "administrative & clerical": "Administrative and Clerical",
        "a&c": "Administrative and Clerical",
        "manager": "Management",
        "managerial": "Management",
    },
    "status": {
        "enroled": "Enrolled",
        "registered": "Enrolled",
        "in progress": "Active",
        "ongoing": "Active",
        "complete": "Completed",
        "finished": "Completed",
        "graduated": "Completed",
        "withdrew": "Withdrawn",
        "left": "Withdrawn",
        "dropped out": "Withdrawn",
        "deferral": "Deferred",
        "paused": "Deferred",
    },
    "project_status": {
        "live": "Active",
        "in progress": "Active",
        "sustain": "Sustaining",
        "complete": "Completed",
        "closed": "Completed",
        "stopped": "Abandoned",
        "abandon": "Abandoned",
    },
    "measure_type": {
        "%": "percentage",
        "percent": "percentage",
        "proportion": "percentage",
        "number": "count",
        "counts": "count",
        "ratio": "rate",
        "duration": "time",
        "days": "time",
        "time between": "time",
    },
    "improvement_direction": {
        "up": "increase",
        "higher": "increase",
        "higher is better": "increase",
        "increasing": "increase",
        "down": "decrease",
        "lower": "decrease",
        "lower is better": "decrease",
        "decreasing": "decrease",
        "reduce": "decrease",
    },
}

ENROLMENT = Dataset(
    name=ENROLMENT_RETURN,
    title="Enrolment return",
    grain="one row per participant per cohort",
    signature=("staff_id", "cohort_code", "enrolment_date"),
    columns=(
        Column("organisation_code", "code", True, synonyms=("org code", "organisation", "org", "trust code", "provider code"),
               rule="A code from the organisations list"),
        Column("staff_id", "personal", True, personal=True,
               synonyms=("staff number", "staff no", "payroll no", "payroll number", "employee number", "employee id", "staff ref"),
               rule="Your staff number: 3 to 20 letters or digits"),
        Column("first_name", "personal", personal=True, synonyms=("forename", "first name", "given name")),
        Column("surname", "personal", personal=True, synonyms=("last name", "family name")),
        Column("email", "personal", personal=True, synonyms=("email address", "e-mail", "work email")),
        Column("profession", "category", True, synonyms=("professional group", "staff group", "discipline"),
               rule="One of: " + ", ".join(PROFESSIONS)),
        Column("service_area", "text", True, synonyms=("service", "directorate", "department", "care group"),
               rule="Free text"),
        Column("team", "text", synonyms=("team name",)),
        Column("job_title", "text", synonyms=("role", "job role", "post")),
        Column("band", "text", synonyms=("afc band", "pay band", "grade")),
        Column("mentor", "personal", personal=True, synonyms=("qi mentor", "coach", "mentor name")),
        Column("cohort_code", "code", True, synonyms=("cohort", "cohort id", "intake"),
               rule="A code from the cohorts list"),
        Column("enrolment_date", "date", True, synonyms=("enrollment date", "date enrolled", "start date", "enrolled on"),
               rule="A date no later than the cohort's end and no earlier than 120 days before its start"),
        Column("status", "category", True, synonyms=("participant status", "current status", "enrolment status"),
               rule="One of: " + ", ".join(ENROLMENT_STATUSES)),
        Column("status_date", "date", synonyms=("date of status", "status changed", "date status changed"),
               rule="Required for Completed, Withdrawn and Deferred: on or after the enrolment date"),
        Column("withdrawal_reason", "text", synonyms=("reason for withdrawal", "reason withdrawn", "withdrawal reason")),
        Column("project_id", "code", synonyms=("project", "project ref", "project code", "project number")),
    ),
)

REGISTER = Dataset(
    name=PROJECT_REGISTER,
    title="Project register",
    grain="one row per project",
    signature=("project_id", "title", "improvement_direction"),
    columns=(
        Column("project_id", "code", True, synonyms=("project", "project ref", "project code", "project number"),
               rule="Unique project reference, e.g. SET-2025-014"),
        Column("organisation_code", "code", True, synonyms=ENROLMENT.column("organisation_code").synonyms,
               rule="A code from the organisations list"),
        Column("cohort_code", "code", True, synonyms=("cohort", "cohort id", "intake"), rule="A code from the cohorts list"),
        Column("title", "text", True, synonyms=("project title", "project name", "name of project"), rule="Free text"),
        Column("aim", "text", synonyms=("aim statement", "project aim")),
        Column("team", "text", synonyms=("project team", "team name")),
        Column("service_area", "text", True, synonyms=("service", "directorate", "department", "care group"), rule="Free text"),
        Column("measure_name", "text", True, synonyms=("primary measure", "outcome measure", "measure"),
               rule="The name of the primary outcome measure"),
        Column("measure_type", "category", True, synonyms=("type of measure", "measure kind"),
               rule="One of: " + ", ".join(MEASURE_TYPES)),
        Column("unit", "text", synonyms=("units", "unit of measure")),
        Column("improvement_direction", "category", True, synonyms=("direction", "direction of improvement", "improvement is"),
               rule="increase or decrease"),
        Column("target", "number", synonyms=("goal", "target value"), rule="A number on the measure's scale"),
        Column("intervention_date", "date", synonyms=("change date", "date of change", "intervention start"),
               rule="When changes began: points before it are the baseline"),
        Column("status", "category", True, synonyms=("project status",), rule="One of: " + ", ".join(PROJECT_STATUSES)),
    ),
)

MEASURES = Dataset(
    name=MEASURE_DATA,
    title="Measure data",
    grain="one value per project, measure and period",
    signature=("project_id", "measure_name", "period"),
    columns=(
        Column("project_id", "code", True, synonyms=("project", "project ref", "project code", "project number"),
               rule="A project in the register"),
        Column("measure_name", "text", True, synonyms=("measure", "measure title"), rule="The measure's name"),
        Column("period", "date", True, synonyms=("period start", "month", "week commencing", "week beginning", "date"),
               rule="The date the period starts (a month label such as Apr-25 is fine)"),
        Column("numerator", "number", synonyms=("num",), rule="A number"),
        Column("denominator", "number", synonyms=("denom", "den"), rule="A number greater than 0"),
        Column("value", "number", synonyms=("result", "measure value", "score"), rule="A number"),
    ),
)

BY_NAME: dict[str, Dataset] = {d.name: d for d in (ENROLMENT, REGISTER, MEASURES)}

# Fields whose values are categories, by (dataset, column) -> CATEGORIES key.
CATEGORY_FIELD: dict[tuple[str, str], str] = {
    (ENROLMENT_RETURN, "profession"): "profession",
    (ENROLMENT_RETURN, "status"): "status",
    (PROJECT_REGISTER, "measure_type"): "measure_type",
    (PROJECT_REGISTER, "improvement_direction"): "improvement_direction",
    (PROJECT_REGISTER, "status"): "project_status",
}
