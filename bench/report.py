"""Render BENCHMARKS.md from bench/results/*.json, so every number there comes from a run's own output.

    python bench/report.py                  # BENCHMARKS.md
    python bench/report.py --output FILE    # elsewhere (the test renders into a temporary file)
"""

from __future__ import annotations

import argparse
import re
import json
from pathlib import Path

from common import RESULTS, ROOT, median


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def load_all(pattern: str) -> list[dict]:
    """Every result whose file matches `pattern` (one per device, say), in file-name order."""
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob(pattern))]


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value < target
    return "**met**" if met else "**missed**"


def ran(result: dict) -> str:
    m = result["machine"]
    where = m["cuda"] or f"{m['cpus']} CPU cores, no GPU"
    note = f" Commit {result['git_commit_note']}." if result.get("git_commit_note") else ""
    return (f"Command: `{result['command']}` at commit `{result['git_commit']}` "
            f"({result['date']}; {where}, torch {m['torch']}).{note}")


def made_elsewhere(block: dict, result: dict) -> list[str]:
    """A line naming how a block of results was made, where that differs from the result's own command
    (a block kept from an earlier run of some parts); nothing otherwise."""
    made = block.get("ran", {})
    if not made or made.get("command") == result["command"]:
        return []
    note = f" {made['note']}" if made.get("note") else ""
    return [f"Command: `{made['command']}` at commit `{made['git_commit']}` ({made['date']}).{note}", ""]


def median_and_range(summary: dict, key: str, fmt: str) -> str:
    low, high = summary[f"range_{key}"]
    return f"{summary[f'median_{key}']:{fmt}} ({low:{fmt}}-{high:{fmt}})"


def capped_note(runs: list[dict], theirs: str, ours: str, key: str = "name") -> str:
    """A capped run counts at its cap, so a ratio against it is a bound, not a measurement."""
    def capped(name):
        return sum(not r["solved"] for r in runs if r[key] == name)

    if capped(ours):
        return f" (not a measurement: {capped(ours)} run(s) of {ours} hit the cap)"
    if capped(theirs):
        return (f" (a lower bound: {capped(theirs)} of {sum(r[key] == theirs for r in runs)} runs of {theirs} "
                "hit the cap unsolved and count at it)")
    return ""


def rl_section(name: str, ours: str, theirs: str, title: str) -> list[str]:
    result = load(name)
    if result is None:
        return [f"### {title}", "", f"Not run yet: `python bench/rl.py --parts {name[3:]}`.", ""]
    s = result["summary"]
    rows = [[n, s[n]["solved"], median_and_range(s[n], "wall_s_to_475", ",.1f"),
             median_and_range(s[n], "env_steps_to_475", ",.0f"), median_and_range(s[n], "env_steps_per_s", ",.0f")]
            for n in (ours, theirs)]
    runs = [[r["name"], r["seed"], "yes" if r["solved"] else "no (capped)", f"{r['wall_s_to_475']:.1f}",
             f"{r['env_steps_to_475']:,}", f"{r['env_steps_per_s']:,.0f}",
             f"{r['rllib_metric_claimed_475_at_env_steps']:,}" if r["rllib_metric_claimed_475_at_env_steps"]
             else "never"] for r in result["runs"]]
    seeds = s[ours]["seeds"]
    return [f"### {title}", "", ran(result), "",
            table(["algorithm", "solved", f"wall s to 475, median (range) of {seeds} seeds", "env steps to 475",
                   "env steps/s"], rows), "",
            f"- Wall time to 475, ratio of medians {theirs} / {ours}: **{s['wall_time_ratio']:.2f}x**"
            + capped_note(result["runs"], theirs, ours),
            f"- Throughput (env steps/s), {ours} / {theirs}: **{s['throughput_ratio']:.2f}x**",
            f"- Sample efficiency (env steps to 475, {theirs} / {ours}): **{s['sample_efficiency_ratio']:.2f}x**"
            + capped_note(result["runs"], theirs, ours),
            (f"- With {seeds} seeds these are medians with their range, not confidence intervals; a ratio is "
             "worth its name only where the two ranges do not overlap."),
            "", "<details><summary>Per seed</summary>", "",
            table(["algorithm", "seed", "solved", "wall s to 475", "env steps to 475", "env steps/s",
                   "env steps where RLlib's episode_return_mean first read >= 475"], runs), "",
            "</details>", ""]


def listed_envs(result: dict) -> str:
    """How many vectorised envs ours sampled, over a result's blocks (the defaults changed between runs)."""
    counts = sorted({block["our_envs"] for block in result["results"].values()})
    if len(counts) == 1:
        return str(counts[0])
    return " or ".join(map(str, counts)) + " (by block: " + "; ".join(
        f"{key} {block['our_envs']}" for key, block in result["results"].items()) + ")"


def cleanrl_section(name: str = "vs_cleanrl", title: str = "### Ours vs CleanRL (`dqn.py`, `ppo.py`)",
                    why: str = "") -> list[str]:
    """`name`: the results file; `why`: a paragraph saying what this run was for, where it is not the main one."""
    result = load(name)
    if result is None:
        return [title, "", "Not run yet: `python bench/vs_cleanrl.py --cleanrl DIR`.", ""]
    source = result.get("cleanrl_source") or f"commit {result.get('cleanrl_commit') or 'unknown'}"
    packages = ", ".join(f"{k} {v}" for k, v in result["cleanrl_packages"].items())
    matched = any(r["side"].endswith("_matched") for block in result["results"].values() for r in block["runs"])
    lines = [title, "", *([why, ""] if why else []), ran(result), "",
             (f"CleanRL: {source}; its own venv ({packages}). Each side runs with one torch thread, one run at a "
              "time; wall time counts from the side's first env step to the episode end where the mean of the last "
              "20 training episodes first reaches the env's registered threshold (CartPole-v1 475, Acrobot-v1 -100; "
              "MountainCar-v0 -110, the held-out env neither side's defaults were tuned on), "
              f"with caps of {result['max_seconds']:.0f} s and {result['max_steps']:,} env steps (an unsolved run "
              "counts at its cap). `ours_*` are the sweep's defaults. CleanRL's `dqn.py` runs one env; ours sample "
              f"{listed_envs(result)} vectorised envs"
              + ("; `*_matched` are ours at CleanRL's settings wherever the two share one "
                 "(`bench/vs_cleanrl.py` lists them), with 16 envs for DQN." if matched else ".")
              + " Runs continue until a crossing holds (the next 20 episodes average the threshold too) and show "
                "the time to it beside the first crossing."), ""]
    blocks = sorted(result["results"].values(),  # CartPole first, DQN before A2C, whatever order they ran in
                    key=lambda b: (b["env"] != "CartPole-v1", b["env"], b["algorithm"] != "dqn"))
    for block in blocks:
        s, runs = block["summary"], block["runs"]
        sides = [side for side in s if side != "speedup"]
        cleanrl, ours = sides[0], sides[1]
        rows = [[side, s[side]["solved"], median_and_range(s[side], "wall_s_to_target", ",.1f"),
                 median_and_range(s[side], "env_steps_to_target", ",.0f"),
                 median_and_range(s[side], "env_steps_per_s", ",.0f"), s[side]["first_crossing_held"],
                 median_and_range(s[side], "wall_s_to_held", ",.1f")] for side in sides]
        per_seed = [[r["side"], r["seed"], "yes" if r["solved"] else "no (capped)", f"{r['wall_s_to_target']:.1f}",
                     f"{r['env_steps_to_target']:,}", f"{r['env_steps_per_s']:,.0f}",
                     ("yes" if r["first_crossing_held"] else "no") if r["solved"] else "-",
                     f"{r['wall_s_to_held']:.1f}" + ("" if r["held"] else " (capped)")] for r in runs]
        held_header = ["first crossing held", "wall s to a crossing that holds"]
        if all("median_best_mean_return" in s[side] for side in sides):  # runs that record what they reached
            held_header.append("best mean return over 20 episodes")
            for row, side in zip(rows, sides):  # "to": the values are often negative
                low, high = s[side]["range_best_mean_return"]
                row.append(f"{s[side]['median_best_mean_return']:.1f} ({low:.1f} to {high:.1f})")
            for row, run in zip(per_seed, runs):
                row.append(f"{run['best_mean_return']:.1f}")
        speed, provenance = s["speedup"], made_elsewhere(block, result)
        lines += [f"#### {block['env']}, {block['algorithm'].upper()} (target return {block['target_return']:g})", "",
                  *provenance, table(["side", "solved", "wall s to target, median (range)", "env steps to target",
                         "env steps/s", *held_header], rows), "",
                  (f"- Wall time, ratio of medians {cleanrl} / {ours}: **{speed['median_wall_ratio']:.2f}x**; "
                   f"per seed: {', '.join(f'{p:.2f}x' for p in speed['per_seed'])} "
                   f"(wanted >= {speed['target']:.2f}x on every seed: "
                   f"{verdict(min(speed['per_seed']), speed['target'])})"
                   + capped_note(runs, cleanrl, ours, key="side")),
                  (f"- To a crossing that holds (the next 20 episodes average the target too), {cleanrl} / {ours} "
                   f"per seed: {', '.join(f'{p:.2f}x' for p in speed['per_seed_held'])}"),
                  (f"- Sample efficiency (env steps to target, {cleanrl} / {ours}): "
                   f"**{speed['sample_efficiency_ratio']:.2f}x**" + capped_note(runs, cleanrl, ours, key="side")),
                  (f"- With {len(speed['per_seed'])} seeds these are medians with their range, not confidence "
                   "intervals; the per-seed ratios show how much they move."),
                  "", "<details><summary>Per seed</summary>", "",
                  table(["side", "seed", "solved", "wall s to target", "env steps to target", "env steps/s",
                         *held_header], per_seed), "", "</details>", ""]
    return lines


