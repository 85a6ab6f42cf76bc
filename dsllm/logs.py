"""Console logging for the CLIs: dsllm's own lines at INFO, libraries' chatter (Orbax, JAX) at WARNING."""

import logging
import sys


def setup_logging(level=logging.INFO):
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logger = logging.getLogger("dsllm")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
