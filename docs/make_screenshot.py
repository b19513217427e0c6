"""Take the README's dashboard screenshot (docs/images/dashboard.png) of a real run.

Run by hand, after ``epochstore demo`` has made ``runs/modadd/demo``::

    python docs/make_screenshot.py [--run runs/modadd/demo] [--root runs]
                                   [--out docs/images/dashboard.png]

It copies nothing: it serves ``--root`` with ``epochstore serve`` in a
subprocess on a free local port, opens the page in headless Chromium (``/usr/bin/chromium``,
driven by Playwright; no browser download), picks the run in the Variant menu, waits until the figures are drawn and the header
names the run, and saves a full-page PNG. The header shows the run's name relative to the
served directory (``modadd/demo``), never a temporary path.

Needs the ``dev`` extra (Playwright) and Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("EPOCHSTORE_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"`epochstore serve` exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the dashboard did not answer at {url} within {timeout:.0f} s")


def take_screenshot(
    run: Path, out: Path, *, root: Path, width: int = 1400, height: int = 1000
) -> None:
    """Serve ``root`` and save a screenshot of the page showing ``run`` (a run under it)."""
    from playwright.sync_api import sync_playwright

    if not (run / "variant.json").is_file():
        raise SystemExit(f"{run} is not a run (no variant.json): run `epochstore demo` first")
    try:
        name = run.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise SystemExit(f"{run} is not under the served directory {root}: pass --root") from None
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "epochstore.cli", "serve", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.click("#run-a")  # pick the run, as a user does
            page.get_by_role("option", name=name).click()
            page.get_by_text(name).first.wait_for(timeout=60_000)  # the header names the run
            # Every panel drawn: each graph in the columns holds a plot and none still loads.
            page.wait_for_function(
                """() => {
                    const graphs = document.querySelectorAll('#columns .dash-graph');
                    return graphs.length > 0 && [...graphs].every(
                        g => g.querySelector('.main-svg') && !g.querySelector('.dash-spinner,'
                            + ' ._dash-loading, [data-dash-is-loading="true"]'))
                        && !document.body.innerText.includes('Loading...');
                }""",
                timeout=120_000,
            )
            page.wait_for_load_state("networkidle")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {out} ({name} served from {root})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/modadd/demo"))
    parser.add_argument("--root", type=Path, default=Path("runs"), help="directory to serve")
    parser.add_argument("--out", type=Path, default=Path("docs/images/dashboard.png"))
    args = parser.parse_args()
    take_screenshot(args.run, args.out, root=args.root)


if __name__ == "__main__":
    main()
