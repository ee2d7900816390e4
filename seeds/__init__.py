"""The demo data (JSON files beside this one). A package only so that the wheel carries the
files and `shop seed` finds them in any install: `shop/seed.py` reads them from here."""
