"""After payment: delivery addresses, shipments (one per supplier of a paid order),
receipt, after-sales requests, and the branch's invoice profile."""
