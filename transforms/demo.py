"""Synthetic demo submissions: the fixture source for the tests, the benchmark and `make run`.

``generate()`` invents a regional QI programme from the reference data (organisations,
cohorts) and writes, for every reporting period and organisation, the files that
organisation would have sent: an enrolment return (its full list of current and recent
participants) and its project returns (register rows and the full measure series so far),
in the formats and with the messiness of SPEC 3. Each file's modification time is the
moment it was "received" (SPEC 4: the pipeline's ``received_at``).

It returns a ``DemoTruth``: what was written, so tests can compare marts against it. A
few extra rows per year are planted to be rejected (each listed with its file, sheet, row
and column), and one or two whole files are unreadable; the truth counts only valid rows.

Everything is deterministic: the same arguments give byte-identical files (xlsx created
dates are derived from the period, never from the clock). Names are invented from short
lists of common given names and surnames; e-mails are at example.nhs.uk / example.org.

Layout: ``landing/<ORG_CODE>/<YYYY-MM>/<file>``.
"""

from __future__ import annotations

import bisect
import calendar
import csv
import io
import json
import os
import random
import re
import threading
import unicodedata
import zlib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import xlsxwriter

from .datasets import (ENROLMENT, ENROLMENT_RETURN, ENROLMENT_STATUSES, MEASURE_DATA, MEASURES, PROFESSIONS,
                       PROJECT_REGISTER, REGISTER)

__all__ = ["DemoTruth", "generate", "write_truth", "ensure_demo", "seed_reference"]

UTC = timezone.utc
DEFAULT_SEED = 20250401

# --------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------


@dataclass
class DemoTruth:
    """What the generator produced, for tests to compare marts against.

    Counts are of VALID rows in files that are not rejected as a whole; planted bad rows
    are extra rows and never change them.
    """

    files: int
    periods: list[str]
    participants: int
    participants_by_org: dict[str, int]
    projects: int
    measure_points: int
    bad_rows: dict[str, int]
    planted: list[dict]
    rejected_files: list[str] = field(default_factory=list)
    # Extras for tests: participants by the programme year of their cohort, and what each
    # organisation sent for each period ('on_time', 'late' or 'not_sent').
    participants_by_year: dict[str, int] = field(default_factory=dict)
    submissions: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False)


def write_truth(truth: DemoTruth, path: Path) -> None:
    """Write ``truth`` as JSON to ``path`` (creating folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(truth.to_json() + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------
# The shipped demo reference data (SPEC 2: `demo` creates a data root when there is none)
# --------------------------------------------------------------------------------------

SHIPPED_REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def seed_reference(reference: Path) -> None:
    """Copy the shipped demo reference CSVs into ``reference`` where a file is missing."""
    reference.mkdir(parents=True, exist_ok=True)
    if reference.resolve() == SHIPPED_REFERENCE.resolve():
        return
    for source in sorted(SHIPPED_REFERENCE.glob("*.csv")):
        if not (reference / source.name).exists():
            (reference / source.name).write_bytes(source.read_bytes())


def ensure_demo(data_root: Path, *, scale: float = 1.0, months: int = 36, end_period: str | None = None,
                force: bool = False) -> DemoTruth | None:
    """Generate demo data into ``data_root/landing`` only if it holds no files (or ``force``).

    Seeds the shipped reference data first where ``data_root/reference`` lacks a file.
    Returns the truth, or None when landing already had files.
    """
    data_root = Path(data_root)
    landing = data_root / "landing"
    if not force and landing.exists() and any(p.is_file() for p in landing.rglob("*")):
        return None
    seed_reference(data_root / "reference")
    return generate(landing, data_root / "reference", scale=scale, months=months, end_period=end_period)


# --------------------------------------------------------------------------------------
# Vocabulary (invented people; realistic services and projects)
# --------------------------------------------------------------------------------------

GIVEN_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophie", "Emily", "Lucy", "Hannah",
    "Chloé", "Ella", "Jessica", "Sarah", "Rachel", "Laura", "Emma", "Charlotte", "Zoë", "Siân",
    "Aoife", "Niamh", "Priya", "Aisha", "Fatima", "Mei", "Oliver", "George", "Harry", "Jack",
    "Noah", "Thomas", "James", "Daniel", "Samuel", "Joseph", "David", "Michael", "Adam", "Ben",
    "Mohammed", "Ali", "Ravi", "Arjun", "Tomás", "Seán", "José", "Rhys", "Owen", "Liam",
)
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Hughes", "Edwards", "Turner", "Hill", "Moore",
    "Cooper", "Ward", "Morris", "King", "Harris", "Baker", "Lewis", "Begum", "Ahmed", "Murphy",
    "O'Brien", "Kowalski", "Nowak", "Müller", "Lefèvre", "Shaw", "Allen", "Young", "Mitchell",
    "Bell", "Kelly", "Chen", "Okafor",
)

# Profession weights by organisation type (Social Work mostly from voluntary, independent
# and some trusts).
PROFESSION_WEIGHTS: dict[str, dict[str, float]] = {
    "lead trust": {"Nursing": 34, "Allied Health Professional": 20, "Social Work": 12, "Medical": 8,
                   "Midwifery": 5, "Pharmacy": 4, "Psychology": 3, "Administrative and Clerical": 5,
                   "Management": 7, "Other": 2},
    "partner trust": {"Nursing": 40, "Allied Health Professional": 21, "Medical": 11, "Midwifery": 5,
                      "Pharmacy": 6, "Psychology": 3, "Administrative and Clerical": 6, "Management": 6,
                      "Social Work": 1, "Other": 1},
    "mental health": {"Nursing": 34, "Psychology": 13, "Social Work": 16, "Allied Health Professional": 14,
                      "Medical": 8, "Pharmacy": 3, "Administrative and Clerical": 5, "Management": 6, "Other": 1},
    "voluntary": {"Social Work": 55, "Other": 15, "Management": 15, "Administrative and Clerical": 8,
                  "Psychology": 7},
    "independent": {"Nursing": 28, "Social Work": 24, "Other": 26, "Management": 16,
                    "Administrative and Clerical": 6},
}

# (job title, AfC band) choices by profession.
JOBS: dict[str, tuple[tuple[str, str], ...]] = {
    "Nursing": (("Staff Nurse", "Band 5"), ("Senior Staff Nurse", "Band 6"), ("Charge Nurse", "Band 6"),
                ("Ward Manager", "Band 7"), ("Clinical Nurse Specialist", "Band 7"), ("District Nurse", "Band 6")),
    "Midwifery": (("Midwife", "Band 5"), ("Midwife", "Band 6"), ("Senior Midwife", "Band 7")),
    "Allied Health Professional": (("Physiotherapist", "Band 5"), ("Physiotherapist", "Band 6"),
                                   ("Occupational Therapist", "Band 6"), ("Speech and Language Therapist", "Band 6"),
                                   ("Dietitian", "Band 6"), ("Advanced Practitioner", "Band 7")),
    "Medical": (("Foundation Doctor", ""), ("Specialty Registrar", ""), ("Consultant", "")),
    "Pharmacy": (("Pharmacist", "Band 7"), ("Pharmacy Technician", "Band 5")),
    "Psychology": (("Clinical Psychologist", "Band 8a"), ("Assistant Psychologist", "Band 5")),
    "Social Work": (("Social Worker", "Band 6"), ("Senior Social Worker", "Band 7"),
                    ("Practice Supervisor", "Band 7"), ("Family Support Worker", "Band 4")),
    "Administrative and Clerical": (("Administrator", "Band 3"), ("Medical Secretary", "Band 4"),
                                    ("Data Officer", "Band 4")),
    "Management": (("Service Manager", "Band 8a"), ("Operational Manager", "Band 8b"),
                   ("Registered Manager", "Band 7")),
    "Other": (("Healthcare Assistant", "Band 3"), ("Support Worker", "Band 3"), ("Peer Support Worker", "Band 3")),
}

# Synonyms a sender might type (all in datasets.VALUE_SYNONYMS).
PROFESSION_SHOWN = {
    "Social Work": ("SW", "Social Worker"), "Nursing": ("Nurse", "RN", "Registered Nurse"),
    "Allied Health Professional": ("AHP", "Allied Health"), "Medical": ("Doctor", "Medic"),
    "Pharmacy": ("Pharmacist",), "Psychology": ("Psychologist",), "Midwifery": ("Midwife",),
    "Administrative and Clerical": ("Admin", "Admin and Clerical"), "Management": ("Manager",),
    "Other": ("Other",),
}
STATUS_SHOWN = {"Enrolled": "Registered", "Active": "In progress", "Completed": "Complete",
                "Withdrawn": "Left", "Deferred": "Paused"}
PROJECT_STATUS_SHOWN = {"Active": "Live", "Sustaining": "Sustain", "Completed": "Closed", "Abandoned": "Stopped"}
MEASURE_TYPE_SHOWN = {"percentage": "%", "count": "Number", "rate": "Ratio", "time": "Duration"}
DIRECTION_SHOWN = {"increase": "Higher is better", "decrease": "Lower is better"}

WITHDRAWAL_REASONS = (
    "Left the organisation", "Workload pressures", "Long-term sickness", "Maternity leave",
    "Changed role", "Personal reasons", "Could not get protected time",
)


@dataclass(frozen=True)
class _Template:
    """A kind of QI project; levels are per month (counts per week for weekly series)."""

    key: str
    pool: str
    title: str
    measure: str
    mtype: str
    unit: str
    direction: str
    base: float
    after: float
    target: float
    den: tuple[int, int] | None
    areas: tuple[str, ...]
    teams: tuple[str, ...]
    balance: str
    weekly: bool = False
    aim_extra: str = ""


TEMPLATES: tuple[_Template, ...] = (
    _Template("wristband", "acute", "Wristbands for every inpatient",
              "% of inpatients wearing a correct identification wristband", "percentage", "%", "increase",
              78, 93, 95, (30, 60), ("Acute Medicine", "General Surgery"),
              ("Ward 7", "Ward 12", "Oak Ward", "Beech Ward", "Acute Medical Unit"), "Incidents reported on the ward"),
    _Template("aki", "acute", "Earlier recognition of acute kidney injury",
              "Days from admission to AKI diagnosis", "time", "days", "decrease",
              3.4, 2.1, 2.0, None, ("Acute Medicine", "Renal Services"),
              ("Acute Medical Unit", "Ward 4", "Renal Ward"), "Blood tests repeated"),
    _Template("falls", "acute", "Reducing inpatient falls",
              "Inpatient falls per 1,000 occupied bed days", "rate", "per 1,000 bed days", "decrease",
              7.2, 5.0, 5.0, None, ("Older People's Medicine", "Acute Medicine"),
              ("Elm Ward", "Ward 9", "Frailty Unit"), "Falls with harm"),
    _Template("sepsis", "acute", "Sepsis screening within the hour",
              "% of eligible patients screened for sepsis within 1 hour", "percentage", "%", "increase",
              64, 86, 90, (20, 45), ("Emergency Department",), ("ED Majors", "ED Minors", "Paediatric ED"),
              "Patients waiting over 12 hours"),
    _Template("noon", "acute", "Home before midday",
              "% of discharges before 12:00", "percentage", "%", "increase",
              18, 31, 33, (80, 160), ("General Surgery", "Acute Medicine"),
              ("Ward 3", "Surgical Assessment Unit", "Ward 11"), "Readmissions within 30 days"),
    _Template("doses", "acute", "Missed doses matter",
              "Omitted critical medicine doses", "count", "doses", "decrease",
              9, 4, 3, None, ("Pharmacy", "Acute Medicine"), ("Ward 5", "Medicines Management Team"),
              "Medication incidents reported", weekly=True),
    _Template("dna", "acute", "Fewer missed appointments",
              "% of outpatient appointments not attended", "percentage", "%", "decrease",
              11.5, 8.2, 8.0, (900, 1600), ("Outpatients",), ("Outpatient Booking Team", "Main Outpatients"),
              "Text reminders sent"),
    _Template("medrec", "acute", "Timely medicines reconciliation",
              "% of admissions with medicines reconciled within 24 hours", "percentage", "%", "increase",
              58, 80, 85, (60, 120), ("Pharmacy",), ("Ward Pharmacy Team", "Admissions Pharmacy"),
              "Pharmacist hours on wards"),
    _Template("fft", "maternity", "Listening to our patients",
              "% of patients who would recommend the service", "percentage", "%", "increase",
              86, 93, 95, (40, 90), ("General Surgery", "Maternity"), ("Day Surgery Unit", "Ward 2", "Postnatal Ward"),
              "Complaints received"),
    _Template("skin", "maternity", "Skin-to-skin after birth",
              "% of births with skin-to-skin contact within 1 hour", "percentage", "%", "increase",
              72, 88, 90, (50, 110), ("Maternity",), ("Delivery Suite", "Birth Centre"), "Admissions to the neonatal unit"),
    _Template("ulcers", "community", "Pressure ulcer prevention",
              "Category 2 and above pressure ulcers acquired in our care", "count", "ulcers", "decrease",
              6, 3, 2, None, ("District Nursing", "Community Services"),
              ("North Locality", "South Locality", "Town Centre Team"), "Skin checks recorded"),
    _Template("physio", "community", "Faster first physiotherapy assessment",
              "Days from referral to first physiotherapy assessment", "time", "days", "decrease",
              21, 12, 14, None, ("Therapies", "Musculoskeletal Services"), ("MSK Physiotherapy", "Community Therapy Team"),
              "Referrals received"),
    _Template("insulin", "community", "Insulin visits on time",
              "% of insulin visits within 30 minutes of the planned time", "percentage", "%", "increase",
              71, 88, 90, (900, 1500), ("District Nursing",), ("East Locality", "West Locality"), "Visits rescheduled"),
    _Template("restraint", "mh", "Reducing restrictive practice",
              "Restraint incidents per 1,000 occupied bed days", "rate", "per 1,000 bed days", "decrease",
              14, 9, 8, None, ("Adult Mental Health Inpatients",), ("Willow Ward", "Cedar Ward", "Psychiatric Intensive Care"),
              "Staff injuries"),
    _Template("physhealth", "mh", "Physical health checks for people with serious mental illness",
              "% of patients with a completed annual physical health check", "percentage", "%", "increase",
              41, 63, 70, (950, 1300), ("Community Mental Health",), ("Early Intervention Team", "Recovery Team North"),
              "Clinic slots offered"),
    _Template("iapt", "mh", "Waiting well for psychological therapy",
              "Weeks from referral to first therapy session", "time", "weeks", "decrease",
              14, 9, 8, None, ("Psychological Therapies",), ("Talking Therapies", "Psychology Service"), "Referrals received"),
    _Template("coprod", "mh", "Care plans written together",
              "% of care plans co-produced with the service user", "percentage", "%", "increase",
              47, 70, 75, (30, 80), ("Community Mental Health",), ("Recovery Team South", "Crisis Team"), "Complaints received"),
    _Template("voices", "sw_children", "Children's voices in their reviews",
              "% of looked-after children's reviews with the child's views recorded", "percentage", "%", "increase",
              55, 79, 85, (12, 30), ("Children's Social Care",), ("Children in Care Team", "Fostering Team"),
              "Reviews held on time"),
    _Template("supervision", "sw_children", "Reflective supervision every month",
              "% of social workers receiving monthly supervision", "percentage", "%", "increase",
              61, 88, 90, (10, 25), ("Children's Social Care", "Adult Social Care"), ("Assessment Team", "Locality Team East"),
              "Agency social workers"),
    _Template("earlyhelp", "sw_children", "Early help without the wait",
              "Days from referral to first contact", "time", "days", "decrease",
              9, 5, 5, None, ("Family Support", "Children's Social Care"), ("Early Help Hub", "Family Support Team"),
              "Referrals received"),
    _Template("carers", "sw_adults", "Carers' assessments offered",
              "% of carers offered a carer's assessment", "percentage", "%", "increase",
              38, 62, 70, (15, 40), ("Adult Social Care",), ("Hospital Social Work Team", "Carers Support Team"),
              "Carers' assessments completed"),
    _Template("safeguarding", "sw_adults", "Timely safeguarding strategy discussions",
              "Days from safeguarding concern to strategy discussion", "time", "days", "decrease",
              6.5, 3.5, 3.0, None, ("Adult Social Care", "Safeguarding"), ("Safeguarding Adults Team", "Locality Team West"),
              "Concerns received"),
    _Template("reviews", "sw_adults", "Care and support plans reviewed on time",
              "% of care and support plans reviewed within 12 months", "percentage", "%", "increase",
              63, 81, 85, (40, 90), ("Adult Social Care",), ("Review Team", "Learning Disability Team"), "Reviews overdue"),
    _Template("familytime", "voluntary", "Family time that happens",
              "% of planned family time sessions that took place", "percentage", "%", "increase",
              74, 87, 90, (30, 70), ("Family Support",), ("Contact Centre", "Family Time Team"), "Sessions cancelled"),
    _Template("taxis", "voluntary", "Cutting taxi journeys for family time",
              "Taxi journeys booked for family time", "count", "journeys", "decrease",
              14, 9, 8, None, ("Family Support",), ("Family Time Team", "Transport Desk"), "Sessions cancelled",
              weekly=True, aim_extra=", saving about £1,500 a month"),
    _Template("hydration", "care_home", "Hydration in our care homes",
              "% of residents meeting their daily fluid target", "percentage", "%", "increase",
              52, 74, 80, (25, 60), ("Residential Care", "Nursing Home"), ("Riverside House", "Meadow View", "Willow Court"),
              "Urinary tract infections"),
    _Template("homefalls", "care_home", "Fewer falls in our homes",
              "Falls per 1,000 occupied bed days", "rate", "per 1,000 bed days", "decrease",
              9.5, 6.8, 6.5, None, ("Residential Care",), ("Meadow View", "Willow Court"), "Hospital admissions"),
    _Template("agency", "care_home", "Reducing agency shifts",
              "Agency staff shifts", "count", "shifts", "decrease",
              16, 10, 9, None, ("Nursing Home", "Residential Care"), ("Riverside House", "Night Team"), "Staff sickness days",
              weekly=True, aim_extra=", saving about £2,000 a month"),
)
_BY_POOL: dict[str, tuple[_Template, ...]] = {}
for _t in TEMPLATES:
    _BY_POOL[_t.pool] = _BY_POOL.get(_t.pool, ()) + (_t,)


def _org_pools(org_type: str, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(health pools, social work pools) an organisation's teams choose projects from."""
    low = name.lower()
    if org_type == "voluntary":
        return ("voluntary",), ("voluntary", "sw_children")
    if org_type == "independent":
        return ("care_home",), ("sw_adults", "care_home")
    if org_type == "lead trust":
        return ("acute", "community", "maternity"), ("sw_adults", "sw_children")
    if "mental health" in low:
        return ("mh",), ("sw_adults", "mh")
    if "hospital" in low:
        return ("acute", "maternity"), ("sw_adults",)
    if "community" in low:
        return ("community", "acute"), ("sw_adults",)
    if "partnership" in low:
        return ("community", "mh"), ("sw_adults",)
    return ("acute", "community"), ("sw_adults",)


