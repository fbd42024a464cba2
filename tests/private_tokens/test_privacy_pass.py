"""The Privacy Pass core against the RFCs' own vectors, and against tokens minted here.

RFC 9578 appendix A.2 (five Blind RSA tokens with their issuer key) and RFC 9577 appendix A
(challenge structures, WWW-Authenticate headers) are facts:
tests/private_tokens/privacy_pass_vectors.py holds them as published. Tokens of our own come
from tests/privacy_pass_issuer.py, a blind RSA issuer written from RFC 9474 that reproduces the
RFC 9578 vectors byte for byte.
"""

from __future__ import annotations

import hashlib
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captcha_guard import PrivateTokens, TokenIssuer
from captcha_guard._privacy_pass._auth import challenge_value, parse_challenges, token_param
from captcha_guard._privacy_pass._context import Contexts
from captcha_guard._privacy_pass._issuers import freshness, parse_directory
from captcha_guard._privacy_pass._rsa import Verifier
from captcha_guard._privacy_pass._spki import parse_spki
from captcha_guard._privacy_pass._tokens import TokenStatus
from captcha_guard._privacy_pass._wire import (
    TOKEN_BYTES,
    Token,
    TokenChallenge,
    b64decode,
    b64encode,
)
from captcha_guard._state import StateFull, StateUnavailable
from captcha_guard.providers._wire import ProviderResponse
from tests.privacy_pass_issuer import Issuer, issue_token, sign_directly
from tests.private_tokens.privacy_pass_vectors import CHALLENGE_STRUCTURES, HEADERS, ISSUANCE_TOKENS

SECRET = "private-token-context-secret-0123456789"
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


def _tokens(issuer: Issuer, **options: object) -> PrivateTokens:
    pinned = TokenIssuer("issuer.test", keys=[issuer.spki], fetch=False)
    settings: dict[str, object] = {"origin": "site.test", "grease": 0.0, **options}
    return PrivateTokens(SECRET, [pinned], **settings)  # type: ignore[arg-type]


def _authorization(token: bytes) -> str:
    return f'PrivateToken token="{b64encode(token)}"'


def _current_challenge(tokens: PrivateTokens, at: float = NOW) -> bytes:
    header = tokens.challenge_header(at)
    assert header is not None
    (params,) = [p for s, p in parse_challenges(header) or [] if s == "PrivateToken"]
    raw = b64decode(params["challenge"])
    assert raw is not None
    return raw


# -- RFC 9578 appendix A.2 ------------------------------------------------------------------


@pytest.mark.parametrize("vector", ISSUANCE_TOKENS, ids=lambda v: v["nonce"][:8])
def test_rfc9578_tokens_decode_and_verify(vector: dict[str, str]) -> None:
    raw = bytes.fromhex(vector["token"])
    assert len(raw) == TOKEN_BYTES == 354
    token = Token.decode(raw)
    assert token is not None and token.encode() == raw
    challenge = bytes.fromhex(vector["token_challenge"])
    decoded = TokenChallenge.decode(challenge)
    assert decoded is not None and decoded.encode() == challenge
    assert token.nonce.hex() == vector["nonce"]
    assert token.challenge_digest == hashlib.sha256(challenge).digest() == decoded.digest()
    key = parse_spki(bytes.fromhex(vector["pkS"]))
    assert key is not None and key.salt_length == 48
    assert token.token_key_id == key.token_key_id == hashlib.sha256(key.spki).digest()
    verifier = Verifier(key)
    assert verifier.verify(token.authenticator_input(), token.authenticator)
    forged = bytearray(token.authenticator)
    forged[-1] ^= 1
    assert not verifier.verify(token.authenticator_input(), bytes(forged))
    other_nonce = b"\x00\x02" + bytes(32) + token.challenge_digest + token.token_key_id
    assert not verifier.verify(other_nonce, token.authenticator)


