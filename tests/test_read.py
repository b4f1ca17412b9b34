"""Reading received files into raw grids, and refusing what cannot be read."""

from __future__ import annotations

import datetime as dt
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import corrupt_member
from tests.helpers import workbook as write_openpyxl
from transforms.read import SheetGrid, UnreadableFile, read_grids

# --- builders ------------------------------------------------------------------------------


def minimal_xlsx(path: Path, sheet_xml: bytes, *, styles_xml: bytes | None = None) -> Path:
    """A hand-built workbook with one sheet, for XML that Excel's writers would not produce."""
    styles_xml = styles_xml or (
        b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<numFmts count="1"><numFmt numFmtId="164" formatCode="0.00%"/></numFmts>'
        b'<fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders>'
        b'<cellStyleXfs count="1"><xf/></cellStyleXfs>'
        b'<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="9"/><xf numFmtId="164"/></cellXfs></styleSheet>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                   '<Override PartName="/xl/worksheets/data.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                   '</Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
                   '</Relationships>')
        z.writestr("xl/workbook.xml",
                   '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                   '<sheets><sheet name="Measures" sheetId="1" r:id="rId7"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId7" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/xl/worksheets/data.xml"/>'
                   '<Relationship Id="rId8" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
                   '</Relationships>')
        z.writestr("xl/styles.xml", styles_xml)
        z.writestr("xl/worksheets/data.xml",
                   b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   b"<sheetData>" + sheet_xml + b"</sheetData></worksheet>")
    return path


def reason(path: Path) -> str:
    with pytest.raises(UnreadableFile) as info:
        read_grids(path)
    assert "\n" not in info.value.reason and info.value.reason
    return info.value.reason


# --- workbooks -------------------------------------------------------------------------------


class TestWorkbooks:
    def test_rows_start_at_excel_row_1_with_title_rows_counted(self, tmp_path):
        path = write_openpyxl(tmp_path / "r.xlsx", {"Data": [["Enrolment return"], [], ["a", "b"], [1, "x"]]})
        [grid] = read_grids(path)
        assert grid.sheet == "Data" and grid.visible
        assert grid.rows[0][0] == "Enrolment return"
        assert all(c is None for c in grid.rows[1])
        assert grid.rows[2][:2] == ["a", "b"]
        assert grid.rows[3][:2] == [1, "x"]

    def test_data_not_starting_at_a1_keeps_its_position(self, tmp_path):
        wb = openpyxl.Workbook()
        wb.active["C4"] = "header"
        wb.save(tmp_path / "c.xlsx")
        [grid] = read_grids(tmp_path / "c.xlsx")
        assert grid.rows[3][2] == "header"
        assert grid.rows[0] == [None, None, None]

    def test_cell_types(self, tmp_path):
        path = write_openpyxl(
            tmp_path / "t.xlsx",
            {"S": [["text", 3, 2.5, True, dt.datetime(2025, 4, 3), dt.datetime(2025, 4, 3, 9, 30), "", None]]},
        )
        [grid] = read_grids(path)
        row = grid.rows[0]
        assert row[0] == "text" and row[1] == 3 and row[2] == 2.5 and row[3] is True
        assert row[4] in (dt.date(2025, 4, 3), dt.datetime(2025, 4, 3))
        assert row[5] == dt.datetime(2025, 4, 3, 9, 30)
        assert all(c is None for c in row[6:])

    def test_durations_become_days_and_error_cells_empty(self, tmp_path):
        path = tmp_path / "d.xlsx"
        wb = xlsxwriter.Workbook(path)
        ws = wb.add_worksheet("S")
        ws.write_number(0, 0, 1.5, wb.add_format({"num_format": "[h]:mm"}))
        ws.write_formula(0, 1, "=1/0", None, "#DIV/0!")
        ws.write_string(0, 2, "x")
        wb.close()
        assert read_grids(path)[0].rows == [[1.5, None, "x"]]

    def test_hidden_and_very_hidden_sheets_are_not_visible(self, tmp_path):
        path = write_openpyxl(
            tmp_path / "h.xlsx",
            {"Data": [["x"]], "Lists": [["y"]], "Secret": [["z"]]},
            hidden={"Lists": "hidden", "Secret": "veryHidden"},
        )
        assert [(g.sheet, g.visible) for g in read_grids(path)] == [("Data", True), ("Lists", False), ("Secret", False)]

    def test_xlsm_is_read_without_running_anything(self, tmp_path):
        path = write_openpyxl(tmp_path / "m.xlsm", {"S": [["a", 1]]})
        assert read_grids(path)[0].rows == [["a", 1]]

    def test_xlsx_named_xls_is_read_by_its_content(self, tmp_path):
        path = write_openpyxl(tmp_path / "w.xlsx", {"S": [["a", 1]]}, formats={("S", "B1"): "0%"})
        path = path.rename(tmp_path / "w.xls")
        [grid] = read_grids(path)
        assert grid.rows == [["a", 1]] and grid.percent_cells == frozenset({(1, 1)})

    def test_percent_formatted_cells(self, tmp_path):
        path = write_openpyxl(
            tmp_path / "p.xlsx",
            {"S": [["title"], [0.85, 0.5, 0.25, 0.1, 0.2, 12]], "T": [[1]]},
            formats={("S", "A2"): "0%", ("S", "B2"): "0.0%", ("S", "C2"): "#,##0.00%;[Red]-0.00%",
                     ("S", "D2"): '0.0"%"', ("S", "E2"): "0\\%"},
        )
        grids = {g.sheet: g for g in read_grids(path)}
        assert grids["S"].percent_cells == frozenset({(2, 0), (2, 1), (2, 2)})
        assert grids["T"].percent_cells == frozenset()

    def test_percent_cells_from_xlsxwriter(self, tmp_path):
        path = tmp_path / "x.xlsx"
        wb = xlsxwriter.Workbook(path)
        ws = wb.add_worksheet("Data")
        ws.write_row(0, 0, ["project_id", "value"])
        ws.write_number(1, 1, 0.85, wb.add_format({"num_format": "0%"}))
        ws.write_number(2, 1, 85)
        wb.close()
        assert read_grids(path)[0].percent_cells == frozenset({(2, 1)})

    def test_percent_cells_whatever_the_attribute_order(self, tmp_path):
        sheet = (b'<row r="1"><c r="A1" s="1"><v>0.5</v></c><c s="2" r="B1"><v>0.25</v></c>'
                 b'<c t="n" r="C1"\n s="1"><v>0.1</v></c><c r="D1"><v>3</v></c></row>')
        [grid] = read_grids(minimal_xlsx(tmp_path / "o.xlsx", sheet))
        assert grid.sheet == "Measures"
        assert grid.rows == [[0.5, 0.25, 0.1, 3]]
        assert grid.percent_cells == frozenset({(1, 0), (1, 1), (1, 2)})

    def test_percent_scan_is_fast_on_a_200000_row_sheet(self, tmp_path):
        rows = b"".join(b'<row r="%d"><c r="A%d"><v>%d</v></c><c r="B%d" s="1"><v>0.85</v></c></row>' % (r, r, r, r)
                        for r in range(1, 200_001))
        path = minimal_xlsx(tmp_path / "big.xlsx", rows)
        start = time.perf_counter()
        [grid] = read_grids(path)
        elapsed = time.perf_counter() - start
        assert len(grid.rows) == 200_000 and len(grid.percent_cells) == 200_000
        assert (200_000, 1) in grid.percent_cells
        assert elapsed < 5, elapsed


