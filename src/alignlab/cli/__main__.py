"""`python -m alignlab.cli`: what launchers such as torchrun run."""

from alignlab.cli import main

if __name__ == "__main__":
    main()