@pytest.mark.parametrize("vector", ISSUANCE_TOKENS, ids=lambda v: v["nonce"][:8])
def test_our_test_issuer_reproduces_rfc9578_issuance(vector: dict[str, str]) -> None:
    """The test issuer is trustworthy: blind, sign and finalize give the RFC's bytes."""
    issuer = Issuer.from_pem(bytes.fromhex(vector["skS"]))
    assert issuer.spki.hex() == vector["pkS"]
    token, blinded, response = issue_token(
        issuer,
        bytes.fromhex(vector["token_challenge"]),
        nonce=bytes.fromhex(vector["nonce"]),
        salt=bytes.fromhex(vector["salt"]),
        r=int(vector["blind"], 16),
    )
    assert blinded.token_request.hex() == vector["token_request"]
    assert response.hex() == vector["token_response"]
    assert token.hex() == vector["token"]


def test_rfc9578_token_is_refused_when_we_did_not_issue_its_challenge() -> None:
    vector = ISSUANCE_TOKENS[0]
    pinned = TokenIssuer("issuer.example", keys=[bytes.fromhex(vector["pkS"])], fetch=False)
    tokens = PrivateTokens(SECRET, [pinned], origin="origin.example")
    token = bytes.fromhex(vector["token"])
    # A genuine signature over a challenge whose context is not one of ours.
    assert tokens.check(_authorization(token), NOW).status is TokenStatus.UNKNOWN_CHALLENGE


# -- RFC 9577 appendix A ---------------------------------------------------------------------


@pytest.mark.parametrize("vector", CHALLENGE_STRUCTURES[:5], ids=range(1, 6))
def test_rfc9577_challenge_and_authenticator_input(vector: dict[str, str]) -> None:
    challenge = TokenChallenge(
        int(vector["token_type"], 16),
        bytes.fromhex(vector["issuer_name"]),
        bytes.fromhex(vector["redemption_context"]),
        bytes.fromhex(vector["origin_info"]),
    )
    assert TokenChallenge.decode(challenge.encode()) == challenge
    token = Token(
        challenge.token_type,
        bytes.fromhex(vector["nonce"]),
        challenge.digest(),
        bytes.fromhex(vector["token_key_id"]),
        bytes(256),
    )
    assert token.authenticator_input().hex() == vector["token_authenticator_input"]


def test_rfc9577_greased_structure_is_not_a_token() -> None:
    grease = CHALLENGE_STRUCTURES[5]
    assert grease["token_type"] == "0000"
    raw = bytes.fromhex(grease["token_authenticator_input"])
    assert Token.decode(raw) is None
    assert Token.decode(raw[:2] + secrets.token_bytes(TOKEN_BYTES - 2)) is None


@pytest.mark.parametrize("index", range(len(HEADERS)))
def test_rfc9577_headers_parse(index: int) -> None:
    params, header = HEADERS[index]
    parsed = parse_challenges(header)
    assert parsed is not None
    private = [p for scheme, p in parsed if scheme == "PrivateToken"]
    listed = sorted({k.rsplit("-", 1)[1] for k in params})
    assert len(private) == len(listed)
    for i, found in zip(listed, private, strict=True):
        assert b64decode(found["challenge"]) == bytes.fromhex(params[f"token-challenge-{i}"])
        assert b64decode(found["token-key"]) == bytes.fromhex(params[f"token-key-{i}"])
        assert found.get("max-age") == (params.get(f"max-age-{i}") or None)
        assert found.get("unknownchallengeattribute") in (None, "ignore-me")


def test_our_challenge_header_is_the_rfc9577_spelling() -> None:
    params, header = HEADERS[0]
    ours = challenge_value(
        bytes.fromhex(params["token-challenge-0"]), bytes.fromhex(params["token-key-0"]), 10
    )
    assert ours == header.replace(',unknownChallengeAttribute="ignore-me"', "")


def test_greased_and_foreign_challenges_in_the_rfc_header_are_not_ours() -> None:
    _, header = HEADERS[2]
    parsed = parse_challenges(header)
    assert parsed is not None and parsed[0] == ("Basic", {"realm": "grease"})
    types = []
    for _, params in parsed[1:]:
        raw = b64decode(params["challenge"])
        assert raw is not None
        types.append(int.from_bytes(raw[:2], "big"))
    assert types == [0x0000, 0x0001]


