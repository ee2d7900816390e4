"""消费帮扶商城: the application (settings, app factory, auth, orders, payments, CLI)."""
