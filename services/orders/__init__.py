"""The orders service: the instant and stock catalogs and the order saga."""