# -- headers, base64, bounds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('PrivateToken token="abc="', "abc="),
        ("PrivateToken token=abc", "abc"),
        ('privatetoken   token = "abc="', "abc="),
        ('Basic dXNlcg==, PrivateToken token="abc="', "abc="),
        ('PrivateToken other="x", token="y"', "y"),
        ('Bearer x, Basic realm="a"', None),
        ('PrivateToken token="unterminated', None),
        ("", None),
        ("PrivateToken", None),
        ("=oops", None),
    ],
)
def test_authorization_token_param(value: str, expected: str | None) -> None:
    assert token_param(value) == expected


@given(st.text(max_size=300))
def test_header_parser_never_raises(text: str) -> None:
    parse_challenges(text)
    token_param(text)


def test_header_parser_is_bounded() -> None:
    assert parse_challenges("a=b, " * 5000) is None
    assert parse_challenges(", ".join(f"S{i} p=1" for i in range(100))) is None


def test_b64_takes_padded_and_unpadded_and_nothing_else() -> None:
    assert b64decode("AAE=") == b"\x00\x01" == b64decode("AAE")
    assert b64encode(b"\x00\x01") == "AAE="
    for bad in ("AA=E", "A", "AAE==", "AA+E", "AA/E", "AA E", "AAE=="):
        assert b64decode(bad) is None, bad
    assert b64decode("A" * 100, limit=10) is None


def test_challenge_decoder_refuses_every_misshape() -> None:
    good = TokenChallenge(2, b"issuer.test", bytes(32), b"site.test").encode()
    assert TokenChallenge.decode(good) is not None
    assert TokenChallenge.decode(good + b"\0") is None
    for cut in range(len(good)):
        assert TokenChallenge.decode(good[:cut]) is None
    at = 4 + len(b"issuer.test")  # the context's length byte
    assert good[at] == 32
    bad_context = good[:at] + bytes([16]) + good[at + 1 :]
    assert TokenChallenge.decode(bad_context) is None
    with pytest.raises(ValueError):
        TokenChallenge(2, b"", b"", b"").encode()
    with pytest.raises(ValueError):
        TokenChallenge(2, b"i", bytes(16), b"").encode()


# -- keys and directories ------------------------------------------------------------------------


def test_spki_parser_takes_only_pss_sha384_2048(issuer: Issuer) -> None:
    key = parse_spki(issuer.spki)
    assert key is not None and key.token_key_id == issuer.token_key_id
    from cryptography.hazmat.primitives import serialization

    plain = issuer.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parse_spki(plain) is None  # rsaEncryption, not id-RSASSA-PSS
    assert parse_spki(issuer.spki + b"\0") is None
    sha256 = issuer.spki.replace(
        bytes.fromhex("608648016503040202"), bytes.fromhex("608648016503040201")
    )
    assert parse_spki(sha256) is None
    for cut in (0, 10, 60, len(issuer.spki) - 1):
        assert parse_spki(issuer.spki[:cut]) is None


def test_directory_parse_keeps_type2_pss_keys_in_order(issuer: Issuer) -> None:
    other = Issuer()
    document = {
        "issuer-request-uri": "/x",
        "token-keys": [
            {"token-type": 1, "token-key": b64encode(b"\x01" * 49)},
            {"token-type": 2, "token-key": b64encode(other.spki), "not-before": 1},
            {"token-type": 2, "token-key": b64encode(issuer.spki).rstrip("=")},
            {"token-type": 2, "token-key": "not base64!"},
            "junk",
        ],
    }
    import json

    keys = parse_directory(json.dumps(document).encode())
    assert keys is not None
    assert [k.token_key_id for k in keys] == [other.token_key_id, issuer.token_key_id]
    assert parse_directory(b"[]") is None
    assert parse_directory(b"{") is None
    assert parse_directory(json.dumps({"token-keys": []}).encode()) == ()


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, 3600.0),
        ({"cache-control": "max-age=86400"}, 86_400.0),
        ({"cache-control": "public, max-age=7200", "age": "200"}, 7000.0),
        ({"cache-control": "max-age=10"}, 60.0),  # never more often than once a minute
        ({"cache-control": "max-age=9999999"}, 86_400.0),  # never longer than a day
        ({"cache-control": "no-store"}, 60.0),
        (
            {"expires": "Mon, 07 Dec 2026 14:00:00 GMT", "date": "Mon, 07 Dec 2026 12:00:00 GMT"},
            7200.0,
        ),
        ({"expires": "garbage"}, 60.0),
    ],
)
def test_directory_freshness_follows_http_caching(headers: dict[str, str], seconds: float) -> None:
    assert freshness(headers) == seconds


