"""What a failed job leaves in its rule's log: a user's error in one line, a bug whole."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from saldissect.core.errors import setup
from saldissect.core.config import ConfigError
from saldissect.core.errors import MissingFileError
setup(sys.argv[1])
{raise_}
"""


@pytest.mark.parametrize(
    ("raise_", "user"),
    [
        ("raise MissingFileError('image not found: a.jpg')", True),
        ("raise ConfigError(\"config key 'x': does not apply\")", True),
        ("open('/nonexistent/a.jpg')", False),  # a FileNotFoundError nobody raised on purpose
        ("{}['key']", False),
    ],
)
def test_a_user_error_is_one_line_and_anything_else_keeps_its_traceback(tmp_path, raise_, user):
    log = tmp_path / "rule.log"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(raise_=raise_), str(log)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    written = log.read_text()
    if user:
        assert "Traceback" not in written and len(written.strip().splitlines()) == 1
        assert "ERROR" in written
    else:
        assert "Traceback (most recent call last)" in written  # in the log, not only stderr
        assert 'File "<string>"' in written
        assert ("FileNotFoundError" in written) or ("KeyError" in written)
