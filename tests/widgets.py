"""The ALTCHA widget from the npm registry, one install per major version, cached on disk.

``python -m tests.widgets`` installs every major the tests use (``.ci/run`` does this before
pytest); a test that finds one missing installs it the same way. The cache is
``$CAPTCHA_GUARD_WIDGETS`` or ``.cache/widgets`` in the repository (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Major version -> the widget's browser bundle (an ES module) inside the npm package.
BUNDLES = {2: "dist/altcha.js", 3: "dist/main/altcha.js"}
CACHE = Path(
    os.environ.get("CAPTCHA_GUARD_WIDGETS", Path(__file__).resolve().parents[1] / ".cache/widgets")
)


def widget(major: int) -> Path:
    """The path of the ``altcha@major`` widget bundle, installed with npm if it is not yet."""
    prefix = CACHE / f"altcha-{major}"
    bundle = prefix / "node_modules" / "altcha" / BUNDLES[major]
    if not bundle.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed for the widget tests: apt-get install npm")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"altcha@{major}",
            ],
            check=True,
            timeout=300,
        )
    if not bundle.is_file():
        raise RuntimeError(f"altcha@{major} installed without {BUNDLES[major]}")
    return bundle


def version(major: int) -> str:
    """The exact version installed for ``major``, from its package.json."""
    package = widget(major).parents[len(Path(BUNDLES[major]).parts) - 1] / "package.json"
    return str(json.loads(package.read_text())["version"])


if __name__ == "__main__":
    for major in BUNDLES:
        print(f"altcha@{major}: {version(major)} at {widget(major)}", file=sys.stderr)
