"""Search-space loading and validation: every bad input is a one-line SweepError naming the problem."""

import textwrap

import pytest
from ray import tune

from orchestration.errors import SweepError
from orchestration.search_space import load_sweep


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_default_diffusion_sweep_is_valid():
    spec = load_sweep("diffusion")
    assert spec.family.name == "diffusion"
    assert (spec.metric, spec.mode, spec.method) == ("eval/fid", "min", "grid")
    assert spec.swept_keys == ["schedule", "seed"] and spec.seeds == 3
    assert set(spec.parameters["schedule"]["values"]) >= {"linear", "cosine", "sigmoid"}
    assert len(spec.configurations()) == 3
    space = spec.param_space()
    assert space["schedule"] == tune.grid_search(["linear", "cosine", "sigmoid"])
    assert space["lr"] == 0.001


def test_distributions_map_to_tune(tmp_path):
    spec = load_sweep(write(tmp_path, """
        family: diffusion
        method: random
        num_samples: 3
        parameters:
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
          ema_decay: {distribution: uniform, min: 0.9, max: 0.99}
          timesteps: {distribution: int_uniform, min: 10, max: 100}
          schedule: {values: [linear, cosine]}
    """))
    space = spec.param_space()
    assert isinstance(space["lr"], tune.search.sample.Float)
    assert isinstance(space["timesteps"], tune.search.sample.Integer)
    assert isinstance(space["schedule"], tune.search.sample.Categorical)  # random method: choice, not grid
    assert spec.num_samples == 3 and spec.budget() == 8


