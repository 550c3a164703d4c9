"""Placeholder until the backend lands."""

import pytest


@pytest.fixture
def azure_keyvault_store() -> None:
    pytest.skip("backend not built yet")
