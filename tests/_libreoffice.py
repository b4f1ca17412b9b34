"""LibreOffice for the report tests: find it, install it when missing, convert in one go.

The commissioner and feedback workbooks must open cleanly in LibreOffice (SPEC 8). The
tests convert every workbook they produce with ``soffice --headless --convert-to``, all
files of a module in ONE invocation with a private profile (start-up is most of the cost
of a small file), and check that every sheet and chart came through.

When ``soffice`` is missing, the Debian package ``libreoffice-calc`` is installed once
(``apt-get update`` then ``apt-get install --no-install-recommends``), which works when the
tests run as root. When it cannot be installed the tests FAIL with the reason, never pass
silently; set ``QI_SKIP_LIBREOFFICE=1`` to turn that into a visible skip on purpose.
(This belongs in the Makefile / CI image: see ``install_command``.)
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

PACKAGE = "libreoffice-calc"
INSTALL_TIMEOUT = 900


def install_command() -> list[list[str]]:
    return [["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE]]


@functools.cache
def _find_or_install() -> tuple[str | None, str]:
    """(path of soffice, or None; what happened)."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found, "found"
    if shutil.which("apt-get") is None:
        return None, "soffice is not installed and there is no apt-get to install libreoffice-calc"
    if os.geteuid() != 0:
        return None, "soffice is not installed, and the tests are not running as root to apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in install_command():
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        if done.returncode != 0:
            return None, f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    found = shutil.which("soffice") or shutil.which("libreoffice")
    return (found, "installed") if found else (None, f"{PACKAGE} installed but soffice is not on PATH")


def soffice() -> str:
    """The soffice executable, installing LibreOffice if needed; fail loudly if impossible."""
    path, why = _find_or_install()
    if path is None:
        message = f"LibreOffice is needed to check that the workbooks open cleanly: {why}."
        if os.environ.get("QI_SKIP_LIBREOFFICE") == "1":
            pytest.skip("SKIPPED ON PURPOSE (QI_SKIP_LIBREOFFICE=1): " + message)
        pytest.fail(message + " Install it (apt-get install libreoffice-calc) or set QI_SKIP_LIBREOFFICE=1 to skip "
                    "this check knowingly.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def libreoffice() -> str:
    """Test setup: the soffice executable, installed first if missing (import this fixture to use it)."""
    return soffice()


def flat_copies(paths: list[Path], folder: Path) -> list[Path]:
    """Copies of ``paths`` in one folder, numbered so their names stay distinct (one soffice run)."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for i, path in enumerate(dict.fromkeys(paths)):
        copy = folder / f"{i:02d}_{path.name}"
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    return copies


def convert(workbooks: list[Path], outdir: Path, *, to: str = "xlsx", timeout: float = 300,
            executable: str | None = None) -> dict[Path, Path | None]:
    """Convert ``workbooks`` in one soffice run; map each to its converted file (raise if any failed).

    The default re-saves as .xlsx: LibreOffice then has to import every sheet, table and
    chart and write them all back (for 200 charts about 12 s, against 20 s for .ods).
    """
    executable = executable or soffice()
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / "profile"
    names = [w.stem for w in workbooks]
    if len(set(names)) != len(names):
        raise ValueError("workbooks to convert in one run need distinct names")
    command = [executable, f"-env:UserInstallation={profile.resolve().as_uri()}", "--headless", "--norestore",
               "--nologo", "--nodefault", "--nolockcheck", "--convert-to", to, "--outdir", str(outdir),
               *[str(w) for w in workbooks]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "HOME": str(outdir)})
    out: dict[Path, Path | None] = {}
    for workbook in workbooks:
        target = outdir / f"{workbook.stem}.{to}"
        out[workbook] = target if target.is_file() and target.stat().st_size > 0 else None
    if done.returncode != 0 or any(v is None for v in out.values()):
        failed = [str(w) for w, v in out.items() if v is None]
        raise AssertionError(f"LibreOffice conversion failed ({done.returncode}) for {failed}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return out


def sheet_names(path: Path) -> list[str]:
    """The sheet names LibreOffice wrote into a converted file (.xlsx or .ods)."""
    with zipfile.ZipFile(path) as z:
        if path.suffix == ".ods":
            return re.findall(r'<table:table table:name="([^"]+)"', z.read("content.xml").decode("utf-8"))
        return re.findall(r'<sheet name="([^"]+)"', z.read("xl/workbook.xml").decode("utf-8"))


def chart_count(path: Path) -> int:
    """How many charts LibreOffice wrote into a converted file (.xlsx or .ods)."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if path.suffix == ".ods":
        return sum(1 for n in names if n.startswith("Object ") and n.endswith("/content.xml"))
    return sum(1 for n in names if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
