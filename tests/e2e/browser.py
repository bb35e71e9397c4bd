"""What the browser suite checks on every page, at every viewport and in both colour schemes:
axe-core's WCAG 2.2 A/AA rules, the contrast of every piece of text (measured here too, so the
figure is in the failure message), that nothing sticks out of the card, and what axe does not
check (issue 13 item 6): exactly one h1, the page's ``lang``, a title that starts with the h1's
text, targets of at least 24x24 CSS px (links inside a sentence excepted, as WCAG 2.5.8 does),
and reflow without sideways scrolling at 320 CSS px and at 200 % zoom (a 1280 px window zoomed
to 200 % is 640 CSS px wide). Each combination is also saved as a screenshot for a reviewer to
open. The keyboard focus indicator is checked by :func:`focus_ring`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import BrowserContext, FloatRect, Page

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
# WCAG 1.4.10: no sideways scrolling at 320 CSS px, nor at 200 % zoom of a 1280x800 window.
REFLOW = {"320px": (320, 640), "zoom 200%": (640, 400)}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# The axe rules whose answer a colour scheme can change (a third of a full run's time).
COLOUR_RULES = ("color-contrast", "link-in-text-block")

# Every element with its own text: its colour over the backgrounds beneath it (composited up
# to the first opaque one, else the canvas), against WCAG's 4.5:1, or 3:1 for large text.
_COLOUR_JS = """
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
"""
_CONTRAST_JS = (
    """
(canvas) => {"""
    + _COLOUR_JS
    + """
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
)

# The focused control: does it match :focus-visible, what outline it draws, and the outline's
# contrast with the background around the control (WCAG 2.4.7 and 1.4.11's 3:1).
_FOCUSED_JS = (
    """
(canvas) => {"""
    + _COLOUR_JS
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  const around = background(el.parentElement || el);
  const outline = parse(style.outlineColor) || [0, 0, 0, 0];
  return {
    element: el.tagName.toLowerCase() + (el.className ? "." + el.className : ""),
    text: el.textContent.trim().slice(0, 40),
    focusVisible: el.matches(":focus-visible"),
    outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth),
    ratio: Math.round(ratio(over(outline, around), around) * 100) / 100,
    box: {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height},
  };
}
"""
)

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

# One h1, the document's language and title (WCAG 2.4.2, 3.1.1; issue 13: the title starts with
# the heading, then the state, then the organisation).
_STRUCTURE_JS = """
() => ({
  h1s: [...document.querySelectorAll("h1")].map(h => h.innerText.replace(/\\s+/g, " ").trim()),
  lang: document.documentElement.getAttribute("lang"),
  title: document.title.replace(/\\s+/g, " ").trim(),
})
"""

# WCAG 2.5.8: every link and button at least 24x24 CSS px, except a link inside a sentence (its
# parent has text of its own around it), whose size the line of text sets.
_TARGETS_JS = """
() => {
  const small = [];
  const controls = "a[href], button, input:not([type=hidden]), select, textarea, [role=button]";
  for (const el of document.querySelectorAll(controls)) {
    if (!el.getClientRects().length) continue;
    const r = el.getBoundingClientRect();
    if (r.width >= 23.95 && r.height >= 23.95) continue;
    const parent = el.parentElement;
    const inSentence = parent && [...parent.childNodes].some(
      n => n !== el && n.nodeType === 3 && n.textContent.trim());
    if (inSentence) continue;
    small.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}" ` +
               `${r.width.toFixed(1)}x${r.height.toFixed(1)}`);
  }
  return small;
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


def check_page(
    page: Page,
    name: str,
    *,
    lang: str | None = None,
    viewports: tuple[str, ...] = tuple(VIEWPORTS),
    schemes: tuple[Scheme, ...] = SCHEMES,
    extra_widths: tuple[int, ...] = (),
) -> Report:
    """Run every check on the page as it is now, in each viewport and scheme, without reloading
    it (so a page reached by a POST is checked as the parent saw it). ``lang``: the language
    the page must say it is in."""
    SCREENSHOTS.mkdir(exist_ok=True)
    problems: list[str] = structure(page, lang)
    shots: list[Path] = []
    lowest: dict[str, float] = {}
    original = page.viewport_size
    for viewport in viewports:
        width, height = VIEWPORTS[viewport]
        page.set_viewport_size({"width": width, "height": height})
        problems += [f"{name} {viewport}: target under 24x24 px: {t}" for t in small_targets(page)]
        for index, scheme in enumerate(schemes):
            page.emulate_media(color_scheme=scheme)
            where = f"{name} {viewport} {scheme}"
            problems += [f"{where}: {p}" for p in _styled(page, scheme)]
            # Every rule once per viewport; in the next scheme only those colours can change.
            rules = None if index == 0 else COLOUR_RULES
            problems += [f"{where}: axe {v}" for v in axe_violations(page, rules)]
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
    reflow = list(REFLOW.items())
    reflow += [(f"{width}px", (width, 740)) for width in extra_widths]
    for label, (width, height) in reflow:
        page.set_viewport_size({"width": width, "height": height})
        problems += [f"{name} {label}: overflows the card: {p}" for p in overflow(page)]
        problems += [f"{name} {label}: target under 24x24 px: {t}" for t in small_targets(page)]
        if "desktop" in viewports:  # the full set (a subset of the pages gets it): a picture
            shot = SCREENSHOTS / f"{name}-{label.replace(' ', '-').replace('%', '')}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
    if original:
        page.set_viewport_size(original)
    page.emulate_media(color_scheme="light")
    return Report(problems, shots, lowest)


