"""Screenshots of three pages of the built docs site, opened from disk as a reader would (headless Chromium).

    make docs && python scripts/docs_screenshots.py            # -> runs/docs_screenshots/*.png

For a look by eye after changing the site's layout (not part of CI: it needs a Chromium, e.g.
``apt-get install chromium``): the home page, a tutorial with code blocks, and an API page whose docstring had
reST roles and a literal block.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("index.html", "tutorials/own_data.html", "api/neurons.base.html")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", default=str(ROOT / "site"), help="the built site (default: site/)")
    p.add_argument("--out", default=str(ROOT / "runs" / "docs_screenshots"), help="folder for the PNG files")
    p.add_argument("--width", type=int, default=1280, help="window width in pixels (default: %(default)s)")
    p.add_argument("--height", type=int, default=1800, help="window height in pixels (default: %(default)s)")
    args = p.parse_args(argv)
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        print("docs_screenshots: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    site, out = Path(args.site).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for page in PAGES:
        if not (site / page).is_file():
            print(f"docs_screenshots: {site / page} does not exist (make docs first)", file=sys.stderr)
            return 2
        png = out / (page.replace("/", "_").removesuffix(".html") + ".png")
        size = f"--window-size={args.width},{args.height}"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", size]
        cmd = [browser, *flags, f"--screenshot={png.resolve()}", (site / page).as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
