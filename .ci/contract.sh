# Sourced by .ci/test: installs Schemathesis from PyPI
# into target/contract/tools for the API contract test
# (tests/tests/contract.rs) and tells the test where it is. CI fails here
# if it cannot be installed, rather than let the test skip.
contract_tools="$PWD/target/contract/tools"
if [ ! -x "$contract_tools/bin/st" ]; then
    echo "contract: installing schemathesis from PyPI" >&2
    python3 -m venv "$contract_tools"
    "$contract_tools/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
export SUANLI_SCHEMATHESIS="$contract_tools/bin/st"
