"""``python -m faapkit`` runs the CLI (also what ``torchrun -m faapkit`` starts)."""

from faapkit.cli import main

if __name__ == "__main__":
    main()
