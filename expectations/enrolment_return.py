"""Suite for the enrolment return (SPEC 3.1): one row per participant per cohort."""

from __future__ import annotations

from expectations.checks import Check, cohort_known, in_list, organisation_known, passes, required
from transforms.datasets import ENROLMENT_RETURN, ENROLMENT_STATUSES, PROFESSIONS
from transforms.reference import Reference

DATASET = ENROLMENT_RETURN


def build(reference: Reference) -> list[Check]:
    return [
        required("organisation_code", "Organisation code"),
        # GX never sees a staff ID: it checks the keyed participant_key instead.
        required("staff_id", "Staff ID", checked="participant_key"),
        required("profession", "Profession"),
        required("service_area", "Service area"),
        required("cohort_code", "Cohort code"),
        required("enrolment_date", "Enrolment date"),
        required("status", "Status"),
        organisation_known(reference.org_codes),
        cohort_known(reference.cohort_codes),
        in_list(
            "profession",
            PROFESSIONS,
            rule="profession_in_list",
            message="Profession {value} is not one of the programme's professions.",
            fix="Choose a profession from the template's drop-down list.",
        ),
        in_list(
            "status",
            ENROLMENT_STATUSES,
            rule="status_in_list",
            message="Status {value} is not one of the allowed statuses.",
            fix="Choose a status from the template's drop-down list.",
        ),
        passes(
            "chk_staff_id_format",
            "staff_id",
            rule="staff_id_format",
            message="The staff ID must be 3 to 20 letters or digits, with no spaces or punctuation.",
            fix="Use the staff number from your payroll or HR system.",
            statement="3 to 20 letters or digits, no spaces or punctuation.",
        ),
        passes(
            "chk_enrolment_in_window",
            "enrolment_date",
            rule="enrolment_date_in_cohort_window",
            message="Enrolment date {value} is outside the cohort's enrolment window.",
            fix="Enrolment must be no earlier than 120 days before the cohort starts and no later than its end.",
            statement="No earlier than 120 days before the cohort starts and no later than its end.",
        ),
        passes(
            "chk_status_date_present",
            "status_date",
            rule="status_date_required",
            message="A status date is required when the status is Completed, Withdrawn or Deferred.",
            fix="Enter the date the participant completed, withdrew or deferred.",
            statement="Required when the status is Completed, Withdrawn or Deferred.",
        ),
        passes(
            "chk_status_date_after_enrolment",
            "status_date",
            rule="status_date_after_enrolment",
            message="Status date {value} is before the enrolment date.",
            fix="Check both dates: the status date must be on or after the enrolment date.",
            statement="On or after the enrolment date.",
        ),
        passes(
            "chk_status_date_not_future",
            "status_date",
            rule="status_date_not_future",
            message="Status date {value} is after the date this file was sent.",
            fix="Only report status changes that have already happened.",
            statement="Not after the date the file is sent.",
        ),
        passes(
            "chk_withdrawal_reason_present",
            "withdrawal_reason",
            rule="withdrawal_reason_required",
            message="A withdrawal reason is required when the status is Withdrawn.",
            fix="Give a short reason, e.g. 'left the organisation'.",
            statement="Required when the status is Withdrawn.",
        ),
        passes(
            "chk_unique_in_file",
            "staff_id",
            rule="duplicate_participant",
            message="This participant appears more than once for the same cohort in this file: only the first copy counts, so this row was not loaded.",
            fix="Keep one row per participant per cohort.",
            statement="One row per participant (organisation, staff ID) per cohort in a file.",
        ),
        passes(
            "chk_project_registered",
            "project_id",
            rule="project_not_registered",
            message="Project {value} is not in the project register (yet).",
            fix="Check the project ID against your project register; if the project is new, send its register row.",
            severity="warning",
            statement="A project in the project register (a warning: the register may arrive later).",
        ),
    ]