def rl_defaults_section() -> list[str]:
    title = "### Choosing the RL defaults: candidates on seeds the CleanRL comparison never uses"
    result = load("rl_defaults")
    if result is None:
        return [title, "", "Not run yet: `python bench/rl_defaults.py`.", ""]
    lines = [title, "",
             ("`bench/rl_defaults.py` runs each candidate change to `algorithms.rl.PARAMS` as `bench/vs_cleanrl.py` "
              "runs ours (one torch thread, the episode clock; A2C at lr 0.002, the best of "
              "`search_spaces/rl.yaml`'s A2C grid), on its own seeds, and ranks them by the worst seed's time to a "
              "crossing of the threshold that holds for the next 20 episodes (a run that never holds counts at the "
              "cap): a 3x lead on every seed is decided by the worst one."), ""]
    for block in sorted(result["results"].values(),
                        key=lambda b: (b["algorithm"], b["round"], b["env"] != "CartPole-v1", b["env"])):
        summary, made, defaults = block["summary"], block["ran"], block["defaults"]
        rows = [[name, ", ".join(f"{k}={v}" for k, v in block["candidates"][name].items()) or "(the defaults)",
                 line["held"], f"{line['worst_wall_s_to_held']:.1f}", f"{line['median_wall_s_to_held']:.1f}",
                 ", ".join(f"{r['wall_s_to_held']:.1f}" + ("" if r["held"] else " (capped)")
                           for r in block["runs"] if r["candidate"] == name),
                 f"{line['median_env_steps_per_s']:,.0f}"]
                for name, line in sorted(summary.items(), key=lambda item: item[1]["worst_wall_s_to_held"])]
        changed = sorted({k for change in block["candidates"].values() for k in change if k in defaults})
        lines += [f"#### {block['algorithm'].upper()}, round {block['round']}: {block['env']}, seeds "
                  f"{', '.join(map(str, block['seeds']))}", "",
                  f"Command: `{made['command']}` at commit `{made['git_commit']}` ({made['date']}; cap "
                  f"{block['max_seconds']:.0f} s). The defaults then: "
                  + ", ".join(f"{k}={defaults[k]}" for k in changed) + ".", "",
                  table(["candidate", "change", "held", "worst wall s to a crossing that holds", "median",
                         "per seed", "env steps/s"], rows), ""]
    pairs: dict[tuple, list[dict]] = {}  # blocks of two candidates each, by algorithm and the pair's names
    for block in result["results"].values():
        if len(block["summary"]) == 2:
            pairs.setdefault((block["algorithm"], *sorted(block["summary"])), []).append(block)
    for (algorithm, *_), blocks in sorted(pairs.items()):
        line = paired_speedup(blocks)
        if line:
            lines.append(f"- {algorithm.upper()}: {line}.")
    return lines + [""]


def paired_speedup(blocks: list[dict]) -> str | None:
    """For blocks that tried the same two candidates on the same seeds: how much sooner (or later) the second by
    name order held than the first, per seed, as a geometric mean with a 95% t-interval, and on how many seeds
    it was sooner."""
    import math
    import statistics

    from scipy.stats import t as student

    names = sorted(blocks[0]["summary"])
    ratios = []
    for block in blocks:
        held = {(r["candidate"], r["seed"]): r["wall_s_to_held"] for r in block["runs"]}
        ratios += [held[(names[0], seed)] / held[(names[1], seed)] for seed in block["seeds"]
                   if (names[0], seed) in held and (names[1], seed) in held]
    if len(ratios) < 3:
        return None
    logs = [math.log(r) for r in ratios]
    half = student.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    mean = statistics.mean(logs)
    where = "; ".join(f"{b['env']} round {b['round']}" for b in blocks)
    sign, word = (1, "sooner") if mean >= 0 else (-1, "later")  # a ratio below 1 reads as how much later
    low, high = sorted(math.exp(sign * bound) for bound in (mean - half, mean + half))
    return (f"`{names[1]}` vs `{names[0]}`, paired by seed over {len(ratios)} seeds ({where}): a crossing that holds "
            f"{math.exp(sign * mean):.2f}x {word} with `{names[1]}` (geometric mean, 95% t-interval "
            f"{low:.2f}-{high:.2f}), sooner on {sum(r > 1 for r in ratios)} of {len(ratios)} seeds")


def scaling_section() -> list[str]:
    result = load("rl_scaling")
    if result is None:
        return ["### Rollout scaling", "", "Not run yet: `python bench/rl.py --parts scaling`.", ""]
    cpus = result["machine"]["cpus"]
    rows = [[r["env_runners"], f"{r['train_env_steps_per_s']:,.0f}", f"{r['train_speedup']:.2f}x",
             f"{r['sample_env_steps_per_s']:,.0f}", f"{r['sample_speedup']:.2f}x"] for r in result["rows"]]
    return ["### Rollout scaling: our A2C with 1, 2 and 4 remote EnvRunners (8 envs each)", "", ran(result), "",
            table(["EnvRunners", "training env steps/s", "speed-up", "sampling-only env steps/s", "speed-up"], rows),
            "", f"With {cpus} CPU cores, EnvRunners beyond {cpus} share them with each other, the driver and the "
            "learner, so sampling speeds up only up to that count; training also waits for the learner's update, "
            "which runs between rollouts.", ""]