# --------------------------------------------------------------------------------------
# Calendar helpers (a month is an ordinal: year * 12 + month - 1)
# --------------------------------------------------------------------------------------

def _mo(y: int, m: int) -> int:
    return y * 12 + m - 1


def _mo_of(d: date) -> int:
    return d.year * 12 + d.month - 1


def _first(mo: int) -> date:
    return date(mo // 12, mo % 12 + 1, 1)


def _eom(mo: int) -> date:
    y, m = mo // 12, mo % 12 + 1
    return date(y, m, calendar.monthrange(y, m)[1])


def _label(mo: int) -> str:
    return f"{mo // 12:04d}-{mo % 12 + 1:02d}"


def _parse_period(text: str) -> int:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"period must be 'YYYY-MM', got {text!r}")
    return _mo(int(m.group(1)), int(m.group(2)))


def _month_name(mo: int) -> str:
    return f"{calendar.month_name[mo % 12 + 1]} {mo // 12}"


def _mon_yy(mo: int) -> str:
    return f"{calendar.month_abbr[mo % 12 + 1]}-{mo // 12 % 100:02d}"


_EXCEL_EPOCH = date(1899, 12, 30)


def _serial(d: date) -> int:
    return (d - _EXCEL_EPOCH).days


def _working_days(mo: int, lo: int, hi: int) -> list[date]:
    y, m = mo // 12, mo % 12 + 1
    last = calendar.monthrange(y, m)[1]
    return [date(y, m, d) for d in range(lo, min(hi, last) + 1) if date(y, m, d).weekday() < 5]


