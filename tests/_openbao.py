"""Placeholder until the backend lands."""

import pytest


@pytest.fixture
def openbao() -> None:
    pytest.skip("backend not built yet")


@pytest.fixture
def vault_kv_store() -> None:
    pytest.skip("backend not built yet")


@pytest.fixture
def vault_transit_store() -> None:
    pytest.skip("backend not built yet")
