"""``python -m segmodels.data [--clear]``: show, or empty, the cache of decoded dataset splits
(``segmodels.data.cache``)."""

from segmodels.data.cache import main

if __name__ == "__main__":
    raise SystemExit(main())
