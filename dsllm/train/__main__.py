"""python -m dsllm.train --config=configs/<name>.py --workdir=DIR [--config.a.b=value ...]

Trains, or resumes the run in DIR from its newest checkpoint. ml_collections' config flags
check every override against the locked config before any work: an unknown key or a value
of the wrong type stops here, naming the key.
"""

import logging

from absl import app, flags
from ml_collections import config_flags

from dsllm.logs import setup_logging

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/<name>.py", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, TensorBoard events and final_metrics.json")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "multi-host: call jax.distributed.initialize() first (it reads "
                                  "SLURM's or a TPU pod's environment); one process per host")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; options are --config, --config.a.b=value, --workdir")
    setup_logging()
    if _DISTRIBUTED.value:
        import jax
        jax.distributed.initialize()
    from dsllm.train.loop import train  # imported after flag parsing: bad flags fail before JAX starts

    final = train(_CONFIG.value, _WORKDIR.value)
    if final is not None:  # None: stopped by a signal after saving a checkpoint
        logging.getLogger("dsllm.train").info("final: %s", {k: v for k, v in final.items() if k != "sample"})


def run():
    """app.run, with an unknown --config.* key reported as one line (ml_collections raises it as an
    AttributeError while flags are parsed, outside absl's own flag-error handling)."""
    import sys

    try:
        app.run(main)
    except AttributeError as e:
        if "Did you mean" in str(e) or "not found" in str(e) or "has no attribute" in str(e):
            detail = str(e).strip("'").replace("\\n", " ").replace("\\'", "'")
            overrides = [a for a in sys.argv if a.startswith("--config.")]
            sys.exit(f"FATAL Flags parsing error: unknown config key in {overrides}: {detail}")
        raise


if __name__ == "__main__":
    run()