def test_issuer_keeps_keys_when_a_fetch_fails(issuer: Issuer) -> None:
    import json

    source = TokenIssuer("issuer.test", directory="https://issuer.test/d", retry=30)
    assert source.due(0.0) and source.trusted() == ()
    source.fetch_request(0.0, 5.0)
    assert not source.due(1.0)  # one fetch at a time
    body = json.dumps(issuer.directory()).encode()
    answer = ProviderResponse(200, {"cache-control": "max-age=600"}, body)
    assert source.accept(answer, 2.0) is None
    assert [k.token_key_id for k in source.trusted()] == [issuer.token_key_id]
    assert not source.due(601.0) and source.due(602.0)
    assert source.accept(ProviderResponse(503, {}, b""), 602.0) == "status 503"
    assert source.trusted() and not source.due(631.0) and source.due(632.0)
    assert source.accept(ProviderResponse(200, {}, b"{}"), 632.0) == "not a directory"
    assert [k.token_key_id for k in source.trusted()] == [issuer.token_key_id]


def test_issuer_configuration_is_checked(issuer: Issuer) -> None:
    with pytest.raises(ValueError):
        TokenIssuer("user@issuer.test")
    with pytest.raises(ValueError):
        TokenIssuer("issuer.test", fetch=False)
    with pytest.raises(ValueError):
        TokenIssuer("issuer.test", keys=["bm90IGEga2V5"])
    with pytest.raises(ValueError):
        PrivateTokens("short", ["issuer.test"], origin="site.test")
    with pytest.raises(ValueError):
        PrivateTokens(SECRET, ["issuer.test"], origin="a.test,b.test")
    with pytest.raises(ValueError):
        PrivateTokens(SECRET, ["issuer.test"], origin="site.test", grease=1.0)
    with pytest.raises(ValueError):
        PrivateTokens(SECRET, [], origin="site.test")
    tokens = PrivateTokens(SECRET, ["issuer.test"], origin=["a.test", "B.test"])
    assert tokens.origin_info == b"a.test,b.test"
    assert SECRET not in repr(tokens)


# -- contexts and the judgement of one token -----------------------------------------------------


def test_contexts_are_deterministic_per_bucket_and_secret() -> None:
    one, two = Contexts(b"a" * 16, 300), Contexts(b"b" * 16, 300)
    assert one.context(5) == Contexts(b"a" * 16, 300).context(5)
    assert one.context(5) != one.context(6) and one.context(5) != two.context(5)
    assert len(one.context(5)) == 32
    assert one.accepted(301.0) == (1, 0)
    assert one.lifetime(1, 301.0) == 599.0  # accepted through bucket 2, until 900


def test_a_minted_token_is_valid_once(issuer: Issuer) -> None:
    tokens = _tokens(issuer)
    challenge = _current_challenge(tokens)
    parsed = TokenChallenge.decode(challenge)
    assert parsed is not None and parsed.origin_info == b"site.test"
    assert parsed.issuer_name == b"issuer.test" and len(parsed.redemption_context) == 32
    token, _, _ = issue_token(issuer, challenge)
    check = tokens.check(_authorization(token), NOW + 1)
    assert check.status is TokenStatus.VALID and not check.cleared and check.op is not None
    name, (namespace, key, ttl) = check.op.name, check.op.args
    assert (name, namespace) == ("remember", "private_token")
    assert b64decode(key) == token[2:34]
    assert 300 <= ttl <= 600
    assert tokens.settle(check, True).cleared
    assert tokens.settle(check, False).status is TokenStatus.REPLAYED
    assert tokens.settle(check, StateFull("x")).status is TokenStatus.UNAVAILABLE
    unavailable = tokens.settle(check, StateUnavailable("timeout"))  # type: ignore[arg-type]
    assert unavailable.status is TokenStatus.UNAVAILABLE