def diffusion_section() -> list[str]:
    result = load("diffusion")
    if result is None:
        return ["## Diffusion", "", "Not run yet: `python bench/diffusion.py`.", ""]
    rows = [[name, f"{r['parameters']:,}", f"{r['images_per_s']:,.0f}", f"{r['steps_in_budget']:,}",
             r["fid_untrained"], r["fid"]] for name, r in result["rows"].items()]
    return ["## Diffusion: our DDPM U-Net vs HuggingFace diffusers (UNet2DModel + DDPMScheduler)", "", ran(result), "",
            table(["implementation", "parameters", "train images/s", "optimizer steps (throughput run + timed run)",
                   "eval/fid untrained", f"eval/fid after {result['train_seconds']:g} s"], rows), "",
            (f"- Throughput ours / diffusers: **{result['throughput_ratio']:.2f}x** "
            f"({result['threads']} torch thread, batch 128, 8x8 digits)."),
            f"- FID floor (500 real images vs the data set): {result['fid_real_floor']}.",
            ("- Same architecture (equal parameter counts), data, optimizer, EMA and batch; each side samples with its "
            "own library's DDIM (50 steps; diffusers spaces its timesteps 'leading', ours evenly including T-1), so "
            "the FID gap mixes training and sampler differences. One seed."), ""]


CAUSES = {  # bench/sweep_overhead.py's breakdown, in the order a sweep pays them
    "checks": "driver start-up and checks, beyond the plain process's own start and exit",
    "ray": "Ray's start (MLflow's store module loads meanwhile)",
    "mlflow": "MLflow: the experiment and the parent run",
    "trial_actors": "Tune: the trial worker's start and imports, scheduling, results",
    "tracking": "MLflow calls inside the trials (the run, params, tags, metrics, artifact uploads)",
    "model": "the trials' MLflow models",
    "checkpoints": "Tune's checkpoints, every iteration",
    "in_trial_rest": "the trials' steps in the sweep vs in one process, less the MLflow calls (the machine's drift, "
                     "the background threads: MLflow's system metrics, the metric sender)",
    "results": "the end-of-sweep results, plots and the registry",
    "exit": "Ray's shutdown and the process's exit",
}


def overhead_section() -> list[str]:
    result = load("sweep_overhead")
    if result is None:
        return ["## Sweep overhead", "", "Not run yet: `python bench/sweep_overhead.py`.", ""]
    families = result["families"]
    pairs_made = next(iter(families.values())).get("ran")  # the pairs' own run when an ablation came later
    out = ["## Sweep overhead: Tune + MLflow vs the same trials back to back", "",
           ran({**result, **pairs_made}) if pairs_made else ran(result), "",
           "Each family's trials run twice, one at a time: as a sweep (`--max-concurrent 1`, MLflow on a new SQLite "
           "file, checkpoints every iteration, system metrics, the model and the registry) and back to back in one "
           "plain Python process doing the same steps, evaluations, pictures and final checkpoint without Tune or "
           "MLflow, with the one torch thread and one BLAS thread a 1-CPU trial gets. Both wall times include the "
           "interpreter's start. Pairs run in alternating order; medians over the pairs, each pair's own share "
           "beside them. RL's plain process starts Ray too: RLlib runs on it.", ""]
    rows = []
    for name, f in families.items():
        per_pair = ", ".join(f"{x:.1f}%" for x in f["overhead_pct_per_pair"])
        rows.append([name, f"{f['trials']} x {f['back_to_back_trial_s']:.1f} s", f["repeats"], f["sweep_wall_s"],
                     f["back_to_back_wall_s"],
                     f"**{f['overhead_per_trial_s']:.1f} s = {f['overhead_per_trial_pct']:.1f}%**", per_pair,
                     f"**{f['clocked_pct']:.1f}%** ({', '.join(f'{x:.1f}%' for x in f['clocked_pct_per_pair'])})",
                     f"{f['default_sweep_pct']:.1f}% ({f['default_sweep_trials']} trials)"])
    out += [table(["family", "trials (back to back)", "pairs", "sweep wall s", "back-to-back wall s",
                   "overhead per trial", "per pair", "clocked overhead (per pair)",
                   "at the default sweep's first round"], rows), ""]
    split = {n: f for n, f in families.items() if "later_trial_pct" in f}
    if split:
        out += ["By where a trial stands: each sweep trial beside its plain twin (the same configuration). A worker's "
                "first trial pays MLflow's own imports and first model; Tune reuses the worker (`reuse_actors`), so "
                "every later trial pays only its own MLflow calls, model and checkpoints; what is left of the sweep's "
                "wall time is paid once per sweep. Medians over the pairs (later trials: over every later trial of "
                "every pair), each pair's beside them.", ""]
        out += [table(["family", "a worker's first trial, beyond its twin", "each later trial, wall (per pair)",
                       "each later trial, clocked (per pair)", "paid once per sweep (per pair)"],
                      [[n, f"{f['first_trial_s']:.1f} s (clocked {f['first_trial_clocked_s']:.1f} s)",
                        f"**{f['later_trial_pct']:.1f}%** ({listed(f['later_trial_pct_per_pair'], '%')})",
                        f"**{f['later_trial_clocked_pct']:.1f}%** "
                        f"({listed(f['later_trial_clocked_pct_per_pair'], '%')})",
                        f"{f['fixed_per_sweep_s']:.1f} s ({listed(f['fixed_per_sweep_s_per_pair'])})"]
                       for n, f in split.items()]), ""]
    out += ["Where it goes, in seconds per sweep (medians over the pairs), from the clocks of "
            "`orchestration/overhead.py`: the driver's phases and each trial's seconds in MLflow calls, models and "
            "checkpoints. In each pair the causes add up to the sweep's wall time minus the plain process's "
            "(the medians, taken cause by cause, need not).", ""]
    out += [table(["cause", *families], [[text, *(f"{families[n]['causes_s'][key]:.1f}" for n in families)]
                                       for key, text in CAUSES.items()]), ""]
    out += ablation_lines(families)
    worst = max(max(f["overhead_per_trial_pct"], f["clocked_pct"]) for f in families.values())

    def span(cause: str) -> str:
        low, high = (f"{g([f['causes_s'][cause] for f in families.values()]):.1f}" for g in (min, max))
        return low if low == high else f"{low}-{high}"

    trials = next(iter(families.values()))["trials"]
    out += ["- *Overhead per trial* compares wall times; *clocked overhead* adds up only what the clocks saw (every "
            "cause but the trials' own steps), so a difference in the steps themselves, either way (this machine's "
            "speed drifts by up to a fifth between runs), does not enter it. The target is judged on the larger "
            "of the two.",
            f"- Target, at most 5% per trial in every family: {verdict(-worst, -5.0)} with {trials} trials per "
            f"sweep (worst {worst:.1f}%). What keeps it above is paid once per sweep, whatever the trials' length: "
            f"Ray's start ({span('ray')} s), the trial worker's start and imports ({span('trial_actors')} s) and "
            f"the exit ({span('exit')} s); and once per worker, MLflow's own imports at its first run and model "
            "(most of the trials' MLflow rows). What is paid once shrinks per trial as a sweep has more trials; "
            "the last column of the first table spreads it over the default sweep's first round (its "
            "configurations times its first seeds), the trials' own share unchanged." + slower_steps(families)]
    if split:
        later = max(max(f["later_trial_pct"], f["later_trial_clocked_pct"]) for f in split.values())
        out.append(f"- Each trial after a worker's first, at most 5% in every family: {verdict(-later, -5.0)} "
                   f"(worst {later:.1f}%, the larger of wall and clocked).")
    return out + [""]


