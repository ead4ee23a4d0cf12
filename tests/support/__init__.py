"""Test-only helpers: code the tests need and the shipped package must not carry."""
