import sys

from unlearning_mock.mock_evaluator.cli import main

if __name__ == "__main__":
    sys.exit(main())
