"""What the browser suite checks on every page, at every viewport and in both colour schemes:
axe-core's WCAG 2.2 A/AA rules, the contrast of every piece of text (measured here too, so the
figure is in the failure message), and that nothing sticks out of the card. Each combination is
also saved as a screenshot for a reviewer to open."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORTS = {"phone": (390, 844), "narrow": (320, 640), "desktop": (1280, 800)}
SCHEMES = ("light", "dark")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# Every element with its own text: its colour over the backgrounds beneath it (composited up
# to the first opaque one, else the canvas), against WCAG's 4.5:1, or 3:1 for large text.
_CONTRAST_JS = """
(canvas) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = canvas.concat([1]);
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "");
  const results = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.opacity === "0") continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight, 10) >= 700);
    results.push({
      element: name(el), text: el.textContent.trim().slice(0, 40),
      ratio: Math.round(ratio(fg, bg) * 100) / 100, needed: large ? 3 : 4.5,
    });
  }
  return results;
}
"""

# Everything inside the card stays inside its padding box, every line of text included (a long
# word can stick out of an element whose box does not), and the page never scrolls sideways.
_OVERFLOW_JS = """
() => {
  const problems = [];
  const card = document.querySelector(".card");
  if (!card) return ["no .card on the page"];
  const box = card.getBoundingClientRect();
  const style = getComputedStyle(card);
  const left = box.left + parseFloat(style.paddingLeft) - 0.5;
  const right = box.right - parseFloat(style.paddingRight) + 0.5;
  const outside = (r) => r.width > 0 && (r.left < left || r.right > right);
  for (const el of card.querySelectorAll("*")) {
    if (outside(el.getBoundingClientRect())) {
      problems.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}"`);
    }
  }
  const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    if ([...range.getClientRects()].some(outside)) {
      problems.push(`text "${n.textContent.trim().slice(0, 40)}"`);
    }
  }
  if (box.right > window.innerWidth + 0.5 || box.left < -0.5) problems.push("the card itself");
  const width = document.documentElement.scrollWidth;
  if (width > window.innerWidth) problems.push(`page ${width}px wide in ${window.innerWidth}px`);
  return problems;
}
"""

_SCHEME_JS = """
() => {
  const body = getComputedStyle(document.body).backgroundColor;
  const card = document.querySelector(".card");
  return {
    body, radius: card ? getComputedStyle(card).borderTopLeftRadius : "",
    sheets: document.styleSheets.length,
  };
}
"""

# The canvas under a page that paints no background of its own, per scheme (Chromium's).
_CANVAS = {"light": [255, 255, 255], "dark": [18, 18, 18]}


@dataclass
class Report:
    problems: list[str]
    screenshots: list[Path]
    lowest_contrast: dict[str, float]


def check_page(page: Page, name: str, *, extra_widths: tuple[int, ...] = ()) -> Report:
    """Run every check on the page as it is now, in each viewport and scheme, without reloading
    it (so a page reached by a POST is checked as the parent saw it)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    problems: list[str] = []
    shots: list[Path] = []
    lowest: dict[str, float] = {}
    original = page.viewport_size
    for viewport, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            where = f"{name} {viewport} {scheme}"
            problems += [f"{where}: {p}" for p in _styled(page, scheme)]
            problems += [f"{where}: axe {v}" for v in axe_violations(page)]
            found = contrast(page, scheme)
            lowest[f"{viewport} {scheme}"] = min((r["ratio"] for r in found), default=0.0)
            problems += [
                f"{where}: contrast {r['ratio']}:1 < {r['needed']}:1 for {r['element']} "
                f"{r['text']!r}"
                for r in found
                if r["ratio"] < r["needed"]
            ]
            problems += [f"{where}: overflows the card: {p}" for p in overflow(page)]
            shot = SCREENSHOTS / f"{name}-{viewport}-{scheme}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
    for width in extra_widths:
        page.set_viewport_size({"width": width, "height": 740})
        problems += [f"{name} {width}px: overflows the card: {p}" for p in overflow(page)]
    if original:
        page.set_viewport_size(original)
    page.emulate_media(color_scheme="light")
    return Report(problems, shots, lowest)


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations (its script injected once per loaded page)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    results = page.evaluate("(options) => axe.run(document, options)", options)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in results["violations"]
    ]


def contrast(page: Page, scheme: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(_CONTRAST_JS, _CANVAS[scheme])
    return found


def overflow(page: Page) -> list[str]:
    found: list[str] = page.evaluate(_OVERFLOW_JS)
    return found


def _styled(page: Page, scheme: str) -> list[str]:
    """The stylesheet loaded and the scheme took effect: else every other check means little."""
    seen = page.evaluate(_SCHEME_JS)
    problems = []
    if seen["sheets"] < 1 or seen["radius"] != "16px":
        problems.append(f"the stylesheet is not applied ({seen})")
    dark_body = seen["body"] in ("rgb(15, 17, 21)",)
    if dark_body != (scheme == "dark"):
        problems.append(f"the {scheme} scheme is not in effect (body {seen['body']})")
    return problems
