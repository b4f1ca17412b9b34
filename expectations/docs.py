"""Great Expectations Data Docs for a run's validations (SPEC 2: ``data/docs/``, the last 30 runs).

In: the raw GX results of one run (``ValidationResult.results`` of every ``validate`` call
in the run) and the docs folder. Out: a static HTML site per run under
``docs/<run_name>/`` (its ``index.html`` lists the run's validations and the suites'
expectations), a ``docs/index.html`` linking the runs kept, and older runs removed.

No personal data: the runner never hands personal columns to GX, so the results cannot
quote a staff ID, name, e-mail or mentor; as a second guard, any expectation on a
personal column has its unexpected values replaced by ``[redacted]`` before rendering.
Unexpected values are listed up to ``MAX_SHOWN`` per expectation: counts stay exact,
the feedback workbooks and ``data_quality_issues`` hold the full lists.
"""

from __future__ import annotations

import copy
import html
import logging
import os
import re
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

from expectations.runner import PERSONAL, import_gx

log = logging.getLogger("qi.docs")

SITE = "qi_run"
MAX_SHOWN = 200
REDACTED = "[redacted]"
# Keys of an expectation's result that hold cell values or row positions.
_VALUE_KEYS = ("partial_unexpected_list", "unexpected_list", "partial_unexpected_index_list",
               "unexpected_index_list", "partial_unexpected_counts")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_BUILDING = ".building-"


def run_folder_name(run_name: str) -> str:
    """The folder a run's docs go in: ``run_name`` with anything but letters, digits, '.', '_' and '-' as '_'."""
    name = _SAFE_NAME.sub("_", run_name).strip("._") or "run"
    return name[:120]


def write_data_docs(results: list, docs_dir: Path, run_name: str, keep: int = 30) -> Path:
    """Build the Data Docs of one run's validation ``results`` in ``docs_dir/<run_name>/``.

    Call once per run with every result of the run. The site is built in a scratch folder
    and moved into place, so a reader never sees half a site; a second call with the same
    ``run_name`` replaces it. Keeps the newest ``keep`` runs' sites, rewrites
    ``docs_dir/index.html`` (a list of them) and returns the run's ``index.html``.
    """
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    folder = run_folder_name(run_name)
    scratch = Path(tempfile.mkdtemp(prefix=f"{_BUILDING}{folder}-", dir=docs_dir))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _build_site(results, scratch, run_name)
        _stamp(scratch, run_name, results)
        os.chmod(scratch, 0o755)  # mkdtemp makes it owner-only; the docs hold no personal data
        target = docs_dir / folder
        if target.exists():
            old = docs_dir / f"{_BUILDING}old-{folder}-{os.getpid()}"
            target.rename(old)
            scratch.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    _prune(docs_dir, keep)
    _write_runs_index(docs_dir)
    return target / "index.html"


def _build_site(results: list, site_dir: Path, run_name: str) -> None:
    gx = import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False, "profilers": False}
    context.variables.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    run_time = datetime.now(timezone.utc)
    suites: dict[str, list] = {}
    for n, result in enumerate(results):
        safe = _redacted(result)
        suite_name = safe.suite_name
        batch = f"{suite_name}-{n}"
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=RunIdentifier(run_name=run_name, run_time=run_time),
            batch_identifier=batch,
        )
        safe.meta["run_id"] = key.run_id
        context.validation_results_store.set(key, safe)
        configs = suites.setdefault(suite_name, {})
        for item in safe.results:
            config = item.expectation_config
            configs.setdefault((config.meta or {}).get("rule") or repr(sorted(config.kwargs.items())), config)
    # The suites as run, so the site also shows what each dataset is expected to be.
    for name, configs in suites.items():
        suite = gx.ExpectationSuite(name=name)
        for config in configs.values():
            expectation = config.to_domain_obj()
            expectation.id = None
            suite.add_expectation(expectation)
        context.suites.add(suite)
    problems = _Collect()
    gx_log = logging.getLogger("great_expectations")
    propagate = gx_log.propagate
    gx_log.addHandler(problems)
    gx_log.propagate = False  # GX logs a page it cannot render with a long traceback: say it in one line
    try:
        context.build_data_docs(site_names=[SITE])
    finally:
        gx_log.removeHandler(problems)
        gx_log.propagate = propagate
    _slim_static(site_dir)
    if problems.messages:
        log.warning("Data Docs for run %s: %d part(s) could not be rendered; first: %s",
                    run_name, len(problems.messages), problems.messages[0])


