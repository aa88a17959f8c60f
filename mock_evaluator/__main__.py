import sys

from mock_evaluator.cli import main

if __name__ == "__main__":
    sys.exit(main())