def slower_steps(families: dict) -> str:
    """Where the trials' own steps ran slower in the sweep than in the plain process (more than 5% of its
    wall time), which no clock sees."""
    slow = {n: f for n, f in families.items() if f["causes_s"]["in_trial_rest"] > 0.05 * f["back_to_back_wall_s"]}
    if not slow:
        return ""
    return (" Beyond that, the trials' own steps ran slower in the sweep than in the plain process, where no clock "
            "sees: " + "; ".join(f"{n} {f['causes_s']['in_trial_rest']:.1f} s per sweep" for n, f in slow.items())
            + " (the row above; the per-trial table shows in which pairs). Its cause is not found (the README says "
            "what was ruled out by hand).")


def listed(values: list[float], unit: str = "", sign: bool = False) -> str:
    """Per-pair (or per-repeat) values beside a median: "4.7%, 5.5%, 5.7%"."""
    return ", ".join(f"{x:{'+' if sign else ''}.1f}{unit}" for x in values)


def ablation_lines(families: dict) -> list[str]:
    """The ablation's table: tiny-trial sweeps with one part switched off, and the same trials back to back."""
    done = {n: f["ablation"] for n, f in families.items() if "switches" in f.get("ablation", {})}
    if not done:
        return []
    first = next(iter(done.values()))
    switches = list(first["switches"])
    made = first.get("ran", {})
    out = ["Switched off one at a time (`python bench/sweep_overhead.py --ablate`"
           + (f", at commit `{made['git_commit']}`, {made['date']}" if made else "") + "): sweeps of tiny trials "
           "(the same iterations, evaluations, checkpoints and MLflow calls with almost no training: "
           + "; ".join(f"{n} `{', '.join(f'{k}={v}' for k, v in a['overrides'].items())}`" for n, a in done.items())
           + "), every variant once per repeat in a rotating order, beside the same tiny trials back to back. "
           "Seconds per sweep saved by switching the part off, read after Ray's start (which no switch touches and "
           "which varies by seconds; median, each repeat's in brackets):", ""]
    rows = [[n, len(a["runs"]), f"{a['tiny_overhead_s']:.1f} ({listed(a['tiny_overhead_s_per_repeat'])})",
             *(f"{a['saving_s'][w]:+.1f} ({listed(a['saving_s_per_repeat'][w], sign=True)})" for w in switches)]
            for n, a in done.items()]
    def shown(switch: str) -> str:  # e.g. `--checkpoint-every N` where the families' iteration counts differ
        commands = {a["switches"][switch] for a in done.values()}
        return commands.pop() if len(commands) == 1 else re.sub(r"\d+", "N", first["switches"][switch])

    header = ["family", "repeats", "the whole orchestration: tiny sweep - tiny back to back, s",
              *(f"{w} (`{shown(w)}`)" for w in switches)]
    spread = {n: max(a["tiny_overhead_s_per_repeat"]) - min(a["tiny_overhead_s_per_repeat"]) for n, a in done.items()}
    told_apart = [f"{n}: {w} {a['saving_s'][w]:+.1f} s" for n, a in done.items() for w in switches
                  if abs(a["saving_s"][w]) >= spread[n]]
    clocked = [families[n]["causes_s"]["checkpoints"] for n in done]
    spreads = ", ".join(f"{n} {spread[n]:.1f} s" for n in done)
    verdict_line = (f"- Every median saving is smaller than its family's spread of the whole tiny orchestration from "
                    f"repeat to repeat (max - min: {spreads}): no switch is told apart from the sweep's own variation"
                    if not told_apart else
                    f"- Savings at least as large as their family's repeat-to-repeat spread (max - min: {spreads}): "
                    + "; ".join(told_apart))
    return out + [table(header, rows), "",
                  verdict_line + ". The clocks put the checkpoints at "
                  + ", ".join(f"{n} {c:.1f} s" for n, c in zip(done, clocked))
                  + " per sweep of full trials, and no clock sees the system metrics' threads.", ""]


def asha_section() -> list[str]:
    result = load("asha_vs_grid")
    if result is None:
        return ["## ASHA vs full grid", "", "Not run yet: `python bench/asha_vs_grid.py`.", ""]
    g, a = result["grid"], result["asha_run"]
    rows = [[label, r["trials"], r["finished_trials"], r["trial_iterations"], r["trial_seconds"], r["wall_s"],
             ", ".join(f"{k}={v}" for k, v in r["best_config"].items()), r["best_metric"]]
            for label, r in (("grid", g), ((f"ASHA (grace {result['asha']['grace_period']}, "
                                           f"reduction {result['asha']['reduction_factor']})"), a))]
    return ["## ASHA vs the full grid, to the same best configuration", "", ran(result), "",
            table(["scheduler", "trials", "run to the end", "trial iterations", "trial seconds", "wall s",
                   "best configuration", "best eval/fid"], rows), "",
            f"- Same best configuration: **{'yes' if result['same_best_config'] else 'no'}**.",
            (f"- Saving: **{result['saving_iterations']:.2f}x** in trial iterations, "
            f"**{result['saving_trial_seconds']:.2f}x** in trial seconds, "
            f"**{result['saving_wall']:.2f}x** in wall time "
            f"(target >= 2x: {verdict(result['saving_trial_seconds'], 2.0)})."),
            "- Under ASHA the sweep starts grid trials in a seeded random order (`orchestration.tuning."
            "build_search_alg`): in Tune's nested-loop order the first trials to reach each rung, which "
            "asynchronous halving promotes against little competition, would all share one schedule.", ""]


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    ci = f" [{row['ci'][0]:.4g}, {row['ci'][1]:.4g}]" if row["ci"] else ""
    tied = {"best": "**best**", True: "tied", False: "not tied", None: "?"}[row["tied"]]
    return f"{row['mean']:.4g}{ci}, {tied}" if row["mean"] is not None else "-"


