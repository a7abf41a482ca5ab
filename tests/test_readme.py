"""The README's runnable examples run as written and print what they promise."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    [quick_start] = [b for b in blocks if "asyncio.run(main())" in b]
    result = subprocess.run(
        [sys.executable, "-c", quick_start], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "ag2.msg.text you asked: what is the meaning of life?" in result.stdout
    assert result.stdout.strip().endswith("closed consulting_complete")


def test_delegate_work_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    [example] = [b for b in blocks if "asyncio.run(delegate_work())" in b]
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["COMPLETED {'summary': 'hubbub hand', 'words': 5}", "1"]
