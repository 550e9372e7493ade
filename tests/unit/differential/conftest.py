"""Keep the reference libraries' import-time side effects out of the rest of the test session.

eth-account imports py_ecc, which raises ``sys.setrecursionlimit`` to 100000 when imported. That
would leak into every later test in the session (for example the typed-data parser's "JSON
nested too deep" case relies on the interpreter's default limit). Import it here first, once, and
put the limit back; later imports of eth-account are cached and do not touch it again.
"""

from __future__ import annotations

import sys

_limit = sys.getrecursionlimit()
import eth_account  # noqa: E402
import eth_account.messages  # noqa: E402, F401

sys.setrecursionlimit(_limit)
