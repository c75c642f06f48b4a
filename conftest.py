"""The repository's root conftest: registers the colobench pytest plugin for `pytest`, `pytest .` and `pytest suites/`."""

pytest_plugins = ["harness.pytest_plugin"]
