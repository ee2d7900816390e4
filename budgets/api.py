ROUTES: dict[str, list] = {}
