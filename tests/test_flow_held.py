"""Measure rows for a project not yet registered are held, not rejected, and load when the register row arrives."""

import os
import time

import pandas as pd

from tests.helpers import new_root


def _land(path, text: str, days_ago: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    moment = time.time() - days_ago * 86400
    os.utime(path, (moment, moment))


def test_held_measure_rows_load_when_the_register_row_arrives(tmp_path, prefect_harness):
    from flows.nightly import nightly

    root = new_root(tmp_path / "root")
    measures = "project_id,measure_name,period,numerator,denominator,value\n" + "".join(
        f"RPA-2026-900,% wristbands,2026-{m:02d},{40 + m},60,\n" for m in range(1, 7))
    _land(root / "landing" / "RPA" / "measures.csv", measures, days_ago=20)
    nightly(data_dir=str(root), demo=True)
    current = root / "marts" / "current"
    assert pd.read_parquet(current / "fct_measure.parquet").empty
    issues = pd.read_parquet(current / "data_quality_issues.parquet")
    assert not (issues["severity"] == "error").any()  # held is not an error

    register = ("project_id,organisation_code,cohort_code,title,service_area,measure_name,measure_type,"
                "improvement_direction,target,status\n"
                "RPA-2026-900,RPA,C25B,Wristbands on every ward,Wards,% wristbands,percentage,increase,95,Active\n")
    _land(root / "landing" / "RPA" / "register.csv", register, days_ago=10)
    nightly(data_dir=str(root), demo=True)
    loaded = pd.read_parquet(current / "fct_measure.parquet")
    assert len(loaded) == 6
    assert loaded["value"].round(2).tolist() == [round(100 * (40 + m) / 60, 2) for m in range(1, 7)]
