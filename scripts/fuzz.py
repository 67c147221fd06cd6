"""Run the property-based fuzzers of tests/test_fuzz.py for longer than CI does.

    python scripts/fuzz.py [--examples 5000]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--examples", type=int, default=5000, help="examples per fuzz target (CI uses 40)")
args = parser.parse_args()
root = Path(__file__).resolve().parents[1]
env = {**os.environ, "MUSICREC_FUZZ_EXAMPLES": str(args.examples)}
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/test_fuzz.py", "-p", "no:cacheprovider"],
                         cwd=root, env=env))