class _Collect(logging.Handler):
    """Keeps the first line of each WARNING or worse that GX logs while building the site."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        detail = next((line.strip() for line in text.splitlines() if "Error" in line or "Exception:" in line), "")
        self.messages.append((detail or text.splitlines()[0])[:300])


def _slim_static(site_dir: Path) -> None:
    """Drop GX's bundled fonts and tutorial images (about 4 MB a run); the pages load their
    styles inline or from CDNs and use only the favicon."""
    static = site_dir / "static"
    shutil.rmtree(static / "fonts", ignore_errors=True)
    for image in (static / "images").glob("*"):
        if image.name != "favicon.ico":
            image.unlink(missing_ok=True)


def _redacted(result):
    """A copy of ``result`` fit to publish: personal columns' values redacted, lists capped.

    Value lists are cut before they are copied, so a run with many failing rows costs
    no more than one with ``MAX_SHOWN``; the caller's result is left as it was.
    """
    safe = copy.copy(result)
    safe.meta = copy.deepcopy(result.meta)
    items = []
    for item in result.results:
        config = item.expectation_config
        column = (config.kwargs or {}).get("column")
        body = {
            key: (value[:MAX_SHOWN] if isinstance(value, list) else value)
            for key, value in (item.result or {}).items()
            if key != "unexpected_index_query"
        }
        body = copy.deepcopy(body)
        if column in PERSONAL or column == "participant_key":
            for key in _VALUE_KEYS:
                if isinstance(body.get(key), list):
                    body[key] = [_redact_entry(entry, column) for entry in body[key]]
        clone = copy.copy(item)
        clone.expectation_config = copy.deepcopy(config)
        clone.result = body
        items.append(clone)
    safe.results = items
    return safe


def _redact_entry(entry, column: str):
    """One unexpected value, or one {column: value, _row_id: n} / {value, count} record, redacted."""
    if isinstance(entry, dict):
        return {k: (REDACTED if k in (column, "value") else v) for k, v in entry.items()}
    return REDACTED


def _stamp(site_dir: Path, run_name: str, results: list) -> None:
    """A small record of the run for the index of runs: when built, and what passed."""
    lines = [f"run_name\t{run_name}", f"built_at\t{datetime.now(timezone.utc).isoformat(timespec='seconds')}"]
    for result in results:
        stats = result.statistics or {}
        lines.append(
            f"suite\t{result.suite_name}\t{'passed' if result.success else 'failed'}\t"
            f"{stats.get('successful_expectations', 0)}\t{stats.get('evaluated_expectations', 0)}"
        )
    (site_dir / "run.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _runs(docs_dir: Path) -> list[Path]:
    """Run folders, newest first (by when their docs were built)."""
    runs = [p for p in docs_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "run.tsv").exists()]
    return sorted(runs, key=lambda p: ((p / "run.tsv").stat().st_mtime_ns, p.name), reverse=True)


def _prune(docs_dir: Path, keep: int) -> None:
    for old in _runs(docs_dir)[max(keep, 1):]:
        shutil.rmtree(old, ignore_errors=True)
    # Scratch folders of a build that was killed.
    for stale in docs_dir.glob(f"{_BUILDING}*"):
        if stale.is_dir() and _age_seconds(stale) > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def _age_seconds(path: Path) -> float:
    return datetime.now().timestamp() - path.stat().st_mtime


def _write_runs_index(docs_dir: Path) -> None:
    rows = []
    for run in _runs(docs_dir):
        record = [line.split("\t") for line in (run / "run.tsv").read_text(encoding="utf-8").splitlines()]
        info = {r[0]: r[1] for r in record if len(r) == 2}
        suites = ", ".join(f"{r[1]} {r[2]} ({r[3]}/{r[4]} expectations met)" for r in record if r[0] == "suite" and len(r) == 5)
        rows.append(
            f'<tr><td><a href="{html.escape(run.name)}/index.html">{html.escape(info.get("run_name", run.name))}</a></td>'
            f"<td>{html.escape(info.get('built_at', ''))}</td><td>{html.escape(suites or 'no validations')}</td></tr>"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8"><title>QI programme: validation runs</title>'
        "<style>body{font-family:Arial,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style></head><body>"
        "<h1>QI programme: validation runs</h1>"
        "<p>Great Expectations Data Docs of the latest runs, newest first. Personal data is never shown.</p>"
        "<table><thead><tr><th>Run</th><th>Built (UTC)</th><th>Validations</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
    tmp = docs_dir / f".index-{os.getpid()}.html"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(docs_dir / "index.html")
