"""A stand-in for `python -m dsllm.train` that honours its contract (docs/interfaces.md) without
training: it counts steps, "checkpoints" its step to WORKDIR/ckpt.json every ckpt_every steps,
resumes from it, and on finishing writes final_metrics.json with a loss taken from a known
surface L(M, D) = E + A / M^alpha + B / D^beta, so that a plan run through it can be fitted.

Environment: FAKE_CRASH_AT_STEP=n makes the first invocation that reaches step n die (exit 3)
before finishing; FAKE_NOISE adds Gaussian noise of that size to the loss; FAKE_STEP_SLEEP
sleeps that many seconds per step (a run slow enough to be interrupted). SIGTERM or SIGINT is
written to WORKDIR/signals.txt and, as in the real trainer, ends the run with a checkpoint
and exit code 0.
"""

import json
import os
import signal
import sys
import time

E, A, B, ALPHA, BETA = 0.8, 60.0, 300.0, 0.30, 0.30  # bits-per-byte-like numbers


def surface(m, tokens):
    return E + A / m**ALPHA + B / tokens**BETA


class _Stop(Exception):
    pass


def _record(workdir, taken):
    with open(os.path.join(workdir, "steps_run.txt"), "a") as f:
        f.writelines(f"{s}\n" for s in taken)
    taken.clear()


def main(argv):
    args = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    workdir, config = args["workdir"], args["config"]
    assert os.path.exists(config), config
    steps, batch, seq = (int(args[f"config.train.{k}"]) for k in ("steps", "global_batch", "seq_len"))
    ckpt_every = int(args["config.train.ckpt_every"])
    n_layers, d_model = int(args["config.model.n_layers"]), int(args["config.model.d_model"])
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "invocations.txt"), "a") as f:
        f.write(" ".join(argv) + "\n")
    final = os.path.join(workdir, "final_metrics.json")
    if os.path.exists(final):
        return 0
    ckpt = os.path.join(workdir, "ckpt.json")
    step = json.load(open(ckpt))["step"] if os.path.exists(ckpt) else 0
    print(f"resuming from step {step}" if step else "starting from scratch", flush=True)
    crash_at = int(os.environ.get("FAKE_CRASH_AT_STEP", "0"))
    crashed_flag = os.path.join(workdir, "crashed_once")
    def on_signal(signum, _frame):  # like the real trainer: note it, checkpoint, exit 0
        with open(os.path.join(workdir, "signals.txt"), "a") as f:
            f.write(signal.Signals(signum).name + "\n")
        raise _Stop

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    pause = float(os.environ.get("FAKE_STEP_SLEEP", "0"))
    taken = []  # steps this invocation ran, appended to steps_run.txt as it ends (or checkpoints)
    try:
        while step < steps:
            step += 1
            taken.append(step)
            if pause:
                time.sleep(pause)
            if step % ckpt_every == 0:
                json.dump({"step": step}, open(ckpt, "w"))
                if pause:  # slow runs are the ones that get killed: keep the record current
                    _record(workdir, taken)
            if crash_at and step == crash_at and not os.path.exists(crashed_flag):
                open(crashed_flag, "w").close()
                print("simulated crash", flush=True)
                return 3
    except _Stop:
        json.dump({"step": step}, open(ckpt, "w"))
        print(f"stopped at step {step}", flush=True)
        return 0
    finally:
        _record(workdir, taken)
    m = 72 * n_layers * d_model**2 + 12 * n_layers * d_model * seq
    tokens = steps * batch * seq
    rng_noise = float(os.environ.get("FAKE_NOISE", "0"))
    noise = 0.0
    if rng_noise:
        import random
        noise = random.Random(workdir).gauss(0, rng_noise)
    bpb = surface(m, tokens) + noise
    metrics = dict(step=steps, tokens=tokens, train_loss=bpb * 2, val_loss=bpb * 2.1, val_bpb=bpb, wall_s=0.01,
                   flops_per_token=6 * m, m=m)
    json.dump(metrics, open(final + ".tmp", "w"))
    os.replace(final + ".tmp", final)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