def stability_section() -> list[str]:
    result = load("seed_stability")
    title = "## Do the default sweeps' answers hold with other seeds?"
    if result is None:
        return [title, "", "Not run yet: `python bench/seed_stability.py`.", ""]
    lines = [title, "", ("Each sweep's command is named under its heading where it differs from this one. "
                         if any(r.get("ran", {}).get("command") not in (None, result["command"])
                                for r in result["sweeps"].values()) else "") + ran(result), "",
             ("Each default sweep ran twice with 3 paired seeds: seeds 0-2, then seeds 3-5 (`--seed-offset 3`). "
              "Each cell: the mean of the sweep metric over the 3 seeds, its 95% t interval (2 degrees of freedom, "
              "so wide) and whether the configuration is tied with the best, by the rule of the time: the 95% paired "
              "t interval of its per-seed difference to the best contains 0 (since issue 29 the table uses "
              "`orchestration/verdict.py`'s pooled one-sided test, the rule racing eliminates with). The answer "
              "holds when the two tied-best sets overlap."), ""] + ([result["note"], ""] if result.get("note") else [])
    for sweep, r in result["sweeps"].items():
        first, second = r["runs"]
        configs = [row["config"] for row in first["configurations"]]
        configs += [row["config"] for row in second["configurations"] if row["config"] not in configs]
        find = {run["seeds"]: {row["config"]: row for row in run["configurations"]} for run in r["runs"]}
        rows = [[config, _cell(find[first["seeds"]].get(config)), _cell(find[second["seeds"]].get(config))]
                for config in configs]
        walls = ", ".join(f"{run['wall_s']:.0f} s" if run["wall_s"] else "-" for run in r["runs"])
        provenance = made_elsewhere(r, result)
        lines += [f"### `python -m orchestration.sweep {sweep}`: {first['metric']} ({first['mode']})", "",
                  *provenance,
                  table(["configuration", f"seeds {first['seeds']}", f"seeds {second['seeds']}"], rows), "",
                  f"- Tied-best sets: {{{'; '.join(first['tied_set'])}}} and {{{'; '.join(second['tied_set'])}}}: "
                  + (f"**overlap** ({'; '.join(r['tied_overlap'])})" if r["tied_overlap"] else "**disjoint**")
                  + f"; same best: {'yes' if r['same_best'] else 'no'}.",
                  f"- Wall time of the two sweeps: {walls}." + (f" {r['ran']['note']}" if r.get("ran", {}).get("note")
                                                                 else ""), ""]
    return lines


def memory_section() -> list[str]:
    result = load("memory_diffusion")
    if result is None:
        return ["## Memory", "", "Not run yet: `python bench/memory.py`.", ""]
    r = result
    shortened = f" with {', '.join(r['overrides'])}" if r.get("overrides") else ""
    return [f"## Memory: peak of the default sweep (`python -m orchestration.sweep diffusion`{shortened})", "",
            ran(r), "",
            table(["whole process tree, summed RSS", "summed PSS", "driver RSS", "largest process RSS",
                   "processes", "sweep wall s"],
                  [[f"{r['peak_tree_rss_gb']} GB", f"{r['peak_tree_pss_gb']} GB", f"{r['peak_driver_rss_gb']} GB",
                    f"{r['peak_largest_process_rss_gb']} GB ({r['largest_process']})", r["peak_processes"],
                    r["wall_s"]]]), "",
            ("RSS counts pages shared between processes (torch's libraries, Ray's object store) once per "
            "process; PSS divides them among their sharers, so it is the better figure for what the sweep needs."),
            ""]


def tpe_section() -> list[str]:
    result = load("tpe_vs_random")
    title = "## TPE (`method: bayes`) vs random search: trials to reach random search's best"
    if result is None:
        return [title, "", "Not run yet: `python bench/tpe_vs_random.py`.", ""]
    budget, sign = result["budget"], "lowest" if result["mode"] == "min" else "highest"

    def needed(n):
        return str(n) if n is not None else f"not reached (> {budget})"

    rows = [[r["search_seed"], f"{r['target']:.4g}", r["random_trials"], needed(r["tpe_trials"]),
             f"{r['tpe_best']:.4g}", f"{r['random_wall_s']:.0f} / {r['tpe_wall_s']:.0f}"] for r in result["repeats"]]
    return [title, "", ran(result), "",
            (f"`{result['space']}`: {budget} trials per search, {result['max_concurrent']} at a time, each repeat "
             f"with its own `--search-seed`. The target of a repeat is the {sign} {result['metric']} random search "
             "found in its whole budget; a search needs as many trials as the position (in start order) of its "
             "first trial at least that good. Every trial has the same seed, so a configuration's score is a "
             "deterministic function of its values and the searchers differ only in where they look."), "",
            table(["search seed", f"target ({result['metric']})", "random needs", "TPE needs", "TPE's best",
                   "wall s (random / TPE)"], rows), "",
            (f"- Median trials to the target: random **{result['median_random_trials']:g}**, TPE "
             f"**{result['median_tpe_trials']:g}** (a TPE run that never reaches it counts as {budget + 1}); TPE "
             f"reached it in {result['tpe_reached']} of {len(result['repeats'])} repeats."),
            ("- The target is one evaluation of one trial: random's best trial has a 95% evaluation interval of "
             + "; ".join(f"[{r['target_ci'][0]:.4g}, {r['target_ci'][1]:.4g}]" for r in result["repeats"])
             + f" (repeat by repeat), and TPE's best lies inside it in {result['tpe_best_inside_target_ci']} of "
             f"{len(result['repeats'])} repeats: at this budget the two searches' best configurations are not "
             "distinguishable by one FID evaluation.") if "target_ci" in result["repeats"][0] else "",
            (f"- Target (TPE needs at most half of random's trials): "
             f"{'**met**' if result['target_met'] else '**missed**'}. With {len(result['repeats'])} repeats this "
             "is a small sample: the per-repeat rows are the evidence."), ""]


def pbt_section() -> list[str]:
    result = load("pbt_vs_grid")
    title = "## PBT vs the best fixed configuration of a grid, at equal training compute"
    if result is None:
        return [title, "", "Not run yet: `python bench/pbt_vs_grid.py`.", ""]
    g, p, n = result["grid"], result["pbt"], result["repeats"]

    def mean_ci(summary):
        ci = summary["ci"]
        return f"{summary['mean']:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")

    values = ", ".join(f"{k} in {v}" for k, v in g["values"].items())
    rows = [[f"grid's best configuration ({g['best_config']})", mean_ci(g["best"]),
             ", ".join(f"{v:.4g}" for v in g["best"]["values"])],
            ["grid: best fixed configuration of each seed", "-",
             ", ".join(f"{v:.4g}" for v in g["best_of_population_per_seed"].values())],
            ["PBT: best trial of each repeat", mean_ci(p["best_per_repeat"]),
             ", ".join(f"{v:.4g}" for v in p["best_per_repeat"]["values"])]]
    difference = result["paired_difference_vs_best_of_grid_seed"]
    return [title, "", ran(result), "",
            (f"PBT: `{result['space']}` ({result['population']} trials, {result['iterations']} iterations each), "
             f"repeated {n} times with `--search-seed r --set seed=r`. Grid: the same ranges as "
             f"{len(g['configs'])} fixed configurations ({values}), the same iterations, seeds 0-{n - 1}. Each side "
             f"trains {result['trial_iterations_each']} trial iterations. Intervals: 95% Student t over the "
             f"{n} seeds or repeats, as the sweeps report them."), "",
            table([f"{result['metric']}", "mean [95% CI]", "per seed / repeat"], rows), "",
            (f"- Like for like (per seed, the best of {result['population']} trials on each side), PBT minus grid: "
             + (f"95% paired t interval [{difference[0]:.4g}, {difference[1]:.4g}]." if difference else "-")),
            (f"- Target (PBT at least as good as the grid's best configuration, by mean): "
             f"{'**met**' if result['target_met'] else '**missed**'}."),
            (f"- Wall time: grid {g['wall_s']:.0f} s; PBT {', '.join(f'{w:.0f}' for w in p['wall_s'])} s."), ""]