BAD_SPACES = {
    "malformed YAML": ("family: diffusion\nparameters: {lr: [1, 2\n", "malformed YAML"),
    "unknown parameter": ("family: diffusion\nparameters:\n  learning_rate: {value: 0.1}\n",
                          "parameters.learning_rate: unknown parameter for diffusion"),
    "T < 1": ("family: diffusion\nparameters:\n  timesteps: {values: [100, 0]}\n",
              "parameters.timesteps.values[1]: must be >= 1, got 0"),
    "negative lr": ("family: diffusion\nparameters:\n  lr: {value: -0.001}\n",
                    "parameters.lr.value: must be > 0"),
    "unknown schedule": ("family: diffusion\nparameters:\n  schedule: {values: [linear, exponential]}\n",
                         "must be one of linear, cosine, sigmoid, quadratic; got 'exponential'"),
    "unknown family": ("family: vae\n",
                       "family: unknown family 'vae'; available: contrastive, diffusion, gan, hopfield, rbm, rl"),
    "unknown top-level key": ("family: diffusion\nparams: {}\n", "unknown key(s) params"),
    "unknown metric": ("family: diffusion\nmetric: {name: eval/is, goal: maximize}\n", "metric.name"),
    "bad goal": ("family: diffusion\nmetric: {name: eval/fid, goal: lowest}\n", "must be minimize or maximize"),
    "bad method": ("family: diffusion\nmethod: hyperopt\n", "method: must be one of grid, random, bayes"),
    "pbt mutates a fixed parameter": ("family: diffusion\nscheduler: {type: pbt, mutations: [schedule]}\nparameters:\n"
                                      "  schedule: {values: [linear, cosine]}\n",
                                      "scheduler.mutations: schedule cannot change during training (diffusion can "
                                      "change: lr, ema_decay, grad_clip)"),
    "pbt mutates a constant": ("family: diffusion\nscheduler: {type: pbt, mutations: [lr]}\n",
                               "scheduler.mutations: lr needs 'values' or a 'distribution'"),
    "pbt with seeds": ("family: diffusion\nseeds: 2\nscheduler: {type: pbt, mutations: [lr]}\nparameters:\n"
                       "  lr: {values: [0.001, 0.002]}\n", "pbt: its trials exchange weights"),
    "pbt bad fraction": ("family: diffusion\nscheduler: {type: pbt, mutations: [lr], quantile_fraction: 0.7}\n"
                         "parameters:\n  lr: {values: [0.001, 0.002]}\n", "quantile_fraction: must be in (0, 0.5]"),
    "bayes with nothing to search": ("family: diffusion\nmethod: bayes\nparameters:\n  lr: {value: 0.1}\n",
                                     "method bayes needs at least one parameter with 'values' or a 'distribution'"),
    "bayes with seeds": ("family: diffusion\nmethod: bayes\nseeds: 3\nparameters:\n  lr: {values: [0.1, 0.2]}\n",
                         "seeds: method bayes chooses each trial from the results so far"),
    "bayes with list values": ("family: diffusion\nmethod: bayes\nparameters:\n"
                               "  channel_mults: {values: [[1, 2], [1, 2, 2]]}\n",
                               "parameters.channel_mults.values[0]: method bayes takes numbers, strings or booleans"),
    "bad scheduler": ("family: diffusion\nscheduler: {type: hyperband}\n", "scheduler.type: must be one of"),
    "bad asha key": ("family: diffusion\nscheduler: {type: asha, max_iters: 3}\n", "unknown key(s) max_iters"),
    "log_uniform from 0": ("family: diffusion\nparameters:\n  lr: {distribution: log_uniform, min: 0, max: 1}\n",
                           "parameters.lr.min: must be > 0"),
    "min above max": ("family: diffusion\nparameters:\n  lr: {distribution: uniform, min: 0.1, max: 0.01}\n",
                      "min must be below max"),
    "bare value": ("family: diffusion\nparameters:\n  lr: 0.1\n", "must be a mapping with 'value'"),
    "two kinds": ("family: diffusion\nparameters:\n  lr: {value: 0.1, values: [0.1]}\n", "exactly one of"),
    "wrong type": ("family: diffusion\nparameters:\n  timesteps: {value: 10.5}\n", "must be an integer"),
    "ema decay 1": ("family: diffusion\nparameters:\n  ema_decay: {value: 1.0}\n", "must be >= 0.0 and < 1.0"),
    "cross check": ("family: diffusion\nparameters:\n  zero_terminal_snr: {value: true}\n"
                    "  prediction: {values: [v, eps]}\n", "zero_terminal_snr needs prediction v or x0"),
    "not a mapping": ("- family\n- diffusion\n", "must be a YAML mapping"),
    "temperature 0": ("family: contrastive\nparameters:\n  temperature: {values: [0.1, 0]}\n",
                      "parameters.temperature.values[1]: must be > 0, got 0"),
    "negative temperature": ("family: contrastive\nparameters:\n  temperature: {value: -0.5}\n",
                             "must be > 0"),
    "momentum 1": ("family: contrastive\nparameters:\n  momentum: {values: [0.9, 1.0]}\n",
                   "parameters.momentum.values[1]: must be >= 0.0 and < 1.0, got 1.0"),
    "negative momentum": ("family: contrastive\nparameters:\n  momentum: {value: -0.1}\n", "must be >= 0.0"),
    "queue below batch": ("family: contrastive\nparameters:\n  method: {values: [simclr, moco_v1]}\n"
                          "  queue_size: {value: 128}\n  batch_size: {value: 256}\n",
                          "queue_size (128) must be at least batch_size (256) so a batch of keys fits the queue "
                          "(for method=moco_v1)"),
    "bn groups of one": ("family: contrastive\nparameters:\n  method: {value: moco_v2}\n  batch_size: {value: 8}\n"
                         "  bn_groups: {value: 8}\n  queue_size: {value: 64}\n",
                         "batch_size (8) must be a multiple of bn_groups (8) with at least 2 samples per group"),
    "bn groups unequal": ("family: contrastive\nparameters:\n  method: {value: moco_v2}\n  batch_size: {value: 13}\n"
                          "  bn_groups: {value: 4}\n  queue_size: {value: 64}\n",
                          "batch_size (13) must be a multiple of bn_groups (4)"),
    "bn shuffle off": ("family: contrastive\nparameters:\n  method: {value: moco_v1}\n  bn_groups: {values: [1, 4]}\n",
                       "bn_groups 1 would turn MoCo's shuffling BN off"),
    "fid sample counts": ("family: diffusion\nparameters:\n  eval_samples: {values: [300, 500]}\n",
                          "parameters.eval_samples: eval/fid depends on how it is measured (eval_samples), so runs "
                          "measured with different eval_samples cannot be ranked against each other"),
    "fid sample count drawn": ("family: diffusion\nmethod: random\nparameters:\n"
                               "  eval_samples: {distribution: int_uniform, min: 100, max: 500}\n",
                               "give eval_samples one value"),
    "auc over budgets": ("family: rl\nmetric: {name: eval/episode_return_auc, goal: maximize}\nparameters:\n"
                         "  iterations: {values: [5, 10]}\n", "parameters.iterations: eval/episode_return_auc depends "
                         "on how it is measured (iterations)"),
    "unknown env": ("family: rl\nparameters:\n  env: {values: [CartPole-v1, CartPool-v1]}\n",
                    "unknown environment 'CartPool-v1'"),
    "unknown atari env": ("family: rl\nparameters:\n  env: {value: ALE/Pongg-v5}\n",
                          "unknown environment 'ALE/Pongg-v5'"),
    "bad gamma": ("family: rl\nparameters:\n  gamma: {value: 1.5}\n", "must be >= 0.0 and <= 1.0"),
    "unknown algorithm": ("family: rl\nparameters:\n  algorithm: {value: ppo}\n",
                          "must be one of dqn, double_dqn, a2c, reinforce"),
    "pair loss with moco": ("family: contrastive\nparameters:\n  method: {value: moco_v2}\n"
                            "  loss: {value: triplet}\n", "loss triplet only applies to method simclr"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_is_rejected_with_one_line(tmp_path, case):
    text, expected = BAD_SPACES[case]
    with pytest.raises(SweepError) as err:
        load_sweep(write(tmp_path, text))
    message = str(err.value)
    assert expected in message
    assert message.startswith("space.yaml: ") or message.startswith("search space")
    assert "\n" not in message


@pytest.mark.parametrize("name,swept", [("rl", ["algorithm", "lr", "seed"]),
                                        ("atari", ["algorithm", "env", "seed"]),
                                        ("contrastive", ["temperature", "seed"]),
                                        ("momentum", ["momentum", "seed"])])
def test_default_sweeps_are_valid(name, swept):
    """Every default sweep answers its question over at least 3 paired seeds (a race's survivors)."""
    spec = load_sweep(name)
    assert spec.swept_keys == swept and spec.mode == "max" and spec.seeds >= 3


def test_search_spaces_beyond_grid_and_random_are_valid():
    pbt, bayes = load_sweep("pbt_contrastive"), load_sweep("bayes_diffusion")
    assert pbt.scheduler["type"] == "pbt" and pbt.scheduler["mutations"] == ["temperature", "lr"]
    assert bayes.method == "bayes" and bayes.swept_keys == ["lr", "ema_decay", "batch_size"]


def test_unknown_sweep_lists_the_known_ones():
    with pytest.raises(SweepError, match=r"unknown sweep 'difusion'; available: .*diffusion"):
        load_sweep("difusion")


def test_overrides_are_validated(tmp_path):
    spec = load_sweep("diffusion")
    assert spec.with_overrides({"iterations": 2}).budget() == 2
    with pytest.raises(SweepError, match="override timesteps: must be >= 1"):
        spec.with_overrides({"timesteps": 0})
    with pytest.raises(SweepError, match="unknown parameter 'iters'"):
        spec.with_overrides({"iters": 2})


def expand(spec, seed=None) -> list[dict]:
    """The trial configs Tune's search algorithm of this sweep yields, in order."""
    from ray.tune.experiment import Experiment
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from orchestration.tuning import build_search_alg

    search = build_search_alg(spec, seed) or BasicVariantGenerator()
    search.add_configurations([Experiment("order", run=lambda config: None, config=spec.param_space(),
                                          num_samples=spec.num_samples)])
    configs = []
    while (trial := search.next_trial()) is not None:
        configs.append({k: trial.config[k] for k in spec.swept_keys})
    return configs


def test_asha_starts_grid_trials_in_a_shuffled_but_complete_order(tmp_path):
    """Async successive halving promotes the first trials at each rung against little competition:
    they must not all share one schedule, as they do in Tune's nested-loop grid order."""
    text = """
        family: diffusion
        num_samples: 2
        {scheduler}
        parameters:
          lr: {{values: [0.0001, 0.0003, 0.001, 0.003]}}
          schedule: {{values: [linear, cosine, sigmoid]}}
    """
    fifo = expand(load_sweep(write(tmp_path, text.format(scheduler=""), "fifo.yaml")))
    asha_space = write(tmp_path, text.format(scheduler="scheduler: {type: asha}"), "asha.yaml")
    asha = expand(load_sweep(asha_space))
    key = lambda c: (c["lr"], c["schedule"])  # noqa: E731
    assert sorted(asha, key=key) == sorted(fifo, key=key) and len(asha) == 24  # every combination, twice
    assert [c["schedule"] for c in fifo[:4]] == ["linear"] * 4  # Tune's order: every lr with the first schedule
    assert len({c["schedule"] for c in asha[:4]}) > 1
    assert asha == expand(load_sweep(asha_space)), "the order is seeded"


def test_seeds_replicate_every_configuration_paired_across_seeds(tmp_path):
    """`seeds: 3` runs each configuration with seeds 0-2, seed by seed; with random search the three
    replicates of a configuration share its drawn values (paired), and a seed offset shifts the seeds."""
    grid = load_sweep(write(tmp_path, """
        family: diffusion
        seeds: 3
        parameters:
          schedule: {values: [linear, cosine]}
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
    """, "grid.yaml"))
    assert grid.swept_keys == ["schedule", "lr", "seed"] and grid.config_keys == ["schedule", "lr"]
    trials = expand(grid)
    assert [t["seed"] for t in trials] == [0, 0, 1, 1, 2, 2]
    for schedule in ("linear", "cosine"):
        assert len({t["lr"] for t in trials if t["schedule"] == schedule}) == 1, "one lr per configuration"
    random = load_sweep(write(tmp_path, """
        family: diffusion
        method: random
        num_samples: 4
        seeds: 2
        parameters:
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
          timesteps: {distribution: int_uniform, min: 10, max: 100}
    """, "random.yaml"))
    trials = expand(random)
    assert len(trials) == 8 and len({(t["lr"], t["timesteps"]) for t in trials}) == 4
    assert {t["seed"] for t in trials} == {0, 1} and all(1e-4 <= t["lr"] <= 1e-2 for t in trials)
    shifted = expand(random.with_seeds(None, 10))
    assert {t["seed"] for t in shifted} == {10, 11}
    assert [(t["lr"], t["timesteps"]) for t in shifted] == [(t["lr"], t["timesteps"]) for t in trials]


def test_seeds_replace_a_seed_parameter_from_the_command_line(tmp_path):
    spec = load_sweep(write(tmp_path, "family: diffusion\nparameters:\n  schedule: {values: [linear, cosine]}\n"
                                      "  seed: {value: 3}\n")).with_seeds(2, 5)
    assert spec.seeds == 2 and spec.seed_values() == [5, 6] and "seed" not in spec.parameters
    with pytest.raises(SweepError, match="use --seed-offset"):
        spec.with_overrides({"seed": 1})


SEED_ERRORS = {
    "seeds 0": ("family: diffusion\nseeds: 0\n", "seeds: must be an integer >= 1, got 0"),
    "seeds and seed": ("family: diffusion\nseeds: 2\nparameters:\n  seed: {values: [0, 1]}\n",
                       "parameters.seed: drop it; `seeds: 2` runs every configuration with seeds 0..1"),
    "grid repeats": ("family: diffusion\nseeds: 2\nnum_samples: 2\n", "num_samples: with seeds, a grid's"),
}


@pytest.mark.parametrize("case", sorted(SEED_ERRORS))
def test_bad_seeds_are_rejected_with_one_line(tmp_path, case):
    text, expected = SEED_ERRORS[case]
    with pytest.raises(SweepError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_sweep(write(tmp_path, text))


def alias_bomb(levels: int) -> str:
    """`description:` holding `levels` nested levels of ten aliases each, used as a parameter's values."""
    lines = ["family: diffusion", "description:", '  - &a0 [' + ",".join(['"lol"'] * 10) + "]"]
    lines += [f"  - &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines + ["parameters:", f"  schedule: {{values: *a{levels}}}", ""])


def test_an_alias_bomb_is_rejected_quickly_in_one_short_line(tmp_path):
    import time

    start = time.perf_counter()
    with pytest.raises(SweepError) as err:
        load_sweep(write(tmp_path, alias_bomb(8)))
    assert time.perf_counter() - start < 5
    assert "expands to more than 100,000 values" in str(err.value) and len(str(err.value)) < 500


def test_a_long_bad_value_is_quoted_short(tmp_path):
    text = "family: diffusion\nparameters:\n  schedule: {values: [[" + ",".join(["lol"] * 5000) + "]]}\n"
    with pytest.raises(SweepError, match=r"must be one of linear.*got \['lol', .*\.\.\.\]") as err:
        load_sweep(write(tmp_path, text))
    assert len(str(err.value)) < 500
    with pytest.raises(SweepError, match="description: must be a string"):
        load_sweep(write(tmp_path, "family: diffusion\ndescription: [1, 2]\n"))


def test_bayes_maps_to_a_seeded_tpe_searcher(tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    from orchestration.search.bayes import startup_trials  # moved with the bayes method into its plug-in
    from orchestration.tuning import build_search_alg

    spec = load_sweep(write(tmp_path, """
        family: diffusion
        method: bayes
        num_samples: 20
        scheduler: {type: asha, max_t: 4}
        parameters:
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
          batch_size: {distribution: int_uniform, min: 16, max: 128}
          schedule: {values: [linear, cosine]}
    """))
    space = spec.param_space()
    assert space["schedule"].categories == ["linear", "cosine"], "categories, not a grid"
    searcher = build_search_alg(spec, seed=3)
    assert isinstance(searcher, OptunaSearch)
    assert searcher._sampler._n_startup_trials == startup_trials(20) == 4
    assert [startup_trials(n) for n in (4, 20, 100)] == [2, 4, 10]
    with pytest.raises(SweepError, match="method bayes chooses each trial"):
        spec.with_seeds(3, None)


def test_pbt_perturbations_stay_inside_the_declared_range(tmp_path):
    from orchestration.tuning import build_scheduler

    spec = load_sweep(write(tmp_path, """
        family: contrastive
        method: random
        num_samples: 4
        scheduler: {type: pbt, perturbation_interval: 2, mutations: [temperature, momentum, lr],
                    perturbation_factors: [1.5, 0.5]}
        parameters:
          method: {value: moco_v2}
          temperature: {distribution: log_uniform, min: 0.05, max: 1.0}
          momentum: {distribution: uniform, min: 0.9, max: 0.999}
          lr: {values: [0.001, 0.002, 0.004]}
    """))
    pbt = build_scheduler(spec)
    assert pbt._perturbation_interval == 2 and pbt._synch and set(pbt._hyperparam_mutations) == {
        "temperature", "momentum", "lr"}
    assert pbt._hyperparam_mutations["lr"] == [0.001, 0.002, 0.004]
    clipped = pbt._custom_explore_fn({"temperature": 1.5, "momentum": 0.999 * 1.5, "lr": 0.004})
    assert clipped == {"temperature": 1.0, "momentum": 0.999, "lr": 0.004}
    with pytest.raises(SweepError, match="override temperature: PBT mutates it"):
        spec.with_overrides({"temperature": 0.1})


def test_search_seed_repeats_random_draws_and_only_then(tmp_path):
    from orchestration.tuning import build_search_alg

    spec = load_sweep(write(tmp_path, """
        family: diffusion
        method: random
        num_samples: 5
        parameters:
          lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
    """))

    def draws(seed):
        return [config["lr"] for config in expand(spec, seed)]

    assert build_search_alg(spec, None) is None, "unseeded: Tune's own generator, as before"
    assert build_search_alg(spec, 1, max_concurrent=3).max_concurrent == 3, "Tune would ignore --max-concurrent"
    assert draws(1) == draws(1) and draws(1) != draws(2)
    assert all(1e-4 <= lr <= 1e-2 for lr in draws(1))


def test_fid_sample_count_may_vary_when_fid_is_not_the_metric_and_is_checked_after_overrides(tmp_path):
    path = write(tmp_path, "family: diffusion\nmetric: {name: train/loss, goal: minimize}\nparameters:\n"
                           "  eval_samples: {values: [300, 500]}\n")
    assert len(load_sweep(path).configurations()) == 2
    spec = load_sweep(write(tmp_path, "family: diffusion\nparameters:\n  eval_samples: {values: [300]}\n"))
    assert spec.with_overrides({"eval_samples": 64}).parameters["eval_samples"] == {"value": 64}


def test_a_new_method_is_one_plug_in_and_one_registration(tmp_path, monkeypatch):
    """search_space.py knows no method by name: one registered in `orchestration.search.METHODS` is
    validated, refused with seeds where it says so, and expanded into Tune's trials like the others."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from orchestration import search
    from orchestration.search.base import Method

    class EveryOther(Method):
        name = "every_other"
        crosses_values = True
        seeds_refusal = "every_other thins its grid, so it takes no replicates"

        def check(self, parameters, where):
            if "lr" not in parameters:
                raise SweepError(f"{where}: method every_other needs lr")

        def search_alg(self, spec, seed, max_concurrent, shuffle):
            return BasicVariantGenerator(points_to_evaluate=spec.grid_points()[::2])

    monkeypatch.setitem(search.METHODS, "every_other", EveryOther())
    spec = load_sweep(write(tmp_path, "family: diffusion\nmethod: every_other\nparameters:\n"
                                      "  lr: {values: [0.001, 0.002, 0.003, 0.004]}\n"))
    assert [c["lr"] for c in expand(spec)[:2]] == [0.001, 0.003]
    with pytest.raises(SweepError, match="method every_other needs lr"):
        load_sweep(write(tmp_path, "family: diffusion\nmethod: every_other\n"))
    with pytest.raises(SweepError, match="every_other thins its grid"):
        load_sweep(write(tmp_path, "family: diffusion\nmethod: every_other\nseeds: 2\nparameters:\n"
                                   "  lr: {values: [0.001]}\n"))
    with pytest.raises(SweepError, match="method: must be one of grid, random, bayes, every_other"):
        load_sweep(write(tmp_path, "family: diffusion\nmethod: [grid]\n"))


RACE_ERRORS = {
    "not a mapping": ("race: 3\n", "race: must be a mapping with first_seeds, max_seeds, alpha"),
    "unknown key": ("race: {rounds: 3}\n", "race: unknown key(s) rounds"),
    "one first seed": ("race: {first_seeds: 1}\n", "race.first_seeds: must be an integer >= 2"),
    "max below first": ("race: {first_seeds: 4, max_seeds: 3}\n", "max_seeds (3) must be at least first_seeds (4)"),
    "alpha": ("race: {alpha: 0.7}\n", "race.alpha: must be a number in (0, 0.5), got 0.7"),
    "with seeds": ("race: {}\nseeds: 3\n", "race: drop `seeds`"),
    "bayes": ("race: {}\nmethod: bayes\nnum_samples: 4\nparameters:\n  lr: {values: [0.001, 0.01]}\n",
              "race: method bayes picks each trial from the results so far"),
    "asha": ("race: {}\nscheduler: asha\n", "race: scheduler asha stops or changes trials mid-way"),
    "seed parameter": ("race: {}\nparameters:\n  seed: {values: [1, 2]}\n", "race: drop parameters.seed"),
}


@pytest.mark.parametrize("case", sorted(RACE_ERRORS))
def test_a_bad_race_is_refused_in_one_line(tmp_path, case):
    text, expected = RACE_ERRORS[case]
    with pytest.raises(SweepError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        load_sweep(write(tmp_path, "family: diffusion\n" + text))
    assert "\n" not in str(err.value)


def test_a_race_takes_other_seeds_but_not_more_from_the_command_line(tmp_path):
    spec = load_sweep(write(tmp_path, "family: diffusion\nrace: {first_seeds: 2, max_seeds: 5}\nparameters:\n"
                                      "  schedule: {values: [linear, cosine]}\n"))
    assert spec.race == {"first_seeds": 2, "max_seeds": 5, "alpha": 0.05} and spec.seed_values() == [0, 1, 2, 3, 4]
    assert spec.with_seeds(None, 10).seed_values() == [10, 11, 12, 13, 14]
    with pytest.raises(SweepError, match="races up to race.max_seeds"):
        spec.with_seeds(3, None)


def test_the_race_searcher_hands_out_seeds_only_to_survivors_and_keeps_slots_busy(tmp_path):
    """Driven by hand as Tune drives it: suggest while a slot is free, then complete trials."""
    from ray.tune.search import Searcher

    from orchestration.search import EXTENSIONS

    spec = load_sweep(write(tmp_path, "family: diffusion\nmetric: {name: train/loss, goal: minimize}\n"
                                      "race: {first_seeds: 2, max_seeds: 3}\nparameters:\n"
                                      "  schedule: {values: [linear, cosine, sigmoid]}\n"))
    searcher = EXTENSIONS["race"].searcher(spec, slots=2)
    loss = {"linear": 1.0, "cosine": 0.1, "sigmoid": 0.1}
    noise = {("cosine", 0): 0.01, ("sigmoid", 1): 0.01, ("linear", 2): 0.02, ("cosine", 2): 0.015}
    given = [searcher.suggest(f"t{i}") for i in range(3)]
    assert given[2] is None, "two slots: a third trial waits"
    assert [(g["schedule"], g["seed"]) for g in given[:2]] == [("cosine", 0), ("linear", 0)]
    trials = {f"t{i}": g for i, g in enumerate(given[:2])}
    for i in range(2, 40):
        done = next(iter(trials))
        config = trials.pop(done)
        key = (config["schedule"], config["seed"])
        searcher.on_trial_complete(done, {"train/loss": loss[key[0]] + 0.1 * key[1] + noise.get(key, 0.0)})
        for j in range(2):
            nxt = searcher.suggest(f"t{i}-{j}")
            if nxt == Searcher.FINISHED:
                break
            if nxt is not None:
                trials[f"t{i}-{j}"] = nxt
        if not trials:
            break
    race = searcher.race
    assert race.decided and race.eliminated == {searcher_id(searcher, "linear"): (1, "behind the best")}
    ran = {(s, seed) for (c, seed) in searcher.started for s in [searcher.candidates[c]["schedule"]]}
    assert {("cosine", 2), ("sigmoid", 2)} <= ran and ("linear", 1) in ran
    # linear might have had its third seed started while round 1 was still open, never more
    assert all(seed <= 2 for _, seed in ran)
    restored = EXTENSIONS["race"].searcher(spec, slots=2)
    path = tmp_path / "state.pkl"
    searcher.save(str(path))
    restored.restore(str(path))
    assert restored.race.eliminated == race.eliminated and restored.suggest("again") == Searcher.FINISHED
    # a last result without the metric (it is evaluated every few iterations) scores the latest value, as MLflow does
    fresh = EXTENSIONS["race"].searcher(spec, slots=1)
    config = fresh.suggest("a")
    fresh.on_trial_result("a", {"train/loss": 0.5, "training_iteration": 1})
    fresh.on_trial_complete("a", {"training_iteration": 2})
    assert fresh.scores[searcher_id(fresh, config["schedule"])] == {0: 0.5}


def searcher_id(searcher, schedule: str) -> str:
    return next(c for c, config in searcher.candidates.items() if config["schedule"] == schedule)