@dataclass
class Focused:
    """One control the keyboard reached, and how its focus shows."""

    element: str
    text: str
    focus_visible: bool
    outline_style: str
    outline_width: float
    ratio: float  # the outline against the background around the control
    changed_pixels: bool  # a screenshot of it and its surroundings differs once it is blurred

    def problems(self) -> list[str]:
        where = f"{self.element} {self.text!r}"
        found = []
        if not self.focus_visible:
            found.append(f"{where}: not :focus-visible after Tab")
        if self.outline_style == "none" or self.outline_width < 2:
            found.append(f"{where}: outline {self.outline_style} {self.outline_width}px")
        if self.ratio < 3:
            found.append(f"{where}: outline contrast {self.ratio}:1 < 3:1")
        if not self.changed_pixels:
            found.append(f"{where}: looks the same focused and not")
        return found


def focus_ring(page: Page, scheme: Scheme, *, presses: int = 12) -> list[Focused]:
    """Tab through the page from its top, as a keyboard user would, and look at each control
    reached: its focus indicator by computed style and by screenshot (focused, then blurred)."""
    page.emulate_media(color_scheme=scheme)
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    reached: list[Focused] = []
    seen: set[str] = set()
    for _ in range(presses):
        page.keyboard.press("Tab")
        found = page.evaluate(_FOCUSED_JS, _CANVAS[scheme])
        if found is None:
            break
        key = f"{found['element']} {found['text']} {found['box']}"
        if key in seen:
            break
        seen.add(key)
        box = found["box"]
        clip: FloatRect = {
            "x": max(box["x"] - 6, 0),
            "y": max(box["y"] - 6, 0),
            "width": box["width"] + 12,
            "height": box["height"] + 12,
        }
        focused = page.screenshot(clip=clip, full_page=True)
        page.evaluate("() => document.activeElement.blur()")
        blurred = page.screenshot(clip=clip, full_page=True)
        reached.append(
            Focused(
                found["element"],
                found["text"],
                found["focusVisible"],
                found["outlineStyle"],
                found["outlineWidth"],
                found["ratio"],
                focused != blurred,
            )
        )
        # The next Tab goes on from the blurred control: Chromium keeps it as the starting point
        # of sequential focus navigation.
    page.emulate_media(color_scheme="light")
    return reached


def structure(page: Page, lang: str | None) -> list[str]:
    """One h1, the expected ``lang``, and a title that starts with the h1's text."""
    seen = page.evaluate(_STRUCTURE_JS)
    problems = []
    if len(seen["h1s"]) != 1:
        problems.append(f"{len(seen['h1s'])} h1 elements, not one: {seen['h1s']}")
    elif not seen["title"].startswith(seen["h1s"][0]):
        problems.append(
            f"the title {seen['title']!r} does not start with the h1 {seen['h1s'][0]!r}"
        )
    if lang is not None and seen["lang"] != lang:
        problems.append(f"<html lang={seen['lang']!r}>, not {lang!r}")
    return problems


def small_targets(page: Page) -> list[str]:
    found: list[str] = page.evaluate(_TARGETS_JS)
    return found


def with_axe(context: BrowserContext) -> BrowserContext:
    """axe-core in every page the context loads, from the start (an init script): five times
    quicker than sending its half megabyte of script to each page after it loaded."""
    context.add_init_script(AXE_SCRIPT)
    return context


def axe_violations(page: Page, rules: tuple[str, ...] | None = None) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations, or those of ``rules`` only (its script injected once
    per loaded page, unless the context has it already: :func:`with_axe`)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    only = {"type": "tag", "values": WCAG_TAGS}
    if rules is not None:
        only = {"type": "rule", "values": list(rules)}
    options = {"runOnly": only, "resultTypes": ["violations"]}
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
