"""Orbax checkpoints: one step directory holds the state (params, optimizer state, step), the
Grain iterator state and the config.

Saves are asynchronous (training goes on while the arrays are written) and atomic: Orbax
writes into a temporary directory and renames it when complete, so a crash mid-save leaves
the previous checkpoint as the newest whole one. Restoring takes an abstract target with
shardings, so a checkpoint written on one mesh loads onto another.
"""

from __future__ import annotations

import json
import os

import grain
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, workdir: str, every: int, max_to_keep: int):
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        options = ocp.CheckpointManagerOptions(save_interval_steps=max(every, 1), max_to_keep=max_to_keep,
                                               enable_async_checkpointing=True, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator=None, config=None, force: bool = False) -> bool:
        items = {"state": ocp.args.StandardSave(state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        if config is not None:
            items["config"] = ocp.args.JsonSave(json.loads(config.to_json()))
        return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

    def restore(self, abstract_state, data_iterator=None, step: int | None = None):
        """Restores `state` onto the shardings in abstract_state and, if given, the iterator in place."""
        step = self.manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        except ValueError as e:
            raise ValueError(f"checkpoint {self.directory}/{step} does not fit this run's model or optimizer "
                             f"({e}); use a fresh --workdir or the config the checkpoint was written with") from e
        return restored["state"]

    def saved_config(self, step: int | None = None) -> dict | None:
        step = self.manager.latest_step() if step is None else step
        path = os.path.join(self.directory, str(step), "config", "metadata")
        if step is None or not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
