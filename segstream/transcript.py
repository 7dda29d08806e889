"""``make transcript``: run the demo and put its real output into the README.

The README's demo transcript lives between ``<!-- transcript:start -->`` and
``<!-- transcript:end -->``; this module runs ``segstream demo`` (the command ``make demo``
runs), keeps what a terminal would finally show (the last state of each progress bar line),
and rewrites the block with the output, the command and the date. Nothing is pasted by hand.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["END", "START", "rewrite_block", "terminal_text"]

START, END = "<!-- transcript:start -->", "<!-- transcript:end -->"
COMMAND = "make demo"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_BAR = re.compile(r"^([^:|]+?)\s*:\s+\d+%\|")  # a tqdm line: "<label>: NN%|"


def terminal_text(raw: str) -> str:
    r"""What a terminal finally shows: each line's text after its last carriage return, no escape
    codes, and of each run of progress-bar lines (tqdm, which redraws in place) only the last
    state of each bar, in the order the bars first appeared; runs of blank lines as one.

    >>> terminal_text("bar: 10%|#\rbar: 100%|##\n\nup:  50%|#\nbar: 100%|## done\x1b[A\nnext\n\n\nend\n")
    'bar: 100%|## done\nup:  50%|#\nnext\n\nend'
    """
    lines: list[str] = []
    bars: dict[str, int] = {}  # bar label -> its line in the current run of progress lines
    for line in _ANSI.sub("", raw).split("\n"):
        shown = [part for part in line.split("\r") if part.strip()]
        text = shown[-1].rstrip() if shown else ""
        bar = _BAR.match(text)
        if not text and bars:
            continue  # tqdm's own line feeds between the bars it redraws
        if bar is None:
            bars.clear()
            if text or (lines and lines[-1]):
                lines.append(text)
        elif bar.group(1) in bars:
            lines[bars[bar.group(1)]] = text
        else:
            bars[bar.group(1)] = len(lines)
            lines.append(text)
    return "\n".join(lines).strip("\n")


def rewrite_block(readme: str, output: str, command: str, date: str) -> str:
    """``readme`` with the text between the markers replaced by ``output`` in a code block.

    >>> rewrite_block(f"a\\n{START}\\nold\\n{END}\\nz", "new", "make demo", "2026-11-29")
    'a\\n<!-- transcript:start -->\\nThe output of `make demo` on 2026-11-29 (written by `make transcript`, unedited):\\n\\n```\\nnew\\n```\\n<!-- transcript:end -->\\nz'
    """
    start, end = readme.index(START), readme.index(END)
    if end < start:
        raise ValueError("the transcript markers are out of order")
    body = f"The output of `{command}` on {date} (written by `make transcript`, unedited):\n\n```\n{output}\n```\n"
    return readme[: start + len(START)] + "\n" + body + readme[end:]


def main() -> int:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    run = subprocess.run(
        [sys.executable, "-m", "segstream", "demo", *sys.argv[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    output = terminal_text(run.stdout)
    print(output)
    if run.returncode != 0:
        print(f"the demo exited with {run.returncode}: README left as it was", file=sys.stderr)
        return run.returncode
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    readme.write_text(rewrite_block(readme.read_text(), output, COMMAND, date))
    print(f"rewrote the transcript in {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