def gpu_section() -> list[str]:
    title = "## Trials per GPU (`bench/gpu.py`)"
    results = load_all("gpu_*.json")
    if not results:
        return [title, "", "Not run yet: `python bench/gpu.py` on a machine with a CUDA GPU.", ""]
    lines = [title, ""]
    for result in results:
        lines += [f"### {result['device']}", "", ran(result), "",
                  (f"k trial processes share the GPU, each building its family's Experiment as a sweep trial does "
                   f"(1 CPU thread, default values on digits) and running {result['iterations']} timed iterations "
                   "(training steps and the family's evaluation) after one untimed one. Utilisation: NVML's "
                   "percentage of time a kernel ran, sampled every 0.2 s."), ""]
        for family, r in result["families"].items():
            rows = [[row["trials"], row["train_images_per_s_per_trial"], row["train_images_per_s_total"],
                     row["trial_iterations_per_min"], f"{row['gpu_util_mean']} / {row['gpu_util_max']}",
                     row["gpu_memory_peak_mb"]] for row in r["packing"]]
            checks = "; ".join(f"{device}: {outcome}" for device, outcome in r["checkpoint_restore"].items())
            lines += [f"**{family}** (checkpoint written on the GPU, restored on {checks})", "",
                      table(["trials on the GPU", "train images/s per trial", "train images/s in all",
                             "trial iterations/min in all", "GPU util % mean / max", "GPU memory MB"], rows), ""]
    return lines


def speedups_section() -> list[str]:
    title = "## Training speed-ups: precision, compile, channels_last (`bench/speedups.py`)"
    results = load_all("speedups_*.json")
    if not results:
        return [title, "", "Not run yet: `python bench/speedups.py`.", ""]
    lines = [title, ""]
    for result in results:
        where = result["machine"]["cuda"] or "CPU"
        lines += [f"### {where}", "", ran(result), "",
                  (f"Each cell is a fresh process with one torch thread (as a trial has), the family's default values "
                   f"on digits plus the option: its first training step (for compile: the compilation), 10 warm-up "
                   f"steps, then {result['seconds']:g} s of timed training. Median and range of training images/s "
                   f"over {result['repeats']} rounds; the ratio to fp32 is taken within each round. Evaluation is "
                   "not timed (it always runs in fp32). A compile's first step is the compilation: the slowest "
                   "round compiled from scratch, later ones found inductor's on-disk cache (as later trials on "
                   "the same node do)."), ""]
        for family, block in result["families"].items():
            by_option, rows = block["summary"], []
            for name, row in by_option.items():
                low, high = row["range_images_per_s"]
                ratios = row.get("ratio_to_fp32_per_round", [])
                first_steps = [r["first_step_s"] for r in block["runs"][name]]
                rows.append([name, f"{row['median_images_per_s']:.0f} ({low:.0f}-{high:.0f})",
                             ", ".join(f"{r:.2f}" for r in ratios) or "-",
                             f"{row['median_first_step_s']:.1f} ({max(first_steps):.1f})"])
            lines += [f"**{family}**", "", *made_elsewhere(block, result),
                      table(["option", "train images/s", "x fp32, per round", "first step s (slowest)"], rows), ""]
    return lines


def spread(runs: list[dict], key: str, digits: int = 1) -> str:
    """One run's value, or the median [min, max] of several: how much a number moved between runs."""
    values = sorted(r[key] for r in runs)
    if len(values) == 1:
        return f"{values[0]:g}"
    return f"{round(median(values), digits):g} [{values[0]:g}, {values[-1]:g}]"


def total(runs: list[dict], key: str) -> int:
    return sum(r[key] for r in runs)


def before_after_table(before: dict, after: dict) -> list[str]:
    """One line per backend and N: what the background sender changed."""
    old = {(r["backend"], r["trials"]): r["runs"] for r in before["rows"]}
    rows = []
    for row in after["rows"]:
        b, a = old.get((row["backend"], row["trials"])), row["runs"]
        if b is None:
            continue
        count = lambda key: f"{total(b, key)} → {total(a, key)}"  # noqa: E731
        value = lambda key, digits=1: f"{spread(b, key, digits)} → {spread(a, key, digits)}"  # noqa: E731
        rows.append([row["backend"], row["trials"], f"{len(b)} → {len(a)}", count("lost_points"),
                     count("duplicated_points"), count("runs_not_opened"), count("trials_that_hit_an_error"),
                     value("served_batches_per_s"), value("p99_ms"), value("median_blocked_s_per_trial", 2)])
    return ["**Before → after** (the synchronous logging path → the background sender). Counts are totals over "
            "a side's runs; with several runs, a value is their median [min, max].", "",
            table(["backend", "trials", "runs", "lost points", "duplicated points", "runs not opened",
                   "trials that hit an error", "served batches/s", "p99 ms", "blocked s per trial"], rows), ""]


def tracking_load_section() -> list[str]:
    title = "## Tracking under load: many trials, one MLflow server (`bench/tracking_load.py`)"
    result = load("tracking_load")
    if result is None:
        return [title, "", "Not run yet: `python bench/tracking_load.py`.", ""]
    machine = result["machine"]
    where = machine["cuda"] or f"{machine['cpus']} CPU cores, no GPU"
    lines = [title, "", f"Measured on {where} (torch {machine['torch']}); each block names the commands and commits "
             "of its runs.", "",
             ("N simulated trials log through the project's trial-logging path (`TrialRun`), each a batch of 8 "
              "metrics every 0.5 s, against an MLflow server started by the benchmark with its default 4 workers, "
              "on SQLite or PostgreSQL 15, with MLflow's default connection pool (5 + 10 overflow per worker) or "
              "`pool` (40 + 40, as `cluster.yaml` sets it). `local`: no server, each trial a process writing "
              "into one SQLite file. Latency: each `log_batch` request, the client's own retries included. "
              "Refused: requests that raised (the background sender sends them again). Lost and duplicated: "
              "metric points missing from, or held twice in, each run's history read back afterwards. Blocked: "
              "the time a trial's training loop spent in logging calls. Served: batches stored per second from "
              "the start until the last was stored (the trials log for the block's seconds). Requests/s: `log_batch` "
              "requests over the same time; since the background sender, batches queued behind a slow request go "
              "out together in one request, so it can be lower than served. Counts (refused, lost, ...) are "
              "totals over a row's runs; with several runs, a value is their median [min, max]. `before` ran from a "
              "checkout of the synchronous logging path (3be82fd) with this script copied in."),
             ""]
    paths = result["paths"]
    if {"before", "after"} <= set(paths):
        lines += before_after_table(paths["before"], paths["after"])
    for label, block in paths.items():
        rows = []
        for row in block["rows"]:
            # over the time until the last batch was stored, as served
            span = lambda run: max(run["last_stored_after_s"], block["seconds"])  # noqa: E731
            runs = [{**run, "requests_per_s": round(run["requests"] / span(run), 1)} for run in row["runs"]]
            rows.append([row["backend"], row["trials"], len(runs), runs[0]["offered_batches_per_s"],
                         spread(runs, "served_batches_per_s"), spread(runs, "last_stored_after_s"),
                         spread(runs, "requests_per_s"), f"{spread(runs, 'p50_ms')} / {spread(runs, 'p99_ms')}",
                         total(runs, "failed_requests"), total(runs, "runs_not_opened"),
                         total(runs, "trials_that_hit_an_error"), total(runs, "lost_points"),
                         total(runs, "duplicated_points"), spread(runs, "median_blocked_s_per_trial", 2)])
        # runs added later by --add carry their own command and commit
        made = sorted({(run["command"], run["git_commit"]) for row in block["rows"] for run in row["runs"]})
        made_by = [f"Runs from: {'; '.join(f'`{c}` at `{g}`' for c, g in made)}.", ""]
        lines += [f"**{label}** ({block['seconds']:g} s per run)", "", *made_by,
                  table(["backend", "trials", "runs", "batches/s offered", "served", "last stored at s",
                         "requests/s", "p50 / p99 ms", "refused requests", "runs not opened",
                         "trials that hit an error", "lost points", "duplicated points",
                         "blocked s per trial (median)"], rows), ""]
    return lines


