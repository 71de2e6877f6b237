"""Compile the test ERC-20 (TestToken.sol) into TestToken.json: ABI + creation bytecode.

The command that made the committed TestToken.json (after ``scripts/components``, which installs
solc 0.8.37 from npm under ``.cache/components/npm``)::

    .venv/bin/python -m tests.contracts.compile

It runs solcjs with a fixed standard-JSON input (optimizer on, 200 runs, EVM ``cancun``, no
metadata hash), so the output depends only on the source and the compiler version; the
integration tests recompile and compare, so the JSON cannot drift from the source unnoticed.
The tests themselves only read the JSON and never need the compiler.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOURCE = HERE / "TestToken.sol"
ARTIFACT = HERE / "TestToken.json"
SOLC_JS = REPO / ".cache" / "components" / "npm" / "node_modules" / "solc" / "solc.js"
CONTRACT = "TestToken"
_TIMEOUT_S = 300  # solcjs is slow on a busy machine, but a hung compiler must not hang CI


def standard_input(source: str) -> dict[str, Any]:
    """The solc standard-JSON input: every setting that changes the bytecode is fixed here."""
    return {
        "language": "Solidity",
        "sources": {"TestToken.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "metadata": {"bytecodeHash": "none", "appendCBOR": False},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def compile_contract(solc_js: Path = SOLC_JS) -> dict[str, Any]:
    """Run solcjs on TestToken.sol and return the artifact (compiler, abi, bytecode)."""
    request = json.dumps(standard_input(SOURCE.read_text()))
    version = subprocess.run(
        ["node", str(solc_js), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=_TIMEOUT_S,
    ).stdout.strip()
    result = subprocess.run(
        ["node", str(solc_js), "--standard-json"],
        input=request,
        capture_output=True,
        text=True,
        check=True,
        timeout=_TIMEOUT_S,
    )
    # solcjs may print a notice line (">>> Cannot retry compilation with SMT ...") before the JSON.
    output = json.loads(result.stdout[result.stdout.index("{") :])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc: " + "; ".join(e["formattedMessage"] for e in errors))
    contract = output["contracts"]["TestToken.sol"][CONTRACT]
    return {
        "contract": CONTRACT,
        "compiler": f"solc {version}",
        "settings": standard_input("")["settings"],
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
    }


def load_artifact() -> dict[str, Any]:
    """The committed artifact, as the tests use it."""
    artifact: dict[str, Any] = json.loads(ARTIFACT.read_text())
    return artifact


def main() -> int:
    if not SOLC_JS.exists():
        print(f"solc not found at {SOLC_JS}: run scripts/components first", file=sys.stderr)
        return 1
    artifact = compile_contract()
    ARTIFACT.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
    print(
        f"wrote {ARTIFACT.relative_to(REPO)} ({len(artifact['bytecode']) // 2 - 1} bytes of code)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
