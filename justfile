# Starter Ledger task runner. `just --list` shows every recipe.
# Recipes use the project virtualenv (.venv) when it exists, else the python on PATH.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := justfile_directory() / ".venv"
python := if path_exists(venv / "bin/python") == "true" { venv / "bin/python" } else { "python3" }
bin := if path_exists(venv / "bin/python") == "true" { venv / "bin/" } else { "" }

# Show the recipes.
default:
    @just --list

# Install the project and its dev tools into .venv (idempotent).
setup:
    test -x {{venv}}/bin/python || python3 -m venv {{venv}}
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check -e ./contracts -e '.[dev]'

# Steps: create a ledger, append, rotate a signing key, publish the JWKS, sign a test token,
# print a checkpoint, verify.
#
# End to end on the embedded default (SQLite in .ledger/, a file key store).
demo dir=".ledger":
    {{bin}}starter-cli ledger init --origin localhost/starter-ledger --ledger sqlite:///{{dir}}/ledger.db || test $? -eq 8
    echo '{"text": "platform bootstrapped"}' | {{bin}}starter-cli ledger append --ledger sqlite:///{{dir}}/ledger.db --type note.recorded --payload -
    echo '{"text": "first release planned"}' | {{bin}}starter-cli ledger append --ledger sqlite:///{{dir}}/ledger.db --type note.recorded --payload -
    {{bin}}starter-cli ledger show --ledger sqlite:///{{dir}}/ledger.db
    {{bin}}starter-cli keys rotate --ledger sqlite:///{{dir}}/ledger.db --activate-now
    {{bin}}starter-cli keys publish --ledger sqlite:///{{dir}}/ledger.db --out {{dir}}/jwks.json
    {{bin}}starter-cli keys status --ledger sqlite:///{{dir}}/ledger.db
    {{bin}}starter-cli keys sign-test --ledger sqlite:///{{dir}}/ledger.db
    {{bin}}starter-cli ledger checkpoint --ledger sqlite:///{{dir}}/ledger.db --out {{dir}}/checkpoint.txt
    {{bin}}starter-cli ledger verify --ledger sqlite:///{{dir}}/ledger.db --checkpoint {{dir}}/checkpoint.txt --jwks {{dir}}/jwks.json

# Run the whole test suite.
test *args:
    {{python}} -m pytest {{args}}

# The ledger signer trusted to freeze the contracts (the kid in contracts/snapshots/FROZEN.json).
contracts_signer := "nL-ZHyC6BsVhCSGWCddyb2R3j02ESWa4dQeYdfw2ikM"

# Lint: ruff, import boundaries, frozen contract schemas and CONTRACTS.md's generated blocks.
lint:
    {{python}} -m ruff format --check .
    {{python}} -m ruff check .
    {{bin}}lint-imports
    STARTER_TRUSTED_KIDS={{contracts_signer}} {{bin}}starter-cli contracts check
    {{bin}}starter-cli contracts graph --check

# Freeze the contracts' schema snapshots into the project ledger; then commit them.
contracts-freeze ledger="sqlite:///.ledger/project/ledger.db":
    {{bin}}starter-cli contracts freeze --ledger {{ledger}}

# Fail when the code's schemas differ from the committed, signed snapshots.
contracts-check:
    STARTER_TRUSTED_KIDS={{contracts_signer}} {{bin}}starter-cli contracts check

# Bump the version (major|minor|patch|prerelease) from the project ledger; freezes too.
bump part *args:
    {{bin}}starter-cli release bump {{part}} {{args}} --ledger sqlite:///.ledger/project/ledger.db

# Regenerate CHANGELOG.md from the project ledger (needs .ledger/project/).
changelog-write:
    {{bin}}starter-cli changelog write --ledger sqlite:///.ledger/project/ledger.db

# Regenerate CONTRACTS.md's public API and import graph from the real code.
contracts-graph:
    {{bin}}starter-cli contracts graph

# Type-check with mypy (strict, pydantic plugin).
typecheck:
    {{python}} -m mypy

# Benchmarks: prints a table of figures beside baselines measured in the same run.
bench *args:
    {{python}} bench/run.py {{args}}

# Platform smoke: the backend under uvicorn on a free loopback port, checked end to end (~10 s).
smoke:
    {{python}} tests/smoke.py

# A whole release from the ledger on a throw-away copy: bump, SBOM, audit, tag, publish, verify.
release-demo:
    {{python}} tests/release_demo.py

# Everything CI checks.
ci: lint typecheck test smoke
