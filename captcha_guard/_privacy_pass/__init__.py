"""Private Access Tokens (Privacy Pass: RFC 9576, 9577, 9578), sans-I/O.

``_wire`` the TokenChallenge and Token structures, ``_auth`` the PrivateToken headers,
``_spki`` issuer keys, ``_rsa`` the RSASSA-PSS check, ``_context`` stateless redemption
contexts, ``_issuers`` issuer directories and their caching, ``_tokens`` the configuration
and the judgement of one token.
"""

from ._issuers import TokenIssuer
from ._tokens import NAMESPACE, PrivateTokens, TokenCheck, TokenStatus

__all__ = ["NAMESPACE", "PrivateTokens", "TokenCheck", "TokenIssuer", "TokenStatus"]