def test_token_lifetime_is_one_to_two_windows(issuer: Issuer) -> None:
    tokens = _tokens(issuer, window=300)
    start = 300 * (NOW // 300)
    token = sign_directly(issuer, _current_challenge(tokens, start))
    assert tokens.check(_authorization(token), start + 599).status is TokenStatus.VALID
    assert tokens.check(_authorization(token), start + 600).status is TokenStatus.UNKNOWN_CHALLENGE
    assert tokens.check(_authorization(token), start - 1).status is TokenStatus.UNKNOWN_CHALLENGE


def test_every_way_a_token_can_be_wrong(issuer: Issuer) -> None:
    tokens = _tokens(issuer)
    challenge = _current_challenge(tokens)
    good = sign_directly(issuer, challenge)

    def status(token: bytes | str | None) -> TokenStatus:
        value = token if isinstance(token, str) or token is None else _authorization(token)
        return tokens.check(value, NOW).status

    assert status(good) is TokenStatus.VALID
    assert status(None) is TokenStatus.ABSENT
    assert status("Bearer abc") is TokenStatus.ABSENT
    assert status('PrivateToken token="!!"') is TokenStatus.MALFORMED
    assert status(good[:-1]) is TokenStatus.MALFORMED
    assert status(b"\x00\x01" + good[2:]) is TokenStatus.MALFORMED
    flipped = good[:-1] + bytes([good[-1] ^ 1])
    assert status(flipped) is TokenStatus.INVALID
    stranger = Issuer()
    assert status(sign_directly(stranger, challenge)) is TokenStatus.UNKNOWN_KEY
    other_site = _tokens(issuer, origin="elsewhere.test")
    assert status(sign_directly(issuer, _current_challenge(other_site))) is (
        TokenStatus.UNKNOWN_CHALLENGE
    )
    other_secret = PrivateTokens(
        "another-secret-0123456789abcdef",
        [TokenIssuer("issuer.test", keys=[issuer.spki], fetch=False)],
        origin="site.test",
        grease=0.0,
    )
    assert status(sign_directly(issuer, _current_challenge(other_secret))) is (
        TokenStatus.UNKNOWN_CHALLENGE
    )


@pytest.mark.parametrize(("salt", "status"), [(48, "valid"), (0, "valid"), (32, "invalid")])
def test_pss_salt_lengths_of_token_type_2(issuer: Issuer, salt: int, status: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    tokens = _tokens(issuer)
    challenge = _current_challenge(tokens)
    token_input = b"\x00\x02" + secrets.token_bytes(32) + hashlib.sha256(challenge).digest()
    token_input += issuer.token_key_id
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt)
    token = token_input + issuer.private.sign(token_input, pss, hashes.SHA384())
    assert str(tokens.check(_authorization(token), NOW).status) == status


def test_no_key_means_off(issuer: Issuer) -> None:
    tokens = PrivateTokens(SECRET, ["issuer.test"], origin="site.test")
    assert not tokens.active() and tokens.challenge_header(NOW) is None
    token = sign_directly(issuer, TokenChallenge(2, b"issuer.test", bytes(32), b"x").encode())
    assert tokens.check(_authorization(token), NOW).status is TokenStatus.OFF


def test_grease_skips_challenges_and_adds_reserved_types(issuer: Issuer) -> None:
    never = _tokens(issuer, grease=0.0, random=lambda: 0.5)
    assert not never.skip_challenge()
    header = never.challenge_header(NOW)
    assert header is not None and len(parse_challenges(header) or []) == 1
    always = _tokens(issuer, grease=0.75, random=lambda: 0.5)
    assert always.skip_challenge()
    header = always.challenge_header(NOW)
    parsed = parse_challenges(header or "") or []
    assert len(parsed) == 2
    greased = b64decode(parsed[1][1]["challenge"])
    assert greased is not None and int.from_bytes(greased[:2], "big") != 2
