"""An installed wheel renders the report with its own templates, away from the checkout.

The templates live at the top of the repository and are force-included into the
wheel as xenaudit/templates, so a broken include rule only shows up once the
package is really installed. This builds and installs it (`pip install .`, not
editable) into a fresh venv and renders a report there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])  # the copied report_fixtures module only
import xenaudit
from xenaudit.formats import write_formats
from xenaudit.formats.html import template_dirs
from xenaudit.formats.json import report_schema
import report_fixtures as rf
from pathlib import Path
out = Path(sys.argv[1])
written = write_formats(rf.rich_report(), out, ["all"])
print(json.dumps({
    "package": xenaudit.__file__,
    "template_dirs": [str(d) for d in template_dirs()],
    "written": sorted(str(p.relative_to(out)) for p in written),
    "schema_title": report_schema()["title"],
}))
"""


def test_pip_installed_package_renders_a_report(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    # Dependencies (jinja2, paramiko) and the build backend (hatchling) come from the
    # test venv, so the install works offline; xenaudit itself is not in that venv.
    # The venv's own site-packages comes first, so the xenaudit installed below wins
    # over anything the test venv might hold.
    (Path(purelib) / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "test-artifacts", "__pycache__", "*.pyc", ".*_cache", "build", "dist"
        ),
    )
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    shutil.rmtree(source)  # nothing may be read from a checkout any more

    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    shutil.copy(REPO / "tests" / "report_fixtures.py", fixtures / "report_fixtures.py")
    out = tmp_path / "out"
    run = subprocess.run(
        [str(python), "-I", "-c", CHILD, str(out), str(fixtures)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)

    package_dir = Path(result["package"]).parent
    assert package_dir.is_relative_to(env_dir)
    assert result["template_dirs"] == [str(package_dir / "templates")]
    assert (package_dir / "templates" / "partials" / "domain.html.j2").is_file()
    assert result["schema_title"] == "xenaudit report.json"
    assert {"report.html", "report.json", "summary.csv", "xenaudit.prom"} <= set(result["written"])
    page = (out / "report.html").read_text()
    assert 'id="overview"' in page and page.count('class="domain sev-') == 12
    assert "<script" not in page
