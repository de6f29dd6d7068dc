"""nox sessions: lint, typecheck, tests (fast), slow, gpu, example_plugin."""

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]

TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "faapkit", "plugins", "tests", "examples", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".[dev]")
    session.run("mypy", "faapkit", "plugins")


@nox.session
def tests(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".[dev,hf]")  # hf: the Hugging Face DETR parity test runs, as in CI
    session.run("pytest", "-m", "not slow and not gpu", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session
def example_plugin(session: nox.Session) -> None:
    """Install the example plugin for real and check it is discovered through its entry point."""
    session.install(*TORCH)
    session.install("-e", ".[dev]", "-e", "examples/faap-example-plugin")
    out = session.run("faap", "inspect", "plugins", "--json", silent=True)
    assert "detection_wasserstein" in out, "example plugin not discovered"
    session.run("faap", "config", "show", "--version", "det-only")
