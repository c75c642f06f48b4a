"""`python -m harness.runner scenario.json`: run one scenario with the built-in colocated runner."""

import sys

from harness.runner.loop import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
