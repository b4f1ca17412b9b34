"""Suite for measure data (SPEC 3.3): one value per project, measure and period."""

from __future__ import annotations

from expectations.checks import Check, passes, required
from transforms.datasets import MEASURE_DATA
from transforms.reference import Reference

DATASET = MEASURE_DATA


def build(reference: Reference) -> list[Check]:
    del reference  # measure rules need the register, not the reference lists
    return [
        required("project_id", "Project ID"),
        required("measure_name", "Measure name"),
        required("period", "Period"),
        passes(
            "chk_value_present",
            "value",
            rule="value_required",
            message="There is no value, and no numerator and denominator to work it out from.",
            fix="Enter the value, or both the numerator and the denominator.",
            statement="A value, or a numerator and a denominator to work it out from.",
        ),
        passes(
            "chk_denominator_positive",
            "denominator",
            rule="denominator_positive",
            message="The denominator {value} must be greater than 0.",
            fix="Check the denominator; leave the row out if nothing was measured that period.",
            statement="Greater than 0.",
        ),
        passes(
            "chk_numerator_not_over_denominator",
            "numerator",
            rule="numerator_not_over_denominator",
            message="The numerator {value} is larger than the denominator, which is impossible for a percentage.",
            fix="Check that the numerator and denominator are not swapped.",
            statement="For a percentage measure, no larger than the denominator.",
        ),
        passes(
            "chk_value_in_range",
            "value",
            rule="percentage_in_range",
            message="The value {value} is not a percentage between 0 and 100.",
            fix="Enter percentages as numbers from 0 to 100 (e.g. 85 or 85%).",
            statement="For a percentage measure, from 0 to 100.",
        ),
        passes(
            "chk_value_not_negative",
            "value",
            rule="value_not_negative",
            message="The value {value} is negative.",
            fix="Counts, rates and times cannot be negative: check the value.",
            statement="For counts, rates, times and other measures, 0 or more.",
        ),
        passes(
            "chk_value_agrees",
            "value",
            rule="value_agrees_with_ratio",
            message="The value {value} does not agree with numerator / denominator.",
            fix="Correct the value, or leave it blank so it is worked out from the numerator and denominator.",
            statement="When all three are given, agrees with numerator / denominator "
                      "(within 0.5 of a percentage point for a percentage).",
        ),
        passes(
            "chk_period_not_future",
            "period",
            rule="period_not_future",
            message="The period {value} starts after the date this file was sent.",
            fix="Only report periods that have started.",
            statement="Not after the date the file is sent.",
        ),
        passes(
            "chk_unique_in_file",
            "period",
            rule="duplicate_measure_value",
            message="There is more than one value for this project, measure and period in this file: only the first counts, so this row was not loaded.",
            fix="Keep one row per project, measure and period.",
            statement="One value per project, measure and period in a file.",
        ),
        passes(
            "chk_not_proportion",
            "value",
            rule="value_looks_like_proportion",
            message="All values for this percentage measure are between 0 and 1; they look like proportions.",
            fix="Enter percentages on a 0-100 scale (0.85 should be 85).",
            severity="warning",
            statement="Percentages on a 0-100 scale: a series of values all between 0 and 1 looks like "
                      "proportions (a warning).",
        ),
        passes(
            "chk_no_period_gap",
            "period",
            rule="period_gap",
            message="No value was sent for the period(s) just before {value}; the series has a gap.",
            fix="Send a value for every week or month of the series, or tell the programme team why one is missing.",
            severity="warning",
            statement="Every week or month of a series has a value (a gap is a warning).",
        ),
    ]
