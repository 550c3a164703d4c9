"""Placeholder until the backend lands."""

import pytest


@pytest.fixture
def moto_server() -> None:
    pytest.skip("backend not built yet")


@pytest.fixture
def aws_kms_store() -> None:
    pytest.skip("backend not built yet")


@pytest.fixture
def aws_secretsmanager_store() -> None:
    pytest.skip("backend not built yet")