def race_section() -> list[str]:
    result = load("race_vs_full")
    title = "## Racing: the same tied set for fewer trial-seconds?"
    if result is None:
        return [title, "", "Not run yet: `python bench/race_vs_full.py`.", ""]
    lines = [title, "", ("`bench/race_vs_full.py` runs a space with every configuration at every one of max_seeds "
                         "seeds (full replication), then replays races over random orders of those recorded seeds "
                         "with the space's `race:` settings and the function the live race decides with "
                         "(`verdict.run_race`). Full replication's tied set is the same rule at one look over all "
                         "its seeds. A replayed race counts the trials its looks need; a live race may also start "
                         "a survivor's next seed speculatively (the real races below include those). Target: the "
                         "same tied set, or a superset with one extra at most, in at least 90% of replays, at no "
                         "more than half of full replication's trial-seconds."), ""]
    for key, block in result["spaces"].items():
        r = block["replay"]
        lines += [f"### `{block['space']}`: {block['metric']} ({block['mode']}), race {block['race']}", "",
                  ran({**block["ran"], "machine": result["machine"]}) if "ran" in block else "", "",
                  table(["configuration", "mean over all seeds", "seeds", "tied (full)", "trial-seconds"],
                        [[label, f"{row['mean']:.4g}" if row["mean"] is not None else "-", row["seeds"],
                          "yes" if row["tied"] else "no", f"{row['trial_seconds']:.0f}"]
                         for label, row in sorted(block["full"].items(),
                                                  key=lambda kv: (not kv[1]["tied"], kv[0]))]), "",
                  f"- Full replication: {block['configurations']} configurations x {block['race']['max_seeds']} seeds, "
                  f"{block['full_trial_seconds']:.0f} trial-seconds"
                  + (f", {block['full_wall_s']:.0f} s wall." if block.get("full_wall_s") else "."),
                  f"- {r['races']} replayed races: same tied set in {r['same_set']:.1%}, same or a superset with "
                  f"at most one extra in {r['same_or_superset_within_one']:.1%} "
                  f"({verdict(r['same_or_superset_within_one'], 0.9)} the 90% target); "
                  f"false eliminations (a member of full replication's tied set eliminated): "
                  f"{r['false_eliminations']} in {r['races_with_a_false_elimination']} races.",
                  f"- Trial-seconds, race / full: median {r['trial_seconds_ratio_median']:.2f} (quartiles "
                  f"{r['trial_seconds_ratio_quartiles'][0]:.2f}-{r['trial_seconds_ratio_quartiles'][1]:.2f}; "
                  f"{verdict(-r['trial_seconds_ratio_median'], -0.5)} the 1/2 target); median "
                  f"{r['trials_median']:.0f} of {r['full_trials']} trials; median survivors "
                  f"{r['survivors_median']:.0f} (full tied set: {r['full_tied_set_size']})."]
        for race in block.get("real", []):
            started = max((int(m) for line in race["rounds"] for m in re.findall(r"; (\d+) trials so far", line)),
                          default=0)
            lines.append(f"- Real race, seeds {race['offset']}-{race['offset'] + block['race']['max_seeds'] - 1}: "
                         f"{started} of {r['full_trials']} trials started by its last look, "
                         f"{race['trial_seconds']} trial-seconds, {race['wall_s']:.0f} s wall (the sweep command, "
                         f"Ray start included), slots busy {race['utilisation']:.0%} of {race['span_s']} s on "
                         f"{race['slots']} slots; {'; '.join(race['answer'][1:])}")
        if block.get("note"):
            lines.append(f"- Why: {block['note']}")
        if block.get("real"):
            lines.append("- The real races ran alone on the machine; full replication ran while the other space's "
                         "full replication shared the 2 cores, so compare trials started, not trial-seconds, "
                         "across the two.")
        lines.append("")
    return lines


def many_trials_section() -> list[str]:
    r = load("many_trials")
    title = "## A thousand trials: a 3-node local cluster with an MLflow server"
    if r is None:
        return [title, "", "Not run yet: `python bench/many_trials.py`.", ""]
    rss_gb = r["driver_peak_rss_mb"] / 1024
    return [title, "", ran(r), "",
            (f"{r['trials']} tiny diffusion trials (`{r['space']}`: one iteration of 5 steps, FID from 64 samples; "
             f"{r['mean_trial_s']} s each on average, their MLflow runs' durations) on {r['nodes']} nodes with "
             f"{r['slots']} trial slots in all, all 3 nodes on this one 2-core machine, logging to one MLflow server "
             f"(SQLite). {r['finished_runs']} runs finished and `report` listed {r['report_rows']} configurations. "
             "One run of each number: the overhead varies with how busy the machine is."), "",
            table(["", "measured", "target", ""],
                  [["scheduling overhead per trial: (wall - sum of trial times / slots) x slots / trials",
                    f"{r['overhead_per_trial_s']:.2f} s", "at most 1 s",
                    verdict(r["overhead_per_trial_s"], 1.0, higher_is_better=False)],
                   ["end of the sweep (last trial's end to the driver's exit: results, plots, registry)",
                    f"{r['end_of_sweep_s']:.1f} s", "under 30 s", verdict(r["end_of_sweep_s"], 30, False)],
                   ["`python -m orchestration.report` against the server", f"{r['report_s']:.1f} s", "under 30 s",
                    verdict(r["report_s"], 30, False)],
                   ["the driver's peak RSS", f"{rss_gb:.2f} GB", "under 2 GB", verdict(rss_gb, 2, False)]]), "",
            (f"- The trial phase took {r['trial_phase_s']:.0f} s for {r['sum_trial_s']:.0f} trial-seconds over "
             f"{r['slots']} slots; the sweep {r['sweep_wall_s']:.0f} s from the command to its exit, "
             f"{r['start_to_first_trial_s']:.0f} s of it before the first trial's run opened."),
            *([(f"- Earlier ({e['why']}; commit `{e['git_commit']}`, {e['date']}): end of sweep "
                f"{e['end_of_sweep_s']} s "
                f"and `report` {e['report_s']} s, both over their targets. Profiled (cProfile) on that run's store: "
                "the results read 3 metric histories per run one request at a time (30 s), PBT's lineage read "
                "every run again in a sweep without PBT (22 s under the profiler), and the curves plot drew a "
                "legend of 1,000 entries. Now: the interval comes with the search's latest metrics, histories "
                "are fetched in parallel and only for runs with more than one step (a sweep of longer trials "
                "still fetches one per run), the lineage only for PBT, and the plots name the best 10 "
                "configurations.")] if (e := r.get("earlier")) else []),
            *([f"- With checkpoints and Tune's state in S3 (moto's server on this machine; `{q['command']}` at "
               f"`{q['git_commit']}`, {q['date']}): {q['trials']} trials, overhead {q['overhead_per_trial_s']:.2f} s "
               f"per trial, end of sweep {q['end_of_sweep_s']:.1f} s, report {q['report_s']:.1f} s, driver peak "
               f"RSS {q['driver_peak_rss_mb'] / 1024:.2f} GB, {q['mean_trial_s']} s per trial. moto is one Python "
               "process on the same 2 cores as the trials, so this says what this object store costs here, not what "
               "S3 costs; where the longer end of the sweep goes (Tune's last upload of its state, the outcomes "
               "read back) was not profiled."]
              if (q := load("many_trials_s3")) else []), ""]