def _crc(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Org:
    code: str
    name: str
    type: str
    index: int


@dataclass(frozen=True)
class _Cohort:
    code: str
    year: str
    start: date
    end: date


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def _load_reference(reference: Path) -> tuple[list[_Org], list[_Cohort]]:
    reference = Path(reference)
    orgs = [_Org(r["code"].upper(), r["name"], r["type"].lower(), i)
            for i, r in enumerate(_read_csv(reference / "organisations.csv"))]
    cohorts = [_Cohort(r["code"].upper(), r["programme_year"], date.fromisoformat(r["start_date"]),
                       date.fromisoformat(r["end_date"]))
               for r in _read_csv(reference / "cohorts.csv")]
    cohorts.sort(key=lambda c: (c.start, c.code))
    if not orgs or not cohorts:
        raise ValueError(f"{reference}: organisations.csv and cohorts.csv must each have rows")
    return orgs, cohorts


# --------------------------------------------------------------------------------------
# Simulation: people, cohorts, projects, measure series
# --------------------------------------------------------------------------------------

@dataclass
class _Person:
    staff_id: str
    first: str
    surname: str
    email: str
    profession: str
    job_title: str
    band: str
    flavour: float  # stable per person: picks the synonyms and formats a sender uses for them


@dataclass
class _Point:
    period: date
    num: int | None
    den: int | None
    value: float


@dataclass
class _Project:
    pid: str
    org: str
    cohort: _Cohort
    tpl: _Template
    title: str
    aim: str
    team: str
    service_area: str
    target: float
    intervention: date | None
    weekly: bool
    has_counts: bool
    abandon_mo: int | None
    complete_mo: int
    listed_from: int
    listed_to: int
    points: list[_Point]
    period_dates: list[date]
    revisions: dict[int, tuple[int, _Point]]  # point index -> (from return period, revised point)
    secondary: tuple[str, list[_Point]] | None
    flavour: float

    def status(self, mo: int) -> str:
        if self.abandon_mo is not None and mo >= self.abandon_mo:
            return "Abandoned"
        if mo >= self.complete_mo:
            return "Completed"
        if mo > _mo_of(self.cohort.end):
            return "Sustaining"
        return "Active"

    def sent_points(self, mo: int) -> int:
        """How many primary points a return for period ``mo`` carries."""
        return bisect.bisect_right(self.period_dates, _eom(mo))

    def point(self, i: int, mo: int) -> _Point:
        rev = self.revisions.get(i)
        return rev[1] if rev is not None and mo >= rev[0] else self.points[i]


@dataclass
class _Enrolment:
    person: _Person
    cohort: _Cohort
    enrol_date: date
    outcome: str          # Completed, Withdrawn or Deferred (planned; shown once its date has passed)
    outcome_date: date
    reason: str
    team: str
    service_area: str
    mentor: str
    project: _Project | None
    skip_mo: int | None   # one month this participant is missing from the return

    def listed(self, mo: int) -> bool:
        return (self.enrol_date <= _eom(mo) and _mo_of(self.outcome_date) + 3 >= mo
                and mo != self.skip_mo)

    def state(self, mo: int) -> tuple[str, date | None]:
        eom = _eom(mo)
        if self.outcome_date <= eom:
            return self.outcome, self.outcome_date
        return ("Active" if self.cohort.start <= eom else "Enrolled"), None


@dataclass
class _OrgSim:
    org: _Org
    enrolments: list[_Enrolment]
    projects: list[_Project]
    used_ids: set[str]
    id_format: str
    domain: str


TEAM_SIZES = (2, 3, 3, 4)  # project team sizes drawn from: about one project per three participants
_ID_FORMATS = ("A#####", "1######", "B######", "C#####", "E#####", "VF####", "RC####", "K#####")


def _new_staff_id(rng: random.Random, fmt: str, used: set[str]) -> str:
    while True:
        sid = "".join(str(rng.randint(1 if i == 0 else 0, 9)) if ch == "#" else
                      (str(rng.randint(1, 9)) if ch == "1" else ch) for i, ch in enumerate(fmt))
        if sid not in used:
            used.add(sid)
            return sid


def _allocation(orgs: list[_Org], cohorts: list[_Cohort], scale: float) -> dict[tuple[str, str], int]:
    """Participants per (organisation, cohort): 50 in the first programme year growing to 180
    four years later (x scale), the lead trust largest, cohort A a little bigger than B."""
    years = sorted({c.year for c in cohorts})
    weight = {"lead trust": 4.0, "partner trust": 1.5, "voluntary": 0.75, "independent": 0.9}
    w = [weight.get(o.type, 1.0) for o in orgs]
    out: dict[tuple[str, str], int] = {}
    for yi, year in enumerate(years):
        total = round(50 * (180 / 50) ** (yi / 4) * scale)
        quotas = [total * x / sum(w) for x in w]
        counts = [int(q) for q in quotas]
        for i in sorted(range(len(orgs)), key=lambda i: (-(quotas[i] - counts[i]), i))[: total - sum(counts)]:
            counts[i] += 1
        in_year = [c for c in cohorts if c.year == year]
        for o, n in zip(orgs, counts):
            shares = [0.55, 0.45] if len(in_year) == 2 else [1 / len(in_year)] * len(in_year)
            left = n
            for k, c in enumerate(in_year):
                m = left if k == len(in_year) - 1 else round(n * shares[k])
                m = min(m, left)
                out[(o.code, c.code)] = m
                left -= m
    return out


def _series(tpl: _Template, weekly: bool, periods: list[date], intervention: date | None,
            has_counts: bool, nprng: np.random.Generator) -> list[_Point]:
    """A realistic measure series: a noisy baseline, then (for most projects) a shift or
    trend in the improving direction from the intervention date."""
    n = len(periods)
    delta = tpl.after - tpl.base
    base = tpl.base + delta * nprng.uniform(-0.15, 0.15)
    kind = nprng.choice(["shift", "trend", "none", "worse"], p=[0.6, 0.12, 0.18, 0.10])
    after = {"shift": tpl.after + delta * nprng.uniform(-0.15, 0.2), "trend": tpl.after,
             "none": base + delta * nprng.uniform(-0.1, 0.1), "worse": base - 0.35 * delta}[kind]
    post = [intervention is not None and p >= intervention for p in periods]
    n_post = sum(post)
    level = np.empty(n)
    k = 0
    for i in range(n):
        if not post[i]:
            level[i] = base
        else:
            k += 1
            if kind == "trend":
                level[i] = base + (after - base) * min(1.0, k / max(3, n_post * 0.7))
            else:
                level[i] = base + (after - base) * min(1.0, k / 2)  # two-step ramp
    per = 4.33 if tpl.weekly and not weekly else 1.0  # weekly templates give levels per week
    points: list[_Point] = []
    if tpl.mtype == "percentage" and has_counts and tpl.den:
        lo, hi = tpl.den
        dens = nprng.integers(lo, hi + 1, n)
        nums = nprng.binomial(dens, np.clip(level / 100, 0.001, 0.999))
        for p, nu, de in zip(periods, nums, dens):
            points.append(_Point(p, int(nu), int(de), round(100 * int(nu) / int(de), 1)))
    elif tpl.mtype == "percentage":
        sd = max(1.5, abs(delta) / 3.5)
        vals = np.clip(level + nprng.normal(0, sd, n), 0, 100)
        points = [_Point(p, None, None, round(float(v), 1)) for p, v in zip(periods, vals)]
    elif tpl.mtype == "count":
        vals = nprng.poisson(np.maximum(level * per, 0.2))
        points = [_Point(p, None, None, int(v)) for p, v in zip(periods, vals)]
    elif tpl.mtype == "rate":
        beddays = nprng.integers(1500, 2600, n)
        events = nprng.poisson(np.maximum(level, 0.1) * beddays / 1000)
        points = [_Point(p, None, None, round(float(e) / float(b) * 1000, 2)) for p, e, b in zip(periods, events, beddays)]
    else:  # time
        vals = np.maximum(level, 0.2) * nprng.lognormal(0, 0.13, n)
        points = [_Point(p, None, None, round(float(v), 1)) for p, v in zip(periods, vals)]
    return points


def _revise(tpl: _Template, pt: _Point, rng: random.Random) -> _Point:
    """An earlier value corrected by the sender (late-recorded cases, a data fix)."""
    if pt.num is not None and pt.den is not None:
        den = pt.den + rng.randint(1, 4)
        num = min(den, pt.num + rng.randint(0, 3))
        return _Point(pt.period, num, den, round(100 * num / den, 1))
    if tpl.mtype == "count":
        return _Point(pt.period, None, None, int(pt.value) + rng.randint(1, 3))
    f = rng.choice((-1, 1)) * rng.uniform(0.05, 0.15)
    v = pt.value * (1 + f) if pt.value else 1.0
    if tpl.mtype == "percentage":
        v = min(100.0, max(0.0, v))
    v = round(v, 2 if tpl.mtype == "rate" else 1)
    if v == pt.value:
        v = round(v + (0.5 if tpl.mtype != "percentage" or v < 99 else -0.5), 2)
    return _Point(pt.period, None, None, v)


def _simulate_org(org: _Org, cohorts: list[_Cohort], alloc: dict[tuple[str, str], int],
                  seed: int, long_form: bool, team_sizes: tuple[int, ...] = TEAM_SIZES) -> _OrgSim:
    """Everyone one organisation ever enrols, their teams and projects, for all cohorts."""
    rng = random.Random(f"{seed}/{org.code}/sim")
    id_format = "A#####" if org.type == "lead trust" else _ID_FORMATS[1 + (org.index - 1) % (len(_ID_FORMATS) - 1)]
    domain = "example.nhs.uk" if "trust" in org.type else "example.org"
    prof_key = "mental health" if "mental health" in org.name.lower() else org.type
    prof_w = PROFESSION_WEIGHTS.get(prof_key, PROFESSION_WEIGHTS["partner trust"])
    profs, pw = list(prof_w), list(prof_w.values())
    health_pools, sw_pools = _org_pools(org.type, org.name)
    nhs = "trust" in org.type
    used: set[str] = set()
    emails: set[str] = set()

    def person(profession: str | None = None) -> _Person:
        first, sur = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
        prof = profession or rng.choices(profs, pw)[0]
        job, band = rng.choice(JOBS[prof])
        local = re.sub(r"[^a-z]", "", _ascii(first).lower()) + "." + re.sub(r"[^a-z]", "", _ascii(sur).lower())
        email, k = f"{local}@{domain}", 1
        while email in emails:
            k += 1
            email = f"{local}{k}@{domain}"
        emails.add(email)
        return _Person(_new_staff_id(rng, id_format, used), first, sur, email, prof, job,
                       band if nhs else "", rng.random())

    mentors = [f"{rng.choice(GIVEN_NAMES)} {rng.choice(SURNAMES)}" for _ in range(4)]
    enrolments: list[_Enrolment] = []
    projects: list[_Project] = []
    seq: dict[int, int] = {}
    prefix = "SET" if org.type == "lead trust" else org.code
    deferred: dict[str, list[tuple[_Person, date]]] = {}  # cohort code -> (person, deferred on) re-joining it
    forced_pound = org.type in ("voluntary", "independent")

    for ci, cohort in enumerate(cohorts):
        n = alloc.get((org.code, cohort.code), 0)
        back = deferred.pop(cohort.code, [])
        rejoined = {id(p): when for p, when in back}  # re-enrol after their deferral
        people = [p for p, _ in back] + [person() for _ in range(n)]
        if n > 10:
            mentors.append(f"{rng.choice(GIVEN_NAMES)} {rng.choice(SURNAMES)}")
        # Teams of 2-4 from the same discipline group.
        sw = [p for p in people if p.profession == "Social Work"]
        other = [p for p in people if p.profession != "Social Work"]
        teams: list[tuple[bool, list[_Person]]] = []
        for is_sw, group in ((False, other), (True, sw)):
            rng.shuffle(group)
            i = 0
            while i < len(group):
                size = rng.choice(team_sizes)
                teams.append((is_sw, group[i:i + size]))
                i += size
        for is_sw, members in teams:
            pools = sw_pools if is_sw else health_pools
            choices = [t for pool in pools for t in _BY_POOL.get(pool, ())]
            tpl = rng.choice(choices)
            if forced_pound:  # make sure a '£' reaches a Windows-1252 file
                tpl = next((t for t in choices if t.aim_extra), tpl)
                forced_pound = False
            team = rng.choice(tpl.teams)
            area = rng.choice(tpl.areas)
            mentor = rng.choice(mentors)
            project = _make_project(org, prefix, cohort, tpl, team, area, seq, rng, seed, long_form)
            projects.append(project)
            for p in members:
                roll = rng.random()
                enrol = cohort.start - timedelta(days=rng.randint(-25, 90))
                if id(p) in rejoined:
                    enrol = max(enrol, rejoined[id(p)] + timedelta(days=14))
                length = (cohort.end - cohort.start).days
                if roll < 0.12:
                    outcome, when = "Withdrawn", cohort.start + timedelta(days=rng.randint(45, max(46, length - 20)))
                elif roll < 0.18:
                    outcome, when = "Deferred", cohort.start + timedelta(days=rng.randint(30, max(31, length - 30)))
                else:
                    outcome, when = "Completed", cohort.end
                reason = rng.choice(WITHDRAWAL_REASONS) if outcome == "Withdrawn" else ""
                first_mo = _mo_of(enrol)
                skip = first_mo + rng.randint(1, 8) if rng.random() < 0.05 else None
                if skip is not None and skip == _mo_of(when):
                    skip = None
                enrolments.append(_Enrolment(p, cohort, enrol, outcome, when, reason, team, area, mentor, project, skip))
                if outcome == "Deferred" and rng.random() < 0.5:
                    nxt = next((c for c in cohorts[ci + 1:] if c.start > when + timedelta(days=60)), None)
                    if nxt is not None:
                        deferred.setdefault(nxt.code, []).append((p, when))
    return _OrgSim(org, enrolments, projects, used, id_format, domain)


def _make_project(org: _Org, prefix: str, cohort: _Cohort, tpl: _Template, team: str, area: str,
                  seq: dict[int, int], rng: random.Random, seed: int, long_form: bool) -> _Project:
    year = cohort.start.year
    seq[year] = seq.get(year, 0) + 1
    pid = f"{prefix}-{year}-{seq[year]:03d}"
    nprng = np.random.default_rng([seed, _crc(pid)])
    s_mo, e_mo = _mo_of(cohort.start), _mo_of(cohort.end)
    intervention = None if rng.random() < 0.1 else cohort.start + timedelta(days=rng.randint(70, 140))
    if intervention is not None and intervention.weekday() >= 5:  # changes start on a working day
        intervention += timedelta(days=7 - intervention.weekday())
    weekly = tpl.weekly and long_form and rng.random() < 0.7
    has_counts = tpl.den is not None and (tpl.den[0] >= 100 or rng.random() < 0.7)
    abandon_mo = s_mo + rng.randint(3, max(3, e_mo - s_mo - 1)) if rng.random() < 0.08 else None
    complete_mo = e_mo + (0 if rng.random() < 0.4 else rng.randint(2, 8))
    end_mo = abandon_mo if abandon_mo is not None else complete_mo
    listed_from = s_mo + 1
    listed_to = end_mo + 3
    anchor = intervention or (cohort.start + timedelta(days=90))
    if weekly:
        first_post = anchor + timedelta(days=(7 - anchor.weekday()) % 7)
        nb = rng.randint(8, 20)
        start = first_post - timedelta(weeks=nb)
        stop = _eom(end_mo)
        periods = [start + timedelta(weeks=k) for k in range(((stop - start).days // 7) + 1)]
    else:
        first_post_mo = _mo_of(anchor) + (0 if anchor.day == 1 else 1)
        nb = rng.choice((6, 8, 10, 12, 12, 13, 14, 15, 16))
        periods = [_first(m) for m in range(first_post_mo - nb, end_mo + 1)]
    points = _series(tpl, weekly, periods, intervention, has_counts, nprng)
    revisions: dict[int, tuple[int, _Point]] = {}
    for _ in range(rng.choices((0, 1, 2), (75, 20, 5))[0]):
        i = rng.randrange(len(points))
        first_ret = max(listed_from, _mo_of(points[i].period))
        if first_ret + 1 <= listed_to and i not in revisions:
            revisions[i] = (rng.randint(first_ret + 1, min(listed_to, first_ret + 6)), _revise(tpl, points[i], rng))
    secondary = None
    if rng.random() < 0.25:
        lvl = rng.uniform(3, 15)
        sp = [_first(m) for m in range(listed_from - 1, end_mo + 1)]
        secondary = (tpl.balance, [_Point(p, None, None, int(v)) for p, v in zip(sp, nprng.poisson(lvl, len(sp)))])
    title = tpl.title if rng.random() < 0.5 else f"{tpl.title} on {team}" if "Ward" in team else f"{tpl.title} ({team})"
    unit_txt = "%" if tpl.unit == "%" else f" {tpl.unit}"
    verb = "increase" if tpl.direction == "increase" else "reduce"
    target = tpl.target
    aim = (f"To {verb} the {tpl.measure[0].lower() + tpl.measure[1:]} from {_fmt_num(tpl.base)}{unit_txt} "
           f"to {_fmt_num(target)}{unit_txt}{tpl.aim_extra} by {_month_name(e_mo)}")
    return _Project(pid, org.code, cohort, tpl, title, aim, team, area, target, intervention, weekly, has_counts,
                    abandon_mo, complete_mo, listed_from, listed_to, points, [p.period for p in points],
                    revisions, secondary, rng.random())


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


# --------------------------------------------------------------------------------------
# Receipt calendar: when each organisation's files for each period arrive
# --------------------------------------------------------------------------------------

def _receipts(org: _Org, periods: list[int], seed: int) -> dict[int, tuple[datetime, bool] | None]:
    """period -> (received at, late) or None when nothing was sent that month."""
    rng = random.Random(f"{seed}/{org.code}/receipts")
    late_p = {"voluntary": 0.2, "independent": 0.15}.get(org.type, 0.1 if org.index % 3 == 2 else 0.03)
    miss_p = {"voluntary": 0.05, "independent": 0.04}.get(org.type, 0.015)
    out: dict[int, tuple[datetime, bool] | None] = {}
    for mo in periods:
        r_miss, r_late, r_day, r_min = rng.random(), rng.random(), rng.random(), rng.randrange(9 * 60, 17 * 60 - 30)
        if r_miss < miss_p and mo != periods[-1]:
            out[mo] = None
            continue
        late = r_late < late_p
        days = _working_days(mo + 1, 11, 20) if late else _working_days(mo + 1, 2, 9)
        d = days[int(r_day * len(days))]
        out[mo] = (datetime(d.year, d.month, d.day, r_min // 60, r_min % 60, tzinfo=UTC), late)
    return out


# --------------------------------------------------------------------------------------
# Sender styles: how each organisation lays out and formats its returns
# --------------------------------------------------------------------------------------

class _F:
    """An xlsx cell with a number format: ('date' | 'month' | 'pct0' | 'pct1', value)."""

    __slots__ = ("fmt", "v")

    def __init__(self, fmt: str, v: object) -> None:
        self.fmt, self.v = fmt, v


class _Formula:
    __slots__ = ("text", "cached")

    def __init__(self, text: str, cached: float) -> None:
        self.text, self.cached = text, cached


@dataclass(frozen=True)
class _Style:
    name: str
    enrol_cols: tuple[tuple[str | None, str], ...]
    reg_cols: tuple[tuple[str | None, str], ...]
    meas_cols: tuple[tuple[str | None, str], ...] | None   # None: wide form
    date_style: str                 # excel, uk_text, iso, d_mon_yyyy, dd_mon_yy, serial, mixed
    period_style: str = "excel_month"  # excel_month, label, iso, excel_date
    pct_style: str = "number"       # number, text, excel
    value_with_counts: bool = True  # value given alongside numerator/denominator
    den_text: bool = False          # big denominators as text "1,234"
    prof_syn: float = 0.0
    status_syn: float = 0.0
    code_mess: float = 0.0
    category_shown: bool = False    # measure type / direction / project status synonyms
    wide_headers: str = ""          # labels or dates


def _snake(cols: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((c, c) for c in cols)


_ENROL_CANON = tuple(c.name for c in ENROLMENT.columns)
_REG_CANON = tuple(c.name for c in REGISTER.columns)
_MEAS_CANON = tuple(c.name for c in MEASURES.columns)


def _titled(cols: tuple[str, ...], special: dict[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    special = special or {}
    return tuple((c, special.get(c, c.replace("_", " ").title())) for c in cols)


STYLES: dict[str, _Style] = {
    # The lead trust: one workbook, Instructions + three datasets + a hidden Lists sheet.
    "lead": _Style(
        "lead",
        _titled(_ENROL_CANON, {"staff_id": "Staff ID", "project_id": "Project ID"}),
        _titled(_REG_CANON, {"project_id": "Project ID"}),
        _titled(_MEAS_CANON, {"project_id": "Project ID"}),
        date_style="excel", period_style="excel_month", pct_style="number", prof_syn=0.05),
    # Synonym headers, a title row, UK text dates; projects in a workbook with wide measures.
    "xlsx_wide_labels": _Style(
        "xlsx_wide_labels",
        (("organisation_code", "Organization Code"), ("staff_id", "Payroll No"), ("first_name", "Forename"),
         ("surname", "Surname"), ("email", "Email Address"), ("profession", "Professional Group"),
         ("service_area", "Directorate"), ("team", "Team Name"), ("job_title", "Role"), ("band", "AfC Band"),
         ("mentor", "QI Mentor"), ("cohort_code", "Cohort"), ("enrolment_date", "Date Enrolled"),
         ("status", "Current Status"), ("status_date", "Date Status Changed"),
         ("withdrawal_reason", "Reason for Withdrawal"), ("project_id", "Project Ref")),
        (("project_id", "Project Ref"), ("organisation_code", "Organization Code"), ("cohort_code", "Cohort"),
         ("title", "Project Title"), ("aim", "Aim Statement"), ("team", "Project Team"), ("service_area", "Directorate"),
         ("measure_name", "Primary Measure"), ("measure_type", "Type of Measure"), ("unit", "Units"),
         ("improvement_direction", "Direction of Improvement"), ("target", "Target Value"),
         ("intervention_date", "Change Date"), ("status", "Project Status")),
        None, date_style="uk_text", prof_syn=0.3, wide_headers="labels"),
    # CSV: UTF-8 with BOM (enrolment), ISO dates, "85%" text, "1,234" text, Apr-25 periods.
    "csv_bom": _Style(
        "csv_bom", _snake(_ENROL_CANON), _snake(_REG_CANON), _snake(_MEAS_CANON),
        date_style="iso", period_style="label", pct_style="text", value_with_counts=False, den_text=True,
        prof_syn=0.1),
    # Three title rows, "3 Apr 2025" dates, a notes row; wide measures with date headers, 0% cells.
    "xlsx_titles": _Style(
        "xlsx_titles",
        (("organisation_code", "Org Code"), ("staff_id", "Staff Number"), ("first_name", "First name"),
         ("surname", "Last name"), ("email", "Work email"), ("profession", "Staff Group"),
         ("service_area", "Department"), ("team", "Team"), ("job_title", "Job Role"), ("band", "Pay Band"),
         ("mentor", "Coach"), ("cohort_code", "Intake"), ("enrolment_date", "Enrolled On"),
         ("status", "Enrolment Status"), ("status_date", "Date of Status"), ("withdrawal_reason", "Reason Withdrawn"),
         ("project_id", "Project Code")),
        (("project_id", "Project Code"), ("organisation_code", "Org Code"), ("cohort_code", "Intake"),
         ("title", "Project Name"), ("aim", "Project Aim"), ("team", "Team Name"), ("service_area", "Care Group"),
         ("measure_name", "Outcome Measure"), ("measure_type", "Measure Kind"), ("unit", "Unit of Measure"),
         ("improvement_direction", "Improvement Is"), ("target", "Goal"), ("intervention_date", "Intervention Start"),
         ("status", "Project Status")),
        None, date_style="d_mon_yyyy", pct_style="excel", status_syn=0.25, category_shown=True,
        wide_headers="dates"),
    # Excel serial numbers for dates, an unknown Comments column, 0.0% cells, "1,234" text.
    "xlsx_serial": _Style(
        "xlsx_serial",
        (("organisation_code", "Org"), ("staff_id", "Staff No"), ("first_name", "Forename"),
         ("surname", "Family Name"), ("email", "E-mail"), ("profession", "Discipline"), ("service_area", "Service"),
         ("team", "Team"), ("job_title", "Post"), ("band", "Grade"), ("mentor", "Mentor Name"),
         ("cohort_code", "Cohort ID"), ("enrolment_date", "Start Date"), ("status", "Participant Status"),
         ("status_date", "Status Changed"), ("withdrawal_reason", "Withdrawal Reason"),
         ("project_id", "Project Number"), (None, "Comments")),
        (("project_id", "Project Number"), ("organisation_code", "Org"), ("cohort_code", "Cohort ID"),
         ("title", "Name of Project"), ("aim", "Aim"), ("team", "Team"), ("service_area", "Service"),
         ("measure_name", "Measure"), ("measure_type", "Measure Type"), ("unit", "Unit"),
         ("improvement_direction", "Direction"), ("target", "Target"), ("intervention_date", "Date of Change"),
         ("status", "Status"), (None, "Comments")),
        (("project_id", "Project Number"), ("measure_name", "Measure"), ("period", "Period Start"),
         ("numerator", "Num"), ("denominator", "Denom"), ("value", "Result"), (None, "Comments")),
        date_style="serial", period_style="excel_date", pct_style="excel", den_text=True, prof_syn=0.15),
    # Windows-1252 CSV: accented names, '£', "03-Apr-25" dates, SW / Social Worker.
    "csv_1252": _Style(
        "csv_1252",
        (("organisation_code", "Organisation"), ("staff_id", "Staff Ref"), ("first_name", "Given Name"),
         ("surname", "Surname"), ("email", "Email"), ("profession", "Professional Group"), ("service_area", "Service"),
         ("team", "Team"), ("job_title", "Role"), ("mentor", "Mentor"), ("cohort_code", "Cohort"),
         ("enrolment_date", "Date Enrolled"), ("status", "Status"), ("status_date", "Status Date"),
         ("withdrawal_reason", "Reason for withdrawal"), ("project_id", "Project")),
        (("project_id", "Project"), ("organisation_code", "Organisation"), ("cohort_code", "Cohort"),
         ("title", "Project Title"), ("aim", "Aim"), ("team", "Team"), ("service_area", "Service"),
         ("measure_name", "Measure Name"), ("measure_type", "Measure Type"), ("unit", "Unit"),
         ("improvement_direction", "Direction"), ("target", "Target"), ("intervention_date", "Change Date"),
         ("status", "Status")),
        (("project_id", "Project"), ("measure_name", "Measure"), ("period", "Period"), ("numerator", "Numerator"),
         ("denominator", "Denominator"), ("value", "Value")),
        date_style="dd_mon_yy", period_style="iso", pct_style="text", prof_syn=0.6, category_shown=True),
    # Lower-case codes with spaces, mixed dates, a Total row and a notes row; Instructions sheet.
    "xlsx_messy": _Style(
        "xlsx_messy",
        (("organisation_code", "ORG CODE"), ("staff_id", "Employee Number"), ("first_name", "First Name"),
         ("surname", "Surname"), ("profession", "Professional Group"), ("service_area", "Service"), ("team", "Team"),
         ("job_title", "Job Title"), ("mentor", "Mentor"), ("cohort_code", "Cohort"),
         ("enrolment_date", "Enrolment date"), ("status", "Status"), ("status_date", "Status date"),
         ("withdrawal_reason", "Withdrawal reason"), ("project_id", "Project"), (None, "Notes")),
        (("project_id", "Project ID"), ("organisation_code", "Org Code"), ("cohort_code", "Cohort"),
         ("title", "Project Title"), ("aim", "Aim"), ("team", "Team"), ("service_area", "Service"),
         ("measure_name", "Measure Name"), ("measure_type", "Measure Type"), ("unit", "Unit"),
         ("improvement_direction", "Improvement Direction"), ("target", "Target"),
         ("intervention_date", "Intervention Date"), ("status", "Project Status")),
        _titled(_MEAS_CANON, {"project_id": "Project ID"}),
        date_style="mixed", period_style="excel_date", pct_style="number", prof_syn=0.5, status_syn=0.1,
        code_mess=1.0),
}
_PARTNER_STYLES = ("xlsx_wide_labels", "csv_bom", "xlsx_titles", "xlsx_serial")


def _assign_styles(orgs: list[_Org]) -> dict[str, _Style]:
    out: dict[str, _Style] = {}
    k = 0
    seen: set[str] = set()
    for o in orgs:
        if o.type == "lead trust" and "lead" not in seen:
            name = "lead"
        elif o.type == "voluntary" and "csv_1252" not in seen:
            name = "csv_1252"
        elif o.type == "independent" and "xlsx_messy" not in seen:
            name = "xlsx_messy"
        else:
            name = _PARTNER_STYLES[k % len(_PARTNER_STYLES)]
            k += 1
        seen.add(name)
        out[o.code] = STYLES[name]
    return out


# --------------------------------------------------------------------------------------
# Tables and files
# --------------------------------------------------------------------------------------

@dataclass
class _Mark:
    row: list          # the row object (identity) in the table
    column: str        # canonical column
    problem: str
    dataset: str
    value: object
    message: str
    first_copy: list | None = None


@dataclass
class _Table:
    sheet: str
    header: list[str] | None
    columns: list[str | None]
    rows: list[list]
    above: list[list] = field(default_factory=list)
    below: list[list] = field(default_factory=list)
    hidden: bool = False
    marks: list[_Mark] = field(default_factory=list)
    widths: dict[int, float] = field(default_factory=dict)


@dataclass
class _File:
    relpath: str
    kind: str                # xlsx, csv, raw
    received: datetime
    tables: list[_Table] = field(default_factory=list)
    encoding: str = "utf-8"
    raw: bytes = b""
    title: str = ""
    author: str = ""
    created: datetime | None = None
    rejected: str = ""       # why the whole file must be rejected, for the planted unreadable files


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _csv_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    raise TypeError(f"cannot write {type(v).__name__} to CSV")


def _write_csv(path: Path, f: _File) -> None:
    t = f.tables[0]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    for r in t.above:
        w.writerow([_csv_text(v) for v in r])
    w.writerow(t.header)
    for r in t.rows:
        w.writerow([_csv_text(v) for v in r])
    for r in t.below:
        w.writerow([_csv_text(v) for v in r])
    path.write_bytes(buf.getvalue().encode(f.encoding))


def _write_xlsx(path: Path, f: _File) -> None:
    wb = xlsxwriter.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"title": f.title, "author": f.author, "company": f.author, "created": f.created})
    fmts = {
        "date": wb.add_format({"num_format": "dd/mm/yyyy"}),
        "month": wb.add_format({"num_format": "mmm-yy"}),
        "pct0": wb.add_format({"num_format": "0%"}),
        "pct1": wb.add_format({"num_format": "0.0%"}),
        "num1": wb.add_format({"num_format": "0.0"}),
    }
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    date_fmt = fmts["date"]
    for t in f.tables:
        ws = wb.add_worksheet(t.sheet)
        for c, wdt in t.widths.items():
            ws.set_column(c, c, wdt)
        r = 0
        for line in t.above:
            for c, v in enumerate(line):
                if v is not None:
                    ws.write_string(r, c, str(v), bold if r == 0 else None)
            r += 1
        if t.header is not None:
            for c, h in enumerate(t.header):
                if isinstance(h, _F):
                    ws.write_datetime(r, c, h.v, fmts[h.fmt])
                else:
                    ws.write_string(r, c, h, head)
            r += 1
        for row in (*t.rows, *t.below):
            for c, v in enumerate(row):
                if v is None:
                    continue
                tv = type(v)
                if tv is str:
                    ws.write_string(r, c, v)
                elif tv is int or tv is float:
                    ws.write_number(r, c, v)
                elif tv is date:
                    ws.write_datetime(r, c, v, date_fmt)
                elif tv is _F:
                    if isinstance(v.v, date):
                        ws.write_datetime(r, c, v.v, fmts[v.fmt])
                    else:
                        ws.write_number(r, c, v.v, fmts[v.fmt])
                elif tv is _Formula:
                    ws.write_formula(r, c, v.text, fmts["num1"], v.cached)
                else:
                    raise TypeError(f"cannot write {tv.__name__} to xlsx")
            r += 1
        if t.hidden:
            ws.hide()
    wb.close()


# --------------------------------------------------------------------------------------
# Building one organisation's files for one period
# --------------------------------------------------------------------------------------

_PROBLEMS: tuple[tuple[str, str], ...] = (
    ("unknown_cohort", ENROLMENT_RETURN),
    ("impossible_date", ENROLMENT_RETURN),
    ("pct_over_100", MEASURE_DATA),
    ("withdrawn_without_status_date", ENROLMENT_RETURN),
    ("staff_id_punctuation", ENROLMENT_RETURN),
    ("numerator_over_denominator", MEASURE_DATA),
    ("duplicate_participant", ENROLMENT_RETURN),
    ("unknown_organisation", ENROLMENT_RETURN),
    ("denominator_zero", MEASURE_DATA),
    ("staff_id_too_short", ENROLMENT_RETURN),
    ("project_unknown_cohort", PROJECT_REGISTER),
)
_PROBLEM_DATASET = dict(_PROBLEMS)


@dataclass
class _OrgJob:
    org: _Org
    style: _Style
    sim: _OrgSim
    periods: list[int]
    receipts: dict[int, tuple[datetime, bool] | None]
    problems: dict[int, list[str]]
    rejects: dict[int, str]
    org_codes: tuple[str, ...]
    cohort_codes: tuple[str, ...]
    seed: int
    lead_contact: str


@dataclass
class _OrgResult:
    files: list[tuple[str, datetime]]
    participants: list[tuple[str, str, str, str]]  # org, staff_id, cohort, programme year
    projects: list[str]
    measure_keys: list[tuple[str, str, str]]
    bad_rows: dict[str, int]
    planted: list[dict]
    rejected: list[str]
    submissions: dict[str, str]


class _Builder:
    """Renders one organisation's returns in its style, month by month."""

    def __init__(self, job: _OrgJob) -> None:
        self.job = job
        self.org = job.org
        self.st = job.style
        self.sim = job.sim
        self.participants: dict[tuple[str, str, str], str] = {}
        self.projects: dict[str, None] = {}
        self.max_sent: dict[str, int] = {}
        self.sec_sent: dict[str, int] = {}
        self.bad = {ENROLMENT_RETURN: 0, PROJECT_REGISTER: 0, MEASURE_DATA: 0}
        self.first_sent: dict[str, int] = {}
        for mo in job.periods:
            if job.receipts.get(mo) is None:
                continue
            for p in self.sim.projects:
                if p.pid not in self.first_sent and p.listed_from <= mo <= p.listed_to:
                    self.first_sent[p.pid] = mo
        # One sender pastes a title that a spreadsheet would run as a formula (SPEC 3.2:
        # titles are untrusted); it is still a valid title.
        self.formula_pid = next(iter(self.first_sent), None) if self.st.name == "csv_bom" else None
        self._meas_cache: dict[tuple[str, int, bool], list] = {}

    # ---- value renderers ------------------------------------------------------------
    def code(self, text: str, flavour: float) -> str:
        if self.st.code_mess and flavour < self.st.code_mess:
            low = text.lower()
            return (" " + low) if flavour < 0.3 else (low + " ") if flavour < 0.6 else f" {low} " if flavour < 0.8 else low
        return text

    def date(self, d: date | None, flavour: float) -> object:
        if d is None:
            return None
        s = self.st.date_style
        if s == "mixed":
            s = "excel" if flavour < 0.75 else "iso" if flavour < 0.9 else "uk_text"
        if s == "uk_text" and self.st.name == "xlsx_wide_labels" and d.year >= 2025 and flavour < 0.8:
            s = "excel"  # this sender's template changed: real dates from 2025
        if s == "excel":
            return d
        if s == "serial":
            return _serial(d)
        if s == "iso":
            return d.isoformat()
        if s == "uk_text":
            return f"{d.day:02d}/{d.month:02d}/{d.year}"
        if s == "d_mon_yyyy":
            return f"{d.day} {calendar.month_abbr[d.month]} {d.year}"
        if s == "dd_mon_yy":
            return f"{d.day:02d}-{calendar.month_abbr[d.month]}-{d.year % 100:02d}"
        raise ValueError(s)

    def profession(self, prof: str, flavour: float) -> str:
        if flavour < self.st.prof_syn:
            shown = PROFESSION_SHOWN[prof]
            return shown[int(flavour * 1000) % len(shown)]
        return prof

    def status(self, status: str, flavour: float) -> str:
        if (1 - flavour) < self.st.status_syn:
            return STATUS_SHOWN[status]
        return status

    def period(self, d: date, weekly: bool) -> object:
        s = self.st.period_style
        if s == "excel_month":
            return _F("date" if weekly else "month", d)
        if s == "excel_date":
            return d
        if s == "iso":
            return d.isoformat()
        if s == "label":
            return d.isoformat() if weekly else f"{calendar.month_abbr[d.month]}-{d.year % 100:02d}"
        raise ValueError(s)

    def pct(self, v: float) -> object:
        if self.st.pct_style == "text":
            return f"{v:.1f}%"
        if self.st.pct_style == "excel":
            return _F("pct1", v / 100)
        return v

    def den(self, d: int | None) -> object:
        if d is not None and self.st.den_text and d >= 1000:
            return f"{d:,}"
        return d

    # ---- rows -------------------------------------------------------------------------
    def enrol_row(self, en: _Enrolment, mo: int, **override: object) -> list:
        p = en.person
        fl = p.flavour
        status, sdate = en.state(mo)
        pid = en.project.pid if en.project is not None and mo > self.first_sent.get(en.project.pid, 10 ** 9) else None
        vals = {
            "organisation_code": self.code(self.org.code, fl),
            "staff_id": p.staff_id,
            "first_name": p.first,
            "surname": p.surname,
            "email": p.email,
            "profession": self.profession(p.profession, fl),
            "service_area": en.service_area,
            "team": en.team,
            "job_title": p.job_title,
            "band": p.band or None,
            "mentor": en.mentor,
            "cohort_code": self.code(en.cohort.code, fl),
            "enrolment_date": self.date(en.enrol_date, fl),
            "status": self.status(status, fl),
            "status_date": self.date(sdate, fl),
            "withdrawal_reason": en.reason if status == "Withdrawn" else None,
            "project_id": self.code(pid, fl) if pid else None,
        }
        vals.update(override)
        out = []
        for canon, _ in self.st.enrol_cols:
            if canon is None:
                out.append(self._extra(fl))
            else:
                out.append(vals[canon])
        return out

    def _extra(self, fl: float) -> str | None:
        if self.st.name == "xlsx_messy":
            return ("Part-time", "Bank staff", "Nights", None, None, None, None)[int(fl * 700) % 7]
        return ("Joined from the waiting list", None, None, None, None)[int(fl * 500) % 5]

    def register_row(self, p: _Project, mo: int, **override: object) -> list:
        fl = p.flavour
        st = self.st
        t = p.tpl
        shown = st.category_shown and fl < 0.6
        target: object = p.target
        if st.pct_style == "text" and t.mtype == "percentage":
            target = f"{_fmt_num(p.target)}%"
        vals = {
            "project_id": self.code(p.pid, fl),
            "organisation_code": self.code(self.org.code, fl),
            "cohort_code": self.code(p.cohort.code, fl),
            "title": (f'=HYPERLINK("https://example.org/qi","{p.title}")' if p.pid == self.formula_pid
                      else p.title),
            "aim": p.aim if not (st.name == "csv_bom" and fl < 0.3) else p.aim.replace(" by ", "\nby ", 1),
            "team": p.team,
            "service_area": p.service_area,
            "measure_name": t.measure,
            "measure_type": MEASURE_TYPE_SHOWN[t.mtype] if shown else t.mtype,
            "unit": t.unit,
            "improvement_direction": DIRECTION_SHOWN[t.direction] if shown else t.direction,
            "target": target,
            "intervention_date": self.date(p.intervention, fl),
            "status": PROJECT_STATUS_SHOWN[p.status(mo)] if shown and fl < 0.3 else p.status(mo),
        }
        vals.update(override)
        return [vals[c] if c is not None else None for c, _ in st.reg_cols]

    def measure_row(self, p: _Project, measure: str, pt: _Point, primary: bool, **override: object) -> list:
        pct = primary and p.tpl.mtype == "percentage"
        num = pt.num
        den = pt.den
        if pct:
            value = self.pct(pt.value) if (num is None or self.st.value_with_counts) else None
        else:
            value = pt.value
        vals = {"project_id": self.code(p.pid, p.flavour), "measure_name": measure,
                "period": self.period(pt.period, p.weekly and primary),
                "numerator": num, "denominator": self.den(den), "value": value}
        vals.update(override)
        return [vals[c] if c is not None else None for c, _ in self.st.meas_cols or ()]

    # ---- tables ---------------------------------------------------------------------
    def enrolment_table(self, mo: int, sheet: str, problems: list[str], rng: random.Random) -> _Table | None:
        listed = [en for en in self.sim.enrolments if en.listed(mo)]
        if not listed:
            return None
        listed.sort(key=lambda en: (en.cohort.start, en.cohort.code, _ascii(en.person.surname), en.person.staff_id))
        rows = []
        for en in listed:
            rows.append(self.enrol_row(en, mo))
            self.participants[(self.org.code, en.person.staff_id, en.cohort.code)] = en.cohort.year
        t = _Table(sheet, [h for _, h in self.st.enrol_cols], [c for c, _ in self.st.enrol_cols], rows,
                   widths={i: 16 for i in range(len(self.st.enrol_cols))})
        for prob in problems:
            if _PROBLEM_DATASET[prob] == ENROLMENT_RETURN:
                self._plant_enrolment(t, listed, mo, prob, rng)
        return t

    def _fake_enrolment(self, listed: list[_Enrolment], mo: int, rng: random.Random) -> _Enrolment:
        running = [en for en in listed if en.state(mo)[0] in ("Active", "Enrolled")] or listed
        tpl = rng.choice(running)
        first, sur = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
        local = ".".join(re.sub(r"[^a-z]", "", _ascii(x).lower()) for x in (first, sur))
        person = _Person(_new_staff_id(rng, self.sim.id_format, self.sim.used_ids), first, sur,
                         f"{local}9@{self.sim.domain}", tpl.person.profession, tpl.person.job_title, tpl.person.band, tpl.person.flavour)
        far = date(9999, 12, 31)
        return _Enrolment(person, tpl.cohort, tpl.enrol_date, "Completed", far, "", tpl.team, tpl.service_area,
                          tpl.mentor, None, None)

    def _plant_enrolment(self, t: _Table, listed: list[_Enrolment], mo: int, prob: str, rng: random.Random) -> None:
        fake = self._fake_enrolment(listed, mo, rng)
        fl = fake.person.flavour
        col, value, msg = "", None, ""
        if prob == "unknown_cohort":
            value = self.code(f"C{(mo // 12) % 100:02d}C", fl)
            row = self.enrol_row(fake, mo, cohort_code=value)
            col, msg = "cohort_code", f"cohort code {value.strip().upper()} is not in cohorts.csv"
        elif prob == "impossible_date":
            value = f"31/02/{fake.cohort.start.year}"
            row = self.enrol_row(fake, mo, enrolment_date=value)
            col, msg = "enrolment_date", f"enrolment date {value} does not exist (February has no 31st)"
        elif prob == "withdrawn_without_status_date":
            row = self.enrol_row(fake, mo, status=self.status("Withdrawn", fl), status_date=None,
                                 withdrawal_reason=rng.choice(WITHDRAWAL_REASONS))
            col, msg = "status_date", "status is Withdrawn but the status date is blank"
        elif prob == "staff_id_punctuation":
            sid = fake.person.staff_id
            value = sid[:2] + rng.choice("-/.") + sid[2:]
            row = self.enrol_row(fake, mo, staff_id=value)
            col, msg = "staff_id", f"staff id {value} contains punctuation (letters and digits only)"
        elif prob == "staff_id_too_short":
            value = fake.person.staff_id[:2]
            row = self.enrol_row(fake, mo, staff_id=value)
            col, msg = "staff_id", f"staff id {value} is too short (3 to 20 letters or digits)"
        elif prob == "unknown_organisation":
            c = self.org.code
            value = next((x for x in (c[0] + c[2] + c[1] + c[3:], c[1] + c[0] + c[2:], "ZZ9")
                          if x not in self.job.org_codes and x != c), "ZZ9")
            row = self.enrol_row(fake, mo, organisation_code=value)
            col, msg = "organisation_code", f"organisation code {value} is not in organisations.csv"
        elif prob == "duplicate_participant":
            i = rng.randrange(len(t.rows))
            original = t.rows[i]
            row = list(original)
            pos = rng.randint(i + 1, len(t.rows))
            t.rows.insert(pos, row)
            sid_col = t.columns.index("staff_id")
            t.marks.append(_Mark(row, "staff_id", prob, ENROLMENT_RETURN, row[sid_col],
                                 f"second copy of the row for staff id {row[sid_col]}", first_copy=original))
            self.bad[ENROLMENT_RETURN] += 1
            return
        else:
            raise ValueError(prob)
        if col != "status_date":
            value = row[t.columns.index(col)]
        t.rows.insert(rng.randint(0, len(t.rows)), row)
        t.marks.append(_Mark(row, col, prob, ENROLMENT_RETURN, value, msg))
        self.bad[ENROLMENT_RETURN] += 1

    def register_table(self, mo: int, sheet: str, problems: list[str], rng: random.Random) -> _Table | None:
        listed = [p for p in self.sim.projects if p.listed_from <= mo <= p.listed_to]
        if not listed:
            return None
        rows = [self.register_row(p, mo) for p in listed]
        for p in listed:
            self.projects[p.pid] = None
        t = _Table(sheet, [h for _, h in self.st.reg_cols], [c for c, _ in self.st.reg_cols], rows,
                   widths={i: 18 for i in range(len(self.st.reg_cols))})
        if "project_unknown_cohort" in problems:
            src = rng.choice(listed)
            fl = src.flavour
            bogus = f"{src.pid.rsplit('-', 1)[0]}-{900 + rng.randint(0, 99)}"
            value = self.code(f"C{(mo // 12) % 100:02d}C", fl)
            row = self.register_row(src, mo, project_id=self.code(bogus, fl), cohort_code=value,
                                    title=f"{src.tpl.title} (second site)")
            t.rows.insert(rng.randint(0, len(t.rows)), row)
            t.marks.append(_Mark(row, "cohort_code", "project_unknown_cohort", PROJECT_REGISTER, value,
                                 f"cohort code {value.strip().upper()} is not in cohorts.csv"))
            self.bad[PROJECT_REGISTER] += 1
        return t

    def measure_series(self, mo: int) -> list[tuple[_Project, str, list[_Point], bool]]:
        out = []
        for p in self.sim.projects:
            if not p.listed_from <= mo <= p.listed_to:
                continue
            n = p.sent_points(mo)
            if n:
                out.append((p, p.tpl.measure, [p.point(i, mo) for i in range(n)], True))
                self.max_sent[p.pid] = max(self.max_sent.get(p.pid, 0), n)
            if p.secondary is not None:
                name, pts = p.secondary
                k = bisect.bisect_right([x.period for x in pts], _eom(mo))
                if k:
                    out.append((p, name, pts[:k], False))
                    self.sec_sent[p.pid] = max(self.sec_sent.get(p.pid, 0), k)
        return out

    def measures_long(self, mo: int, sheet: str, problems: list[str], rng: random.Random) -> _Table | None:
        series = self.measure_series(mo)
        if not series:
            return None
        rows = []
        for p, name, pts, primary in series:
            for i, pt in enumerate(pts):
                key = (p.pid, name, i, pt is p.points[i] if primary else True)
                row = self._meas_cache.get(key)
                if row is None:
                    row = self.measure_row(p, name, pt, primary)
                    self._meas_cache[key] = row
                rows.append(row)
        cols = self.st.meas_cols or ()
        t = _Table(sheet, [h for _, h in cols], [c for c, _ in cols], rows,
                   widths={0: 16, 1: 48, 2: 12})
        for prob in problems:
            if _PROBLEM_DATASET[prob] != MEASURE_DATA:
                continue
            cands = [s for s in series if s[3] and s[0].tpl.mtype == "percentage" and not s[0].weekly]
            p, name, pts, _ = rng.choice(cands)
            period = _first(_mo_of(pts[0].period) - rng.randint(1, 3))
            d = pts[-1].den or rng.randint(20, 60)
            if prob == "pct_over_100":
                shown = self.pct(112.5)
                row = self.measure_row(p, name, _Point(period, None, None, 112.5), True)
                col, value, msg = "value", shown.v if isinstance(shown, _F) else shown, "percentage value 112.5 is over 100"
            elif prob == "numerator_over_denominator":
                row = self.measure_row(p, name, _Point(period, d + 3, d, 0.0), True, value=None)
                col, value, msg = "numerator", d + 3, f"numerator {d + 3} is greater than denominator {d}"
            else:
                row = self.measure_row(p, name, _Point(period, 0, 0, 0.0), True, value=None, denominator=0)
                col, value, msg = "denominator", 0, "denominator is 0"
            t.rows.insert(rng.randint(0, len(t.rows)), row)
            t.marks.append(_Mark(row, col, prob, MEASURE_DATA, value, msg))
            self.bad[MEASURE_DATA] += 1
        return t

    def measures_wide(self, mo: int, sheet: str) -> _Table | None:
        series = self.measure_series(mo)
        if not series:
            return None
        first = min(_mo_of(pts[0].period) for _, _, pts, _ in series)
        months = list(range(first, mo + 1))
        dates_hdr = self.st.wide_headers == "dates"
        header: list = ["Project Code" if dates_hdr else "Project Ref", "Measure Title" if dates_hdr else "Measure"]
        header += [_F("month", _first(m)) if dates_hdr else _mon_yy(m) for m in months]
        header.append("Average")
        rows = []
        excel_row0 = 4  # two title rows, a header; data starts on Excel row 4
        for p, name, pts, primary in series:
            cells: list = [None] * len(months)
            vals = []
            for pt in pts:
                v = pt.value
                vals.append(v)
                pct = primary and p.tpl.mtype == "percentage"
                cells[_mo_of(pt.period) - first] = _F("pct0", v / 100) if (pct and self.st.pct_style == "excel") else v
            avg = round(sum(vals) / len(vals), 2)
            if primary and p.tpl.mtype == "percentage" and self.st.pct_style == "excel":
                avg_cell: object = _F("pct0", avg / 100)
            elif dates_hdr:
                avg_cell = avg
            else:
                r = excel_row0 + len(rows)
                avg_cell = _Formula(f"=AVERAGE(C{r}:{_col_letter(len(months) + 1)}{r})", avg)
            rows.append([self.code(p.pid, p.flavour), name, *cells, avg_cell])
        widths = {0: 16, 1: 48, **{i + 2: 9 for i in range(len(months))}}
        title = "Monthly measure values" if not dates_hdr else f"Measure data to {_month_name(mo)}"
        return _Table(sheet, header, ["project_id", "measure_name", *(["period"] * len(months)), None], rows,
                      above=[[title], []], below=[[], ["Values for the latest month are provisional."]],
                      widths=widths)

    # ---- files ------------------------------------------------------------------------
    def files_for(self, mo: int) -> list[_File]:
        job = self.job
        got = job.receipts.get(mo)
        if got is None:
            return []
        received, _late = got
        rng = random.Random(f"{job.seed}/{self.org.code}/{mo}/render")
        problems = job.problems.get(mo, [])
        code = self.org.code
        folder = f"{code}/{_label(mo)}/"
        created = datetime(*(_first(mo + 1).timetuple()[:3]), 8, 0, 0)
        month = _month_name(mo)
        style = self.st.name
        files: list[_File] = []

        def xfile(name: str, tables: list[_Table], title: str, k: int) -> None:
            files.append(_File(folder + name, "xlsx", received + timedelta(minutes=2 * k), tables,
                               title=title, author=self.org.name, created=created))

        def cfile(name: str, table: _Table | None, enc: str, k: int) -> None:
            if table is not None:
                files.append(_File(folder + name, "csv", received + timedelta(minutes=2 * k), [table], encoding=enc))

        enrol_title = f"Enrolment return - {month}"
        if style == "lead":
            enrol = self.enrolment_table(mo, "Enrolment", problems, rng)
            reg = self.register_table(mo, "Projects", problems, rng)
            meas = self.measures_long(mo, "Measures", problems, rng)
            if meas is not None:
                meas.above = [[f"Measure data - {month}"], []]
            tabs = [t for t in (enrol, reg, meas) if t is not None]
            if tabs:
                tabs.insert(0, _Table("Instructions", None, [], [], widths={0: 110},
                                      above=_instructions(self.org, job.lead_contact, month)))
                tabs.append(_lists_sheet(job.cohort_codes))
                xfile(f"{code} QI monthly return {month}.xlsx", tabs, f"QI programme return {month}", 0)
        elif style == "xlsx_wide_labels":
            t = self.enrolment_table(mo, "Enrolment return", problems, rng)
            if t is not None:
                t.above = [[enrol_title], []]
                xfile(f"{code} enrolment return {month}.xlsx", [t], enrol_title, 0)
            reg = self.register_table(mo, "Register", problems, rng)
            if reg is not None:
                meas = self.measures_wide(mo, "Measures")
                xfile(f"{code} QI projects {_mon_yy(mo)}.xlsx", [reg] + ([meas] if meas else []),
                      f"QI projects {month}", 1)
        elif style == "csv_bom":
            t = self.enrolment_table(mo, "", problems, rng)
            if t is not None and mo % 3 == 0:
                t.above = [[enrol_title], []]
            cfile(f"{code}_enrolment_{_label(mo)}.csv", t, "utf-8-sig", 0)
            cfile(f"qi_projects_{_label(mo)}.csv", self.register_table(mo, "", problems, rng), "utf-8", 1)
            cfile(f"qi_measures_{_label(mo)}.csv", self.measures_long(mo, "", problems, rng), "utf-8", 2)
        elif style == "xlsx_titles":
            t = self.enrolment_table(mo, "Sheet1", problems, rng)
            if t is not None:
                t.above = [[enrol_title], [self.org.name], []]
                t.below = [[], ["Source: ESR extract. Figures for the latest month are provisional."]]
                xfile(f"Enrolment return {month} - {code}.xlsx", [t], enrol_title, 0)
            reg = self.register_table(mo, "Project register", problems, rng)
            if reg is not None:
                meas = self.measures_wide(mo, "Measure data")
                xfile(f"{code} project returns {_label(mo)}.xlsx", [reg] + ([meas] if meas else []),
                      f"Project returns {month}", 1)
        elif style == "xlsx_serial":
            t = self.enrolment_table(mo, "Enrolment", problems, rng)
            if t is not None:
                xfile(f"{code}_QI_enrolment_{calendar.month_abbr[mo % 12 + 1]}{mo // 12}.xlsx", [t], enrol_title, 0)
            reg = self.register_table(mo, "Projects", problems, rng)
            if reg is not None:
                meas = self.measures_long(mo, "Data", problems, rng)
                xfile(f"{code} QI projects and measures {_label(mo)}.xlsx", [reg] + ([meas] if meas else []),
                      f"QI projects and measures {month}", 1)
        elif style == "csv_1252":
            t = self.enrolment_table(mo, "", problems, rng)
            if t is not None:
                t.above = [[f"{self.org.name} - enrolment return {month}"], []]
            cfile(f"{code} enrolment {month}.csv", t, "cp1252", 0)
            cfile(f"{code} projects {month}.csv", self.register_table(mo, "", problems, rng), "cp1252", 1)
            cfile(f"{code} measures {month}.csv", self.measures_long(mo, "", problems, rng), "cp1252", 2)
        elif style == "xlsx_messy":
            t = self.enrolment_table(mo, "Participants", problems, rng)
            if t is not None:
                t.below = [["Total", len(t.rows)], [],
                           [f"Notes: list taken from the rota system on {created:%d/%m/%Y}."]]
                xfile(f"{code} QI enrolment {calendar.month_abbr[mo % 12 + 1].upper()} {mo // 12}.xlsx", [t],
                      enrol_title, 0)
            reg = self.register_table(mo, "Register", problems, rng)
            if reg is not None:
                tabs = [_Table("Instructions", None, [], [], above=_instructions(self.org, job.lead_contact, month),
                               widths={0: 110}), reg]
                meas = self.measures_long(mo, "Monthly data", problems, rng)
                if meas is not None:
                    tabs.append(meas)
                xfile(f"{code} QI projects {_label(mo)}.xlsx", tabs, f"QI projects {month}", 1)
        else:  # pragma: no cover
            raise ValueError(style)
        reject = job.rejects.get(mo)
        if reject:
            files.insert(0, self._rejected_file(folder, mo, reject, received))
        return files

    def _rejected_file(self, folder: str, mo: int, kind: str, received: datetime) -> _File:
        month = _month_name(mo)
        when = received - timedelta(hours=3)
        if kind == "renamed_text":
            text = (f"Enrolment return - {month}\r\n"
                    "organisation_code,staff_id,cohort_code,enrolment_date,status\r\n")
            return _File(folder + f"{self.org.code} enrolment return {month} (export).xlsx", "raw", when,
                         raw=text.encode("utf-8"), rejected="a text file saved with an .xlsx name")
        tabs = [_Table("Instructions", None, [], [], above=_instructions(self.org, self.job.lead_contact, month),
                       widths={0: 110})]
        return _File(folder + "QI return template (blank).xlsx", "xlsx", when, tabs,
                     title="QI return template", author=self.org.name,
                     created=datetime(*(_first(mo + 1).timetuple()[:3]), 7, 0, 0),
                     rejected="a blank template: no sheet holds a dataset")


def _instructions(org: _Org, contact: str, month: str) -> list[list]:
    return [
        [f"QI programme monthly return - {month}"],
        [],
        ["How to complete this return"],
        ["1. Enrolment: one row per participant per cohort. List everyone on the programme now and anyone "
         "who finished or left in the last three months."],
        ["2. Projects: one row per project (the register entry). Keep the project reference the same every month."],
        ["3. Measure data: one row per project, measure and month (or week). Re-send the whole series each month "
         "and correct earlier values if the figures have changed."],
        ["Dates as dd/mm/yyyy. Percentages as numbers between 0 and 100."],
        [f"Please send the return by the 10th of the following month to {contact}."],
        [f"Sender: {org.name}"],
    ]


def _lists_sheet(cohort_codes: tuple[str, ...]) -> _Table:
    n = max(len(PROFESSIONS), len(ENROLMENT_STATUSES), len(cohort_codes))
    rows = [[PROFESSIONS[i] if i < len(PROFESSIONS) else None,
             ENROLMENT_STATUSES[i] if i < len(ENROLMENT_STATUSES) else None,
             cohort_codes[i] if i < len(cohort_codes) else None] for i in range(n)]
    return _Table("Lists", ["Professions", "Statuses", "Cohorts"], [None, None, None], rows, hidden=True)


def _run_org(job: _OrgJob, landing: Path) -> _OrgResult:
    """Write every file one organisation sent; return what it wrote."""
    b = _Builder(job)
    files: list[tuple[str, datetime]] = []
    planted: list[dict] = []
    rejected: list[str] = []
    submissions: dict[str, str] = {}
    for mo in job.periods:
        got = job.receipts.get(mo)
        sent = b.files_for(mo)
        returned = any(not f.rejected for f in sent)  # nothing to report: nothing sent
        submissions[_label(mo)] = "not_sent" if got is None or not returned else ("late" if got[1] else "on_time")
        for f in sent:
            path = landing / f.relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            if f.kind == "xlsx":
                _write_xlsx(path, f)
            elif f.kind == "csv":
                _write_csv(path, f)
            else:
                path.write_bytes(f.raw)
            files.append((f.relpath, f.received))
            if f.rejected:
                rejected.append(f.relpath)
            planted.extend(_locate_marks(f, job.org.code, mo))
    measure_keys: list[tuple[str, str, str]] = []
    for p in job.sim.projects:
        for pt in p.points[: b.max_sent.get(p.pid, 0)]:
            measure_keys.append((p.pid, p.tpl.measure, pt.period.isoformat()))
        if p.secondary is not None:
            for pt in p.secondary[1][: b.sec_sent.get(p.pid, 0)]:
                measure_keys.append((p.pid, p.secondary[0], pt.period.isoformat()))
    participants = [(o, s, c, y) for (o, s, c), y in b.participants.items()]
    return _OrgResult(files, participants, list(b.projects), measure_keys, b.bad, planted, rejected, submissions)


def _locate_marks(f: _File, org: str, mo: int) -> list[dict]:
    out = []
    for t in f.tables:
        if not t.marks:
            continue
        header_row = len(t.above) + 1
        index = {id(r): i for i, r in enumerate(t.rows)}
        for m in t.marks:
            ci = t.columns.index(m.column)
            row = header_row + 1 + index[id(m.row)]
            entry = {
                "file": f.relpath, "sheet": t.sheet, "row": row, "column": m.column,
                "source_column": t.header[ci], "cell": f"{_col_letter(ci)}{row}", "header_row": header_row,
                "value": m.value, "dataset": m.dataset, "problem": m.problem, "message": m.message,
                "organisation_code": org, "period": _label(mo),
            }
            if m.first_copy is not None:
                entry["first_copy_row"] = header_row + 1 + index[id(m.first_copy)]
                entry["message"] += f" (first copy on row {entry['first_copy_row']})"
            out.append(entry)
    return out


# --------------------------------------------------------------------------------------
# Planning: which problems go where
# --------------------------------------------------------------------------------------

def _plan_problems(periods: list[int], orgs: list[_Org], sims: dict[str, _OrgSim], styles: dict[str, _Style],
                   receipts: dict[str, dict], seed: int) -> dict[str, dict[int, list[str]]]:
    """One planted problem every second month, cycling through the kinds, each in an
    organisation whose file that month can carry it."""
    rng = random.Random(f"{seed}/problems")
    plan: dict[str, dict[int, list[str]]] = {o.code: {} for o in orgs}
    k = 0
    for i, mo in enumerate(periods):
        if i % 2 == 0:
            continue
        prob, dataset = _PROBLEMS[k % len(_PROBLEMS)]
        eligible = []
        for o in orgs:
            if receipts[o.code].get(mo) is None:
                continue
            sim = sims[o.code]
            if dataset == ENROLMENT_RETURN:
                ok = any(en.listed(mo) for en in sim.enrolments)
            elif dataset == PROJECT_REGISTER:
                ok = any(p.listed_from <= mo <= p.listed_to for p in sim.projects)
            else:
                ok = styles[o.code].meas_cols is not None and any(
                    p.listed_from <= mo <= p.listed_to and p.tpl.mtype == "percentage" and not p.weekly
                    and p.sent_points(mo) for p in sim.projects)
            if ok:
                eligible.append(o.code)
        if not eligible:
            continue
        code = eligible[rng.randrange(len(eligible))]
        plan[code].setdefault(mo, []).append(prob)
        k += 1
    return plan


def _plan_rejects(periods: list[int], orgs: list[_Org], receipts: dict[str, dict]) -> dict[str, dict[int, str]]:
    """Two whole files that must be rejected: a text file renamed .xlsx (a third of the way
    through) and a workbook with only an Instructions sheet (two thirds of the way)."""
    out: dict[str, dict[int, str]] = {o.code: {} for o in orgs}
    if len(periods) < 3:
        return out
    for frac, kind, prefer in ((1 / 3, "renamed_text", -1), (2 / 3, "instructions_only", 3)):
        mo = periods[int(len(periods) * frac)]
        order = orgs[prefer:] + orgs[:prefer] if orgs else []
        for o in order:
            if receipts[o.code].get(mo) is not None and not out[o.code].get(mo):
                out[o.code][mo] = kind
                break
    return out


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

def generate(landing: Path, reference: Path, *, scale: float = 1.0, months: int = 36,
             end_period: str | None = None, seed: int = DEFAULT_SEED,
             orgs: list[str] | None = None, team_sizes: tuple[int, ...] = TEAM_SIZES) -> DemoTruth:
    """Write ``months`` reporting periods of synthetic submissions ending at ``end_period``
    (default: last month) into ``landing/<ORG>/<YYYY-MM>/`` and return what was written.

    ``scale`` multiplies participants and projects; ``orgs`` limits the organisations (codes
    from ``reference/organisations.csv``); ``team_sizes`` are the project team sizes drawn
    from (their mean sets projects per participant; the benchmark uses it). Same arguments,
    same bytes.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    if not scale > 0:
        raise ValueError("scale must be greater than 0")
    if not team_sizes or min(team_sizes) < 1:
        raise ValueError("team_sizes must be positive whole numbers")
    now = datetime.now(UTC)
    this_mo = _mo(now.year, now.month)
    end_mo = this_mo - 1 if end_period is None else _parse_period(end_period)
    if end_mo >= this_mo:
        raise ValueError(f"end_period {_label(end_mo)} must be before the current month ({_label(this_mo)})")
    landing = Path(landing)
    all_orgs, cohorts = _load_reference(reference)
    codes = [o.code for o in all_orgs]
    if orgs is not None:
        unknown = sorted(set(c.upper() for c in orgs) - set(codes))
        if unknown:
            raise ValueError(f"unknown organisation codes: {', '.join(unknown)}")
    chosen = [o for o in all_orgs if orgs is None or o.code in {c.upper() for c in orgs}]
    periods = list(range(end_mo - months + 1, end_mo + 1))
    styles = _assign_styles(all_orgs)
    alloc = _allocation(all_orgs, cohorts, scale)
    sims = {o.code: _simulate_org(o, cohorts, alloc, seed, styles[o.code].meas_cols is not None, tuple(team_sizes))
            for o in chosen}
    receipts = {o.code: _receipts(o, periods, seed) for o in chosen}
    problems = _plan_problems(periods, chosen, sims, styles, receipts, seed)
    rejects = _plan_rejects(periods, chosen, receipts)
    lead = next((o for o in all_orgs if o.type == "lead trust"), all_orgs[0])
    contacts = {r["code"].upper(): r.get("contacts", "") for r in _read_csv(Path(reference) / "organisations.csv")}
    lead_contact = (contacts.get(lead.code) or "the programme office").split(";")[0]
    jobs = [_OrgJob(o, styles[o.code], sims[o.code], periods, receipts[o.code], problems[o.code], rejects[o.code],
                    tuple(codes), tuple(c.code for c in cohorts), seed, lead_contact) for o in chosen]
    landing.mkdir(parents=True, exist_ok=True)
    results = _run_jobs(jobs, landing)

    # mtimes: received date-times, never in the future (nor inside the pipeline's quiet time).
    stamped = sorted((when, rel) for r in results for rel, when in r.files)
    cutoff = now - timedelta(hours=2)
    late = [x for x in stamped if x[0] > cutoff]
    for i, (when, rel) in enumerate(stamped):
        if when > cutoff:
            when = cutoff - timedelta(seconds=len(late) - late.index((when, rel)))
        ts = when.timestamp()
        os.utime(landing / rel, (ts, ts))

    year_of = {c.code: c.year for c in cohorts}
    participants = {(o, s, c) for r in results for o, s, c, _ in r.participants}
    by_org = {o.code: 0 for o in chosen}
    by_year: dict[str, int] = {}
    for o, _s, c in participants:
        by_org[o] += 1
        by_year[year_of[c]] = by_year.get(year_of[c], 0) + 1
    projects = {p for r in results for p in r.projects}
    measure_keys = {k for r in results for k in r.measure_keys if k[0] in projects}
    bad: dict[str, int] = {ENROLMENT_RETURN: 0, PROJECT_REGISTER: 0, MEASURE_DATA: 0}
    for r in results:
        for k, v in r.bad_rows.items():
            bad[k] += v
    planted = sorted((p for r in results for p in r.planted), key=lambda p: (p["period"], p["file"], p["row"]))
    return DemoTruth(
        files=sum(len(r.files) for r in results),
        periods=[_label(m) for m in periods],
        participants=len(participants),
        participants_by_org=by_org,
        projects=len(projects),
        measure_points=len(measure_keys),
        bad_rows=bad,
        planted=planted,
        rejected_files=sorted(x for r in results for x in r.rejected),
        participants_by_year=dict(sorted(by_year.items())),
        submissions={o.code: r.submissions for o, r in zip(chosen, results)},
    )


_JOBS: list[_OrgJob] = []
_PARALLEL_MIN_WORK = 50_000  # below this, starting worker processes costs more than it saves


def _run_job_index(args: tuple[int, str]) -> _OrgResult:
    i, landing = args
    return _run_org(_JOBS[i], Path(landing))


def _run_jobs(jobs: list[_OrgJob], landing: Path) -> list[_OrgResult]:
    """Write each organisation's files; in worker processes when there is a lot to write."""
    work = sum(len(j.sim.enrolments) + 10 * len(j.sim.projects) for j in jobs) * len(jobs[0].periods) if jobs else 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Forking a process that runs other threads can deadlock: stay single-process then.
    if cpus < 2 or len(jobs) < 2 or work < _PARALLEL_MIN_WORK or threading.active_count() > 1:
        return [_run_org(j, landing) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    if "fork" not in mp.get_all_start_methods():
        return [_run_org(j, landing) for j in jobs]
    global _JOBS
    _JOBS = jobs
    try:
        ctx = mp.get_context("fork")
        # Biggest first, so the lead trust does not finish last.
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].sim.enrolments))
        with ProcessPoolExecutor(max_workers=min(cpus, len(jobs)), mp_context=ctx) as pool:
            done = dict(zip(order, pool.map(_run_job_index, [(i, str(landing)) for i in order])))
        return [done[i] for i in range(len(jobs))]
    finally:
        _JOBS = []
