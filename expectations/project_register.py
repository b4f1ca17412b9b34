"""Suite for the project register (SPEC 3.2): one row per project."""

from __future__ import annotations

from expectations.checks import Check, cohort_known, in_list, organisation_known, passes, required
from transforms.datasets import IMPROVEMENT_DIRECTIONS, MEASURE_TYPES, PROJECT_REGISTER, PROJECT_STATUSES
from transforms.reference import Reference

DATASET = PROJECT_REGISTER


def build(reference: Reference) -> list[Check]:
    return [
        required("project_id", "Project ID"),
        required("organisation_code", "Organisation code"),
        required("cohort_code", "Cohort code"),
        required("title", "Title"),
        required("service_area", "Service area"),
        required("measure_name", "Measure name"),
        required("measure_type", "Measure type"),
        required("improvement_direction", "Improvement direction"),
        required("status", "Status"),
        organisation_known(reference.org_codes),
        cohort_known(reference.cohort_codes),
        in_list(
            "measure_type",
            MEASURE_TYPES,
            rule="measure_type_in_list",
            message="Measure type {value} is not one of percentage, count, rate or time.",
            fix="Choose the measure type from the template's drop-down list.",
        ),
        in_list(
            "improvement_direction",
            IMPROVEMENT_DIRECTIONS,
            rule="improvement_direction_in_list",
            message="Improvement direction {value} is not increase or decrease.",
            fix="Choose increase (higher is better) or decrease (lower is better).",
        ),
        in_list(
            "status",
            PROJECT_STATUSES,
            rule="project_status_in_list",
            message="Project status {value} is not one of the allowed statuses.",
            fix="Choose a status from the template's drop-down list.",
        ),
        passes(
            "chk_unique_in_file",
            "project_id",
            rule="duplicate_project",
            message="Project {value} appears more than once in this file: only the first copy counts, so this row was not loaded.",
            fix="Keep one row per project.",
            statement="Unique: one row per project in a file.",
        ),
        passes(
            "chk_target_on_scale",
            "target",
            rule="target_on_scale",
            message="The target {value} is not on the measure's scale.",
            fix="A percentage target is a number from 0 to 100; other targets cannot be negative.",
            statement="On the measure's scale: 0 to 100 for a percentage, 0 or more otherwise.",
        ),
        passes(
            "chk_target_not_proportion",
            "target",
            rule="target_looks_like_proportion",
            message="The target {value} for this percentage measure is between 0 and 1; it looks like a proportion.",
            fix="Enter percentage targets on a 0-100 scale (0.9 should be 90).",
            severity="warning",
            statement="A percentage target between 0 and 1 looks like a proportion (a warning).",
        ),
    ]