# --- CSV -------------------------------------------------------------------------------------


class TestCsv:
    def test_utf8_with_bom(self, tmp_path):
        path = tmp_path / "a.csv"
        path.write_bytes("\ufeffstaff_id,service_area\r\nS1,Café\r\n".encode("utf-8"))
        [grid] = read_grids(path)
        assert grid.sheet == "" and grid.visible and grid.percent_cells == frozenset()
        assert grid.rows == [["staff_id", "service_area"], ["S1", "Café"]]

    def test_windows_1252(self, tmp_path):
        path = tmp_path / "a.csv"
        path.write_bytes("name,cost\r\nRenée,£1,200\r\n".encode("cp1252"))
        assert read_grids(path)[0].rows == [["name", "cost"], ["Renée", "£1", "200"]]

    def test_rows_as_a_spreadsheet_numbers_them(self, tmp_path):
        path = tmp_path / "a.csv"
        path.write_text('Title line\n\nproject_id,aim\nP1,"line one\nline two"\nP2,,\n', encoding="utf-8")
        rows = read_grids(path)[0].rows
        assert rows[0] == ["Title line"]
        assert rows[1] == []
        assert rows[2] == ["project_id", "aim"]
        assert rows[3] == ["P1", "line one\nline two"]
        assert rows[4] == ["P2", None, None]  # row 5, as a spreadsheet shows it
        assert len(rows) == 5

    def test_every_cell_is_text_or_none(self, tmp_path):
        path = tmp_path / "a.csv"
        path.write_text("a,b\n1,03/04/2025\n", encoding="utf-8")
        assert read_grids(path)[0].rows[1] == ["1", "03/04/2025"]


# --- rejections ------------------------------------------------------------------------------


