#!/usr/bin/env python3
"""Renders a terminal capture with colours (`tmux capture-pane -e -p`) to PNG.

Usage: ansi2png.py CAPTURE.txt OUT.png [COLUMNS ROWS]
Needs Pillow and the DejaVu Sans Mono font (Debian: fonts-dejavu-core);
coloured circles (🔴 🟠 🟢) are drawn in their colour over the two cells
they take, and other symbols that font lacks with Symbola when it is
installed (fonts-symbola).
"""
import os
import re
import sys
import unicodedata

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SYMBOLS = "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"
SIZE = 15
# An emoji's colour, from its name ("LARGE RED CIRCLE").
NAMED = {
    "RED": (222, 86, 86), "ORANGE": (240, 150, 60), "YELLOW": (230, 190, 80),
    "GREEN": (80, 200, 120), "BLUE": (90, 150, 230), "PURPLE": (190, 120, 220),
}
BG = (24, 26, 33)
FG = (214, 219, 229)
BASE16 = [
    (40, 42, 54), (222, 86, 86), (80, 200, 120), (230, 190, 80),
    (90, 150, 230), (190, 120, 220), (80, 190, 200), (200, 205, 215),
    (100, 104, 120), (255, 110, 110), (110, 230, 150), (250, 215, 110),
    (120, 175, 255), (215, 150, 240), (110, 215, 225), (245, 245, 250),
]


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(text, cols, rows):
    grid = [[(" ", FG, BG, False) for _ in range(cols)] for _ in range(rows)]
    fg, bg, bold, rev = FG, BG, False, False
    for y, line in enumerate(text.split("\n")[:rows]):
        x = 0
        for token in re.split(r"(\x1b\[[0-9;]*m)", line):
            if token.startswith("\x1b["):
                codes = [int(c) if c else 0 for c in token[2:-1].split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, bold, rev = FG, BG, False, False
                    elif c == 1:
                        bold = True
                    elif c == 22:
                        bold = False
                    elif c == 7:
                        rev = True
                    elif c == 27:
                        rev = False
                    elif 30 <= c <= 37:
                        fg = BASE16[c - 30]
                    elif 90 <= c <= 97:
                        fg = BASE16[c - 90 + 8]
                    elif c == 39:
                        fg = FG
                    elif 40 <= c <= 47:
                        bg = BASE16[c - 40]
                    elif 100 <= c <= 107:
                        bg = BASE16[c - 100 + 8]
                    elif c == 49:
                        bg = BG
                    elif c in (38, 48) and i + 1 < len(codes):
                        if codes[i + 1] == 5 and i + 2 < len(codes):
                            col = xterm256(codes[i + 2])
                            i += 2
                        elif codes[i + 1] == 2 and i + 4 < len(codes):
                            col = tuple(codes[i + 2:i + 5])
                            i += 4
                        else:
                            col = FG if c == 38 else BG
                        if c == 38:
                            fg = col
                        else:
                            bg = col
                    i += 1
                continue
            for ch in token:
                if x < cols:
                    f, b = (bg, fg) if rev else (fg, bg)
                    grid[y][x] = (ch, f, b, bold)
                # A wide character takes two cells; tmux writes it once.
                x += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return grid


def main():
    src, out = sys.argv[1], sys.argv[2]
    cols = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    text = open(src, encoding="utf-8", errors="replace").read()
    grid = parse(text, cols, rows)
    font = ImageFont.truetype(FONT, SIZE)
    bold = ImageFont.truetype(BOLD, SIZE)
    symbols = ImageFont.truetype(SYMBOLS, SIZE) if os.path.exists(SYMBOLS) else None
    left, top, right, bottom = font.getbbox("█")
    cw = round(font.getlength("M"))
    ch = SIZE + 4
    pad = 12
    img = Image.new("RGB", (cols * cw + 2 * pad, rows * ch + 2 * pad), BG)
    d = ImageDraw.Draw(img)
    for y, row in enumerate(grid):
        for x, (c, f, b, is_bold) in enumerate(row):
            px, py = pad + x * cw, pad + y * ch
            if b != BG:
                d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=b)
            if c in "▁▂▃▄▅▆▇█":
                # Block elements: draw exactly, fonts leave gaps.
                h = ch * ("▁▂▃▄▅▆▇█".index(c) + 1) // 8
                d.rectangle([px, py + ch - h, px + cw - 1, py + ch - 1], fill=f)
            elif ord(c) > 0xFFFF and "CIRCLE" in unicodedata.name(c, "").split():
                # A coloured circle (🔴 🟠 🟢): drawn, as fonts draw it
                # hatched or not at all.
                words = unicodedata.name(c).split()
                colour = next((v for k, v in NAMED.items() if k in words), f)
                r = min(cw, ch) * 0.8
                cx, cy = px + cw, py + ch / 2
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            elif ord(c) > 0xFFFF and symbols is not None:
                d.text((px + 2, py + 1), c, font=symbols, fill=f)
            elif c != " ":
                d.text((px, py + 1), c, font=bold if is_bold else font, fill=f)
    img.save(out)


if __name__ == "__main__":
    main()
