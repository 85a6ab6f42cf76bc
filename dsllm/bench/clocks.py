"""The GPU's SM clock and power while each implementation was timed: nvidia-smi samples taken
beside a `dsllm.bench.attention` run, matched with the spans of its timings (their `spans` in
the bench's JSON, from timing.interleaved_seconds).

An H200 running these kernels sits at its 700 W power limit and lowers its clock (1,650-1,980
MHz in NOTES.md v14), so two kernels' time ratio mixes cycles and clock. Beside the bench:

  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > clocks.csv &
  python -P -m dsllm.bench.attention --iters=100 --out=bench.json ...
  python -m dsllm.bench.clocks clocks.csv bench.json

Run the last line on the GPU machine: nvidia-smi's timestamps are in its local time.
"""
import csv
import datetime
import json
import statistics
import sys


def read_samples(path):
    """[(seconds since the epoch, SM MHz, watts)] of an nvidia-smi CSV (timestamp, clocks.sm,
    power.draw columns, units in the values); lines that do not parse are skipped."""
    samples = []
    with open(path) as f:
        for row in csv.reader(f):
            try:
                t = datetime.datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
                samples.append((t, float(row[1].split()[0]), float(row[2].split()[0])))
            except (ValueError, IndexError):
                continue
    return samples


def clocks_by_timing(samples, spans):
    """{timing name: (median MHz, median W, samples)} over the samples inside its spans
    [(name, round, start, end)]; names with no sample inside are left out."""
    inside = {}
    for name, _, start, end in spans:
        inside.setdefault(name, []).extend(s for s in samples if start <= s[0] <= end)
    return {name: (statistics.median(s[1] for s in got), statistics.median(s[2] for s in got),
                   len(got))
            for name, got in inside.items() if got}


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    samples = read_samples(argv[1])
    with open(argv[2]) as f:
        results = json.load(f)
    for key, spans in results.items():
        if not key.endswith("spans"):
            continue
        for name, (mhz, watts, n) in clocks_by_timing(samples, spans).items():
            print(f"{name}: SM clock {mhz:.0f} MHz, {watts:.0f} W (median of {n} samples)")


if __name__ == "__main__":
    main(sys.argv)
