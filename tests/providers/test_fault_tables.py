"""The fault tables: lookups, defaults, precedence, and docs/faults.md in step with them."""

from __future__ import annotations

import logging

import pytest

from captcha_guard._verdict import Fault, Outcome, ProviderFailure, Verdict
from captcha_guard.providers._faults import (
    ALIYUN,
    ALIYUN_VERIFY,
    DEEPKNOW,
    GEETEST,
    SITEVERIFY,
    TABLES,
    FaultTable,
    operator,
    provider,
    user,
)
from tests import ROOT

DOC = ROOT / "docs" / "faults.md"


def test_every_vendor_has_its_default_on_purpose() -> None:
    # The reasoning for each is in docs/faults.md; changing one is a security decision.
    assert SITEVERIFY.default.fault is Fault.USER
    assert GEETEST.default.fault is Fault.PROVIDER
    assert DEEPKNOW.default.fault is Fault.PROVIDER
    assert ALIYUN.default.fault is Fault.PROVIDER
    assert ALIYUN_VERIFY.default.fault is Fault.USER
    for table in TABLES:
        assert table.lookup(None) is table.default
        assert table.lookup("") is table.default
        assert table.lookup("never-heard-of-it") is table.default


def test_every_entry_says_why() -> None:
    for table in TABLES:
        for code, entry in [*table.entries.items(), ("default", table.default)]:
            assert entry.why and "\n" not in entry.why, (table.vendor, code)
            if entry.hint is not None:
                # A hint is a WARNING for a code a client can provoke: only user-bin codes.
                assert entry.fault is Fault.USER, (table.vendor, code)


def test_prefixes_match_the_longest_entry_and_only_when_asked() -> None:
    table = FaultTable(
        "t", {"Invalid": provider("p"), "InvalidParameter": user("u")}, operator("o"), True
    )
    assert table.fault("InvalidParameterValue") is Fault.USER
    assert table.fault("InvalidThing") is Fault.PROVIDER
    assert table.fault("Other") is Fault.OPERATOR
    exact = FaultTable("t", {"Invalid": provider("p")}, user("u"))
    assert exact.fault("InvalidX") is Fault.USER
    assert ALIYUN.fault("Throttling.User") is Fault.PROVIDER
    assert ALIYUN.fault("InvalidAccessKeyId.NotFound") is Fault.OPERATOR
    assert ALIYUN.fault("InvalidParameter.Malformed") is Fault.USER


def test_the_decisive_code_is_the_one_no_client_can_cause() -> None:
    codes = ["invalid-input-response", "internal-error", "invalid-input-secret"]
    assert SITEVERIFY.decisive(codes)[0] == "invalid-input-secret"
    assert SITEVERIFY.decisive(codes[:2])[0] == "internal-error"
    assert SITEVERIFY.decisive([]) == (None, SITEVERIFY.default)


def test_sort_makes_a_rejection_or_a_failure() -> None:
    judged = SITEVERIFY.sort("sitekey-secret-mismatch", provider="hcaptcha", reason="r")
    assert isinstance(judged, Verdict) and judged.outcome is Outcome.REJECTED
    hint = judged.note.hint
    assert hint is not None and hint.level == logging.WARNING  # a client can provoke it
    assert "sitekey-secret-mismatch" in hint.text and judged.details == {}
    failed = GEETEST.sort("-50103", provider="geetest", reason="r", details={"code": "-50103"})
    assert failed == ProviderFailure("r", Fault.OPERATOR, "-50103")


def test_the_tables_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        GEETEST.entries["-50005"] = provider("oops")  # type: ignore[index]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.vendor)
def test_docs_faults_md_lists_every_code_with_its_bin(table: FaultTable) -> None:
    text = DOC.read_text()
    section = text.split(f"### {table.vendor}\n", 1)[1].split("\n### ", 1)[0]
    label = {Fault.USER: "user", Fault.PROVIDER: "provider", Fault.OPERATOR: "operator"}
    for code, entry in table.entries.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| `{code}` |"))
        assert row.split("|")[2].strip().startswith(label[entry.fault]), code
    other = next(line for line in section.splitlines() if line.startswith("| any other |"))
    assert other.split("|")[2].strip().startswith(label[table.default.fault])
