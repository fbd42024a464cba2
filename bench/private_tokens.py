"""What a Private Access Token costs the gate: checking one, against the bare RSASSA-PSS
verification underneath it, side by side in one process.

    python -m bench.private_tokens

A throwaway 2048-bit issuer key signs tokens for the gate's own current challenge. CPU time
per call, best of 5 runs of N calls each (the machine is shared).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import timeit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.clearance import run
from captcha_guard import Clearance, PrivateTokens, TokenIssuer
from captcha_guard._clearance import ClearanceContext
from captcha_guard._privacy_pass._auth import parse_challenges
from captcha_guard._privacy_pass._wire import b64decode, b64encode

N = 2_000
NOW = 1_800_000_000.0
# The DER head of a 2048-bit id-RSASSA-PSS SPKI (SHA-384, MGF1-SHA-384, salt 48), RFC 9578.
PSS_HEAD = bytes.fromhex(
    "30820152303d06092a864886f70d01010a3030a00d300b0609608648016503040202a11a30180609"
    "2a864886f70d010108300b0609608648016503040202a2030201300382010f00"
)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def main() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    spki = PSS_HEAD + public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    key_id = hashlib.sha256(spki).digest()
    tokens = PrivateTokens(
        "bench-private-token-secret-0123456789",
        [TokenIssuer("issuer.example", keys=[spki], fetch=False)],
        origin="shop.example",
        clock=lambda: NOW,
    )
    header = tokens.challenge_header(NOW) or ""
    challenge = b64decode((parse_challenges(header) or [])[0][1]["challenge"]) or b""
    token_input = b"\x00\x02" + secrets.token_bytes(32) + hashlib.sha256(challenge).digest()
    token_input += key_id
    signature = private.sign(token_input, PSS, hashes.SHA384())
    valid = f'PrivateToken token="{b64encode(token_input + signature)}"'
    bogus = token_input + bytes(255) + bytes([1])
    forged = f'PrivateToken token="{b64encode(bogus)}"'
    stale = token_input[:34] + bytes(32) + token_input[66:] + signature
    unknown = f'PrivateToken token="{b64encode(stale)}"'
    assert str(tokens.check(valid, NOW).status) == "valid"
    assert str(tokens.check(forged, NOW).status) == "invalid"

    clearance = Clearance("bench-clearance-secret-0123456789abcdef")
    ctx = ClearanceContext("203.0.113.7", "Safari", True, "shop.example", NOW)
    cookie = (run(clearance.issue_flow(ctx, "token:private")) or "").split(";", 1)[0]

    cases = {
        "cryptography PSS verify (the floor)": lambda: public.verify(
            signature, token_input, PSS, hashes.SHA384()
        ),
        "PrivateTokens.check, a valid token": lambda: tokens.check(valid, NOW),
        "PrivateTokens.check, a forged signature": lambda: tokens.check(forged, NOW),
        "PrivateTokens.check, an unknown challenge": lambda: tokens.check(unknown, NOW),
        "challenge_header": lambda: tokens.challenge_header(NOW),
        "Clearance.read of the cookie a token mints": lambda: run(
            clearance.check_flow(cookie, ctx, "token:private")
        ),
    }
    results = {}
    for name, call in cases.items():
        best = min(timeit.repeat(call, timer=time.process_time, number=N, repeat=5)) / N
        results[name] = best
    floor = results["cryptography PSS verify (the floor)"]
    print(f"{'call':45s} {'µs':>8s}  ratio to the floor")
    for name, best in results.items():
        print(f"{name:45s} {best * 1e6:8.1f}  {best / floor:5.2f}x")


if __name__ == "__main__":
    main()