class TestRejections:
    @pytest.mark.parametrize("name", ["e.xlsx", "e.csv", "e.xls"])
    def test_empty_file(self, tmp_path, name):
        (tmp_path / name).write_bytes(b"")
        assert "empty" in reason(tmp_path / name)

    def test_workbook_with_no_cells(self, tmp_path):
        openpyxl.Workbook().save(tmp_path / "blank.xlsx")
        assert "no data" in reason(tmp_path / "blank.xlsx")

    def test_csv_with_no_cells(self, tmp_path):
        (tmp_path / "blank.csv").write_text("\n\n,,\n")
        assert "no data" in reason(tmp_path / "blank.csv")

    def test_pdf_renamed_xlsx(self, tmp_path):
        (tmp_path / "r.xlsx").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
        assert "PDF" in reason(tmp_path / "r.xlsx")

    def test_text_renamed_xlsx(self, tmp_path):
        (tmp_path / "r.xlsx").write_text("staff_id,cohort\nS1,C1\n")
        assert "not an Excel workbook" in reason(tmp_path / "r.xlsx")

    def test_word_document_renamed_xlsx(self, tmp_path):
        with zipfile.ZipFile(tmp_path / "r.xlsx", "w") as z:
            z.writestr("word/document.xml", "<document/>")
        assert "not an Excel workbook" in reason(tmp_path / "r.xlsx")

    def test_binary_renamed_csv(self, tmp_path):
        (tmp_path / "r.csv").write_bytes(bytes(range(256)) * 4)
        assert "not a text CSV" in reason(tmp_path / "r.csv")

    def test_workbook_renamed_csv(self, tmp_path):
        write_openpyxl(tmp_path / "w.xlsx", {"S": [["a"]]}).rename(tmp_path / "w.csv")
        assert "not a text CSV" in reason(tmp_path / "w.csv")

    def test_utf16_csv(self, tmp_path):
        (tmp_path / "u.csv").write_bytes("a,b\n1,2\n".encode("utf-16"))
        assert "UTF-16" in reason(tmp_path / "u.csv")

    def test_truncated_zip(self, tmp_path):
        good = write_openpyxl(tmp_path / "good.xlsx", {"S": [["a", 1]] * 50}).read_bytes()
        (tmp_path / "cut.xlsx").write_bytes(good[: len(good) // 2])
        assert "damaged or incomplete" in reason(tmp_path / "cut.xlsx")

    def test_corrupt_member(self, tmp_path):
        path = write_openpyxl(tmp_path / "bad.xlsx", {"S": [["a", 1]] * 50})
        corrupt_member(path, "xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row r=1><c r=")
        assert "damaged" in reason(path)

    @pytest.mark.parametrize("name", ["secret.xlsx", "secret.xlsm"])
    def test_encrypted_workbook(self, tmp_path, name):
        # The shape Excel gives a password-protected workbook: an OLE2 compound file
        # whose directory names an 'EncryptedPackage' stream.
        ole = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptedInfo".encode("utf-16-le")
               + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 2000)
        (tmp_path / name).write_bytes(ole)
        assert "password-protected" in reason(tmp_path / name)

    def test_unreadable_legacy_xls(self, tmp_path):
        (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000)
        assert "Excel 97-2003" in reason(tmp_path / "old.xls")

    def test_web_page_named_xls(self, tmp_path):
        (tmp_path / "export.xls").write_text("<html><table><tr><td>1</td></tr></table></html>")
        assert "web page" in reason(tmp_path / "export.xls")

    def test_zip_bomb_is_refused_before_reading(self, tmp_path):
        path = tmp_path / "bomb.xlsx"
        chunk = b"\0" * (1 << 20)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr("xl/workbook.xml", "<workbook/>")
            with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
                for _ in range(300):
                    f.write(chunk)
        assert path.stat().st_size < 5 * 1024**2
        start = time.perf_counter()
        assert "zip bomb" in reason(path)
        assert time.perf_counter() - start < 0.5

    def test_too_large_in_total(self, tmp_path, monkeypatch):
        import transforms.read as read

        monkeypatch.setattr(read, "MAX_UNCOMPRESSED_BYTES", 1000)
        path = write_openpyxl(tmp_path / "big.xlsx", {"S": [["x" * 100]] * 100})
        assert "too large" in reason(path)

    @pytest.mark.parametrize("name", ["notes.txt", "return.ods", "return.xlsb", "return"])
    def test_unsupported_extension(self, tmp_path, name):
        (tmp_path / name).write_text("staff_id\nS1\n")
        assert "not accepted" in reason(tmp_path / name)

    def test_missing_file(self, tmp_path):
        assert "could not be opened" in reason(tmp_path / "gone.xlsx")


class TestNeverATraceback:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.binary(max_size=2000), ext=st.sampled_from([".xlsx", ".xlsm", ".xls", ".csv"]))
    def test_arbitrary_bytes(self, tmp_path, data, ext):
        path = tmp_path / f"f{ext}"
        path.write_bytes(data)
        try:
            grids = read_grids(path)
        except UnreadableFile:
            return
        assert all(isinstance(g, SheetGrid) for g in grids)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(offsets=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=5), byte=st.integers(0, 255))
    def test_damaged_workbook(self, tmp_path, offsets, byte):
        good = tmp_path / "good.xlsx"
        if not good.exists():
            write_openpyxl(good, {"S": [["staff_id", "cohort"], ["S1", dt.datetime(2025, 4, 3)]]},
                           formats={("S", "B2"): "0%"})
        data = bytearray(good.read_bytes())
        for offset in offsets:
            data[offset % len(data)] = byte
        path = tmp_path / "bad.xlsx"
        path.write_bytes(bytes(data))
        try:
            read_grids(path)
        except UnreadableFile:
            pass
