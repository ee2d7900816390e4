"""Pictures for the demo catalogue, drawn (not downloaded) when the demo data is seeded.

`seeds/pictures.json` names, for some products, a shape and two colours; `draw` paints it with
Pillow: a soft gradient in the product's colour and a simple drawing of the fruit, fish or box.
The result goes through the same path as a supplier's upload (`catalog.photos.add_photo`:
received, recognised, re-encoded, stored by hash). Deterministic: the same picture every time."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

W, H = 1200, 900
Colour = tuple[int, int, int]


def rgb(hex_colour: str) -> Colour:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


WHITE, DARK = (255, 255, 255), (40, 30, 25)


def _ball(d: ImageDraw.ImageDraw, x: float, y: float, r: float, colour: Colour, bumps: bool = False) -> None:
    d.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=mix(colour, DARK, 0.35), width=4)
    if bumps:
        step = r / 5
        for i in range(-5, 6):
            for j in range(-5, 6):
                px, py = x + i * step + (j % 2) * step / 2, y + j * step
                if (px - x) ** 2 + (py - y) ** 2 < (r - 10) ** 2:
                    d.ellipse((px - 5, py - 5, px + 5, py + 5), fill=mix(colour, DARK, 0.25))
    d.ellipse((x - r * 0.55, y - r * 0.6, x - r * 0.15, y - r * 0.3), fill=mix(colour, WHITE, 0.45))


def _leaf(d: ImageDraw.ImageDraw, x: float, y: float, length: float, angle: float, colour: Colour) -> None:
    dx, dy = math.cos(angle), math.sin(angle)
    nx, ny = -dy, dx
    points = []
    for k in range(13):
        t = k / 12
        width = math.sin(math.pi * t) * length * 0.22
        points.append((x + dx * length * t + nx * width, y + dy * length * t + ny * width))
    for k in range(12, -1, -1):
        t = k / 12
        width = math.sin(math.pi * t) * length * 0.22
        points.append((x + dx * length * t - nx * width, y + dy * length * t - ny * width))
    d.polygon(points, fill=colour, outline=mix(colour, DARK, 0.3))
    d.line((x, y, x + dx * length, y + dy * length), fill=mix(colour, WHITE, 0.35), width=4)


def _fruits(d: ImageDraw.ImageDraw, c: Colour, a: Colour, rng: random.Random, r: float, spots: list[tuple[float, float]], bumps: bool) -> None:
    top = (W / 2, 170)
    for x, y in spots:
        d.line((top, (x, y - r * 0.8)), fill=mix(a, DARK, 0.4), width=8)
    _leaf(d, top[0], top[1], 260, -0.4, a)
    _leaf(d, top[0], top[1], 220, math.pi + 0.5, mix(a, WHITE, 0.15))
    for x, y in spots:
        _ball(d, x, y, r, mix(c, WHITE, rng.uniform(0, 0.12)), bumps)


def lychee(d, c, a, rng):
    _fruits(d, c, a, rng, 190, [(420, 600), (780, 600), (600, 420)], True)


def longan(d, c, a, rng):
    _fruits(d, c, a, rng, 120, [(380, 620), (560, 650), (740, 630), (470, 470), (650, 480), (830, 500)], False)


def plum(d, c, a, rng):
    _fruits(d, c, a, rng, 170, [(440, 610), (770, 600), (610, 450)], False)


def dried(d, c, a, rng):
    for _ in range(11):
        x, y, r = rng.uniform(300, 900), rng.uniform(380, 720), rng.uniform(60, 95)
        points = [(x + math.cos(t) * r * rng.uniform(0.75, 1.1), y + math.sin(t) * r * rng.uniform(0.75, 1.1)) for t in [k * math.pi / 8 for k in range(16)]]
        d.polygon(points, fill=mix(c, a, rng.uniform(0, 0.4)), outline=mix(c, DARK, 0.4))


def jar(d, c, a, rng):
    d.rounded_rectangle((420, 300, 780, 780), radius=60, fill=c, outline=mix(c, DARK, 0.4), width=5)
    d.rectangle((450, 240, 750, 310), fill=a)
    d.rounded_rectangle((470, 450, 730, 620), radius=14, fill=(250, 245, 230))
    d.ellipse((560, 500, 640, 570), fill=mix(c, DARK, 0.1))
    d.rectangle((440, 330, 480, 740), fill=mix(c, WHITE, 0.35))


def slices(d, c, a, rng):
    for x, y in [(430, 560), (770, 560), (600, 380)]:
        r = 190
        d.ellipse((x - r, y - r, x + r, y + r), fill=a, outline=mix(c, DARK, 0.3), width=5)
        d.ellipse((x - r + 22, y - r + 22, x + r - 22, y + r - 22), fill=c)
        for k in range(10):
            t = k * math.pi / 5
            d.line((x, y, x + math.cos(t) * (r - 22), y + math.sin(t) * (r - 22)), fill=a, width=7)


def box(d, c, a, rng):
    d.rectangle((330, 400, 870, 780), fill=c, outline=mix(c, DARK, 0.4), width=5)
    d.rectangle((300, 330, 900, 420), fill=mix(c, DARK, 0.1))
    d.rectangle((570, 330, 630, 780), fill=a)
    d.ellipse((480, 230, 600, 340), outline=a, width=22)
    d.ellipse((600, 230, 720, 340), outline=a, width=22)


def flowers(d, c, a, rng):
    for _ in range(4):
        x0 = rng.uniform(300, 900)
        d.line((x0, 820, x0 + rng.uniform(-120, 120), 300), fill=a, width=7)
    for _ in range(16):
        x, y = rng.uniform(280, 920), rng.uniform(260, 700)
        for k in range(5):
            t = k * 2 * math.pi / 5
            px, py = x + math.cos(t) * 38, y + math.sin(t) * 38
            d.ellipse((px - 30, py - 30, px + 30, py + 30), fill=c, outline=(200, 190, 160))
        d.ellipse((x - 16, y - 16, x + 16, y + 16), fill=(240, 190, 60))


def leaves(d, c, a, rng):
    for k in range(7):
        _leaf(d, 600 + rng.uniform(-60, 60), 780, rng.uniform(380, 480), -math.pi / 2 + (k - 3) * 0.28, mix(c, a, rng.uniform(0, 0.6)))


def sticks(d, c, a, rng):
    for k in range(14):
        x = 400 + k * 30
        d.line((x, 250 + (k % 3) * 20, x, 700), fill=c, width=9)
    d.rectangle((340, 640, 860, 800), fill=a, outline=mix(a, DARK, 0.4), width=5)
    d.arc((520, 120, 700, 300), 180, 360, fill=(170, 170, 170), width=5)


def fillet(d, c, a, rng):
    for k, (x, y) in enumerate([(330, 450), (600, 560), (350, 660)]):
        d.polygon([(x, y), (x + 420, y - 80), (x + 520, y + 10), (x + 400, y + 120), (x + 40, y + 110)], fill=c, outline=mix(c, DARK, 0.3))
        for s in range(5):
            d.line((x + 80 + s * 80, y - 20, x + 40 + s * 80, y + 100), fill=a, width=4)


def fish(d, c, a, rng):
    for x, y, s in [(300, 420, 1.0), (380, 650, 0.9)]:
        d.polygon([(x + 560 * s, y), (x + 720 * s, y - 110 * s), (x + 720 * s, y + 110 * s)], fill=mix(c, DARK, 0.15))
        d.ellipse((x, y - 130 * s, x + 600 * s, y + 130 * s), fill=c, outline=mix(c, DARK, 0.4), width=4)
        d.polygon([(x + 200 * s, y - 120 * s), (x + 380 * s, y - 190 * s), (x + 420 * s, y - 110 * s)], fill=a)
        d.ellipse((x + 90 * s, y - 50 * s, x + 140 * s, y), fill=WHITE)
        d.ellipse((x + 105 * s, y - 38 * s, x + 128 * s, y - 12 * s), fill=DARK)
        for k in range(4):
            d.arc((x + 220 * s + k * 70 * s, y - 80 * s, x + 300 * s + k * 70 * s, y + 80 * s), 300, 60, fill=a, width=4)


def chicken(d, c, a, rng):
    d.ellipse((360, 380, 860, 760), fill=c, outline=mix(c, DARK, 0.4), width=5)
    d.ellipse((300, 260, 480, 440), fill=c, outline=mix(c, DARK, 0.4), width=5)
    for k in range(3):
        d.ellipse((330 + k * 40, 210, 380 + k * 40, 280), fill=a)
    d.polygon([(300, 340), (240, 370), (305, 385)], fill=(240, 150, 40))
    d.ellipse((350, 320, 375, 345), fill=DARK)
    _leaf(d, 820, 520, 200, -0.6, mix(c, DARK, 0.2))
    for x in (560, 680):
        d.line((x, 750, x, 840), fill=(230, 140, 40), width=10)


def cakes(d, c, a, rng):
    d.rectangle((250, 330, 950, 800), fill=mix(a, WHITE, 0.2), outline=mix(a, DARK, 0.4), width=6)
    for row in range(2):
        for col in range(4):
            x, y = 350 + col * 167, 450 + row * 220
            d.ellipse((x - 75, y - 75, x + 75, y + 75), fill=c, outline=a, width=8)
            d.ellipse((x - 30, y - 30, x + 30, y + 30), outline=mix(c, DARK, 0.3), width=5)


SHAPES: dict[str, Callable[..., None]] = {
    f.__name__: f for f in (lychee, longan, plum, dried, jar, slices, box, flowers, leaves, sticks, fillet, fish, chicken, cakes)
}


def draw(title: str, shape: str, colour: str, accent: str) -> bytes:
    """The picture as PNG bytes (what a supplier might upload)."""
    c, a = rgb(colour), rgb(accent)
    top, bottom = mix(c, WHITE, 0.72), mix(c, WHITE, 0.94)
    image = Image.linear_gradient("L").resize((W, H))
    image = Image.merge("RGB", [channel.point(lambda v, lo=lo, hi=hi: lo + (hi - lo) * v // 255) for channel, lo, hi in zip(image.split() * 3, top, bottom)])
    d = ImageDraw.Draw(image)
    d.ellipse((220, 760, 980, 860), fill=mix(c, WHITE, 0.6))  # the shadow it stands on
    SHAPES[shape](d, c, a, random.Random(title))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