def mean_with_ci(entry: dict, fmt: str) -> str:
    """`mean [low, high]` of a summary entry {"mean", "ci"} (no interval below two seeds)."""
    ci = f" [{entry['ci'][0]:{fmt}}, {entry['ci'][1]:{fmt}}]" if entry["ci"] else ""
    return f"{entry['mean']:{fmt}}{ci}"


def gan_vs_ddpm_section() -> list[str]:
    title = "## GAN vs DDPM at equal training seconds (digits)"
    result = load("gan_vs_ddpm")
    if result is None:
        return [title, "", "Not run yet: `python bench/gan_vs_ddpm.py`.", ""]
    summary, seeds = result["summary"], sorted({r["seed"] for r in result["runs"]})

    def cell(key: str, side: str, fmt: str) -> str:
        entry = summary[key][side]
        return f"{mean_with_ci(entry, fmt)} ({', '.join(f'{v:{fmt}}' for v in entry['per_seed'])})"

    rows = [[side.upper(), cell("steps", side, ".0f"), cell("fid", side, ".1f"), cell("mode_coverage", side, ".2f"),
             cell("class_kl", side, ".3f")] for side in ("gan", "ddpm")]
    lines = [title, "", ran(result), "",
             (f"Each side trains alone for {result['seconds']:g} s of steps (one torch thread, its family's "
              f"defaults), seeds {', '.join(map(str, seeds))}, the order alternating by seed; then FID of 500 "
              "samples (the features and bootstrap of diffusion's FID) and mode coverage / class KL of 1,000. "
              "Cells: mean [95% t interval over seeds] (per seed)."), "",
             table(["model", f"steps in {result['seconds']:g} s", "eval/fid", "mode coverage", "class KL (nats)"],
                   rows),
             ""]
    for key, name in (("fid", "FID"), ("mode_coverage", "mode coverage"), ("class_kl", "class KL")):
        diff = summary[key]["gan_minus_ddpm_ci"]
        if diff:
            verdict_text = "no difference shown" if diff[0] <= 0 <= diff[1] else (
                "GAN higher" if diff[0] > 0 else "DDPM higher")
            lines.append(f"- {name}, GAN - DDPM paired by seed: 95% CI [{diff[0]:.3g}, {diff[1]:.3g}]: "
                         f"{verdict_text}.")
    return lines + [""]


def rbm_section() -> list[str]:
    title = "## RBM: ours vs scikit-learn's BernoulliRBM (binarised digits)"
    result = load("rbm_vs_sklearn")
    if result is None:
        return [title, "", "Not run yet: `python bench/rbm_vs_sklearn.py`.", ""]
    summary, seeds = result["summary"], sorted({r["seed"] for r in result["runs"]})
    names = {"sklearn": "scikit-learn BernoulliRBM (PCD-1, batch 10)",
             "ours_matched": "ours, same algorithm and settings (PCD-1, batch 10, no momentum, fixed order)",
             "ours_recipe": "ours, batch 20, momentum 0.5, reshuffled every epoch"}

    def cell(side: str, key: str, fmt: str) -> str:
        return mean_with_ci(summary[side][key], fmt)

    rows = []
    for side, name in names.items():
        entry = summary[side]
        speed = ", ".join(f"{v:.2f}" for v in entry.get("speedup_per_seed", [])) or "-"
        diff = entry.get("pl_minus_sklearn_ci")
        rows.append([name, cell(side, "train_s", ".3f"), speed, cell(side, "pseudo_log_likelihood", ".2f"),
                     f"[{diff[0]:.2f}, {diff[1]:.2f}]" if diff else "-", cell(side, "log_likelihood", ".2f")])
    return [title, "", ran(result), "",
            (f"{result['hidden']} hidden units, learning rate {result['lr']}, {result['epochs']} epochs on 80% of the "
             f"images, seeds {', '.join(map(str, seeds))}, one thread; each side's clock is the median of its "
             "interleaved trainings. Both are scored by the same code on the other 20%: the pseudo-log-likelihood "
             "per image (mean over every unit) and the AIS log-likelihood (100 chains, 2,000 distributions). "
             "Cells: mean [95% t interval over seeds]."), "",
            table(["side", "training s", "scikit-learn's s / ours, per seed", "test pseudo-log-likelihood",
                   "minus scikit-learn's, paired 95% CI", "test log-likelihood (AIS)"], rows), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    output = parser.parse_args().output
    parts = ["# Benchmarks", "",
             ("Generated by `python bench/report.py` from `bench/results/*.json`; each section names the command "
             "that produced it. `bash bench/run_all.sh` reruns everything (about nine hours on "
             "2 cores; `bench/gpu.py` runs on its own, on a GPU). "
             "These are benchmarks, not tests: they take minutes to hours and their numbers depend on the machine."),
             "", "## Deep RL on CartPole-v1", "",
             ("Time to solve = until the mean return of the last 20 training episodes reaches 475, judged at every "
             "episode end from an env wrapper that records each episode, the same way for every algorithm (not "
             "from RLlib's `episode_return_mean`, which is a per-iteration mean; the per-seed tables show where "
             "it would have declared CartPole solved). Every run is one process with one torch thread, sampling "
             "with 8 vectorised envs in the local EnvRunner; `bench/rl.py`'s docstring lists the matched "
             "hyperparameters."), "",
             *rl_section("rl_dqn", "ours_dqn", "rllib_dqn", "Our DQN vs RLlib's built-in DQN (matched settings)"),
             *rl_section("rl_a2c", "ours_a2c", "rllib_ppo", "Our A2C vs RLlib's PPO (its tuned CartPole settings)"),
             *cleanrl_section(), *rl_defaults_section(),
             *cleanrl_section("vs_cleanrl_n_step_3", "### Round 1's DQN choice against CleanRL, before it was rejected",
                              why=("Round 1 chose 3-step returns with epsilon decayed over 5k env steps, and the "
                                   "defaults took them (commit `bd9bf51`); this is `bench/vs_cleanrl.py` on seeds 0-4 "
                                   "with them. A seed that never reaches the threshold here, and the seeds of round 2 "
                                   "that never held, sent the defaults back to 1-step returns and 10k env steps of "
                                   "decay, where the comparison above was measured.")),
             *scaling_section(), *diffusion_section(), *gan_vs_ddpm_section(), *rbm_section(),
             *stability_section(),
             *overhead_section(),
             *asha_section(), *race_section(),
             *memory_section(), *tpe_section(), *pbt_section(), *gpu_section(), *speedups_section(),
             *tracking_load_section(), *many_trials_section()]
    output.write_text("\n".join(parts).rstrip() + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
