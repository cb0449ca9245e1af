"""Where the tests find the repository and the shared fixture files, whatever folder a test module sits in."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
