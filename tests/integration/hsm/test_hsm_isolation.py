"""R22: the API, the composition root and every non-HSM command run without the HSM code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import json, sys
import dpgnode.api.app, dpgnode.node, dpgnode.cli.main
print(json.dumps(sorted(m for m in ("pkcs11", "dpgnode.adapters.hsm", "dpgnode.signer")
                        if m in sys.modules)))
"""


def test_api_node_and_cli_import_no_hsm_code_when_loaded() -> None:
    # A fresh interpreter: this test process has loaded python-pkcs11 for the other tests.
    result = subprocess.run(  # fixed argv, no shell
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
