"""captcha_guard's tests, in folders that mirror the package's."""

from pathlib import Path

#: The repository's root, for the tests that read its files or start processes in it.
ROOT = Path(__file__).resolve().parent.parent
