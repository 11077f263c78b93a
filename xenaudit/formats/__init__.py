"""Output formats: HTML, JSON, CSV, Prometheus textfile and cfg patches.

Importing this package registers every built-in format in `FORMATS`.
"""

from xenaudit.formats.csv import CsvFormat
from xenaudit.formats.html import HtmlFormat
from xenaudit.formats.interface import (
    FORMAT_NAMES,
    FORMATS,
    FormatError,
    ReportFormat,
    resolve_names,
    write_formats,
)
from xenaudit.formats.json import JsonFormat
from xenaudit.formats.patches import PatchesFormat
from xenaudit.formats.prometheus import PrometheusFormat

FORMATS.update(
    {
        PatchesFormat.name: PatchesFormat,
        JsonFormat.name: JsonFormat,
        CsvFormat.name: CsvFormat,
        HtmlFormat.name: HtmlFormat,
        PrometheusFormat.name: PrometheusFormat,
    }
)

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "CsvFormat",
    "FormatError",
    "HtmlFormat",
    "JsonFormat",
    "PatchesFormat",
    "PrometheusFormat",
    "ReportFormat",
    "resolve_names",
    "write_formats",
]
