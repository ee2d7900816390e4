"""An order's life: its state machine (`lifecycle.py`), placing, cancelling and expiring, refunds, reading."""
