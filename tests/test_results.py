"""Runs -> configurations -> answer, on hand-made rows: grouping by configuration, intervals over
seeds, the tied-with-best judgement, the single-seed warning, ASHA's stopped trials, the renderers."""

import csv
import io

import pytest

from orchestration.aggregate import t_interval
from orchestration.results import render
from orchestration.results.groups import configurations, single_seed, tied_set
from orchestration.results.rows import RunRow, SweepView
from orchestration.search_space import config_id

VIEW = SweepView(metric="eval/fid", mode="min", swept_keys=["schedule", "lr", "seed"])


def row(schedule, lr, seed, final, outcome="finished", own=None):
    config = {"schedule": schedule, "lr": lr}
    return RunRow(name=f"{schedule},{lr},{seed}", run_id=f"run-{schedule}-{lr}-{seed}", trial_id="",
                  config_id=config_id(config),
                  config=config, seed=seed, final=final, best=final, own_interval=own, iterations=4, budget=4,
                  wall_s=10.0, outcome=outcome, history=[(1, final + 1), (2, final)])


def by_label(configs):
    return {c.label(): c for c in configs}


def test_configurations_group_seeds_with_mean_and_t_interval():
    rows = [row("cosine", "0.001", s, v) for s, v in enumerate([5.0, 6.0, 7.0])]
    rows += [row("linear", "0.001", s, v) for s, v in enumerate([8.0, 9.5, 9.0])]
    configs = configurations(rows, VIEW)
    assert [c.label() for c in configs] == ["schedule=cosine, lr=0.001", "schedule=linear, lr=0.001"]
    best = configs[0]
    assert best.is_best and best.n == 3 and best.mean == pytest.approx(6.0)
    assert (best.interval.low, best.interval.high) == pytest.approx((t_interval([5, 6, 7]).low,
                                                                      t_interval([5, 6, 7]).high))
    assert best.iqm is None, "an IQM needs at least 4 seeds"
    assert best.best_run.seed == 0 and best.best_run.final == 5.0


def test_a_parameter_without_effect_is_tied_and_a_real_difference_is_not():
    seeds = {0: 5.0, 1: 7.5, 2: 6.1}  # large seed-to-seed spread, shared by every configuration
    rows = [row("cosine", "0.001", s, v) for s, v in seeds.items()]
    rows += [row("cosine", "0.002", s, v + (-0.03 if s == 1 else 0.05)) for s, v in seeds.items()]  # no effect
    rows += [row("linear", "0.001", s, v + 1.0 + 0.1 * s) for s, v in seeds.items()]  # worse in every seed
    configs = by_label(configurations(rows, VIEW))
    assert configs["schedule=cosine, lr=0.001"].is_best
    assert configs["schedule=cosine, lr=0.002"].tied is True
    assert configs["schedule=linear, lr=0.001"].tied is False
    assert {c.label() for c in tied_set(list(configs.values()))} == {"schedule=cosine, lr=0.001",
                                                                      "schedule=cosine, lr=0.002"}
    # unpaired, the same numbers could not be told apart: the intervals over seeds overlap
    a, b = configs["schedule=cosine, lr=0.001"].interval, configs["schedule=linear, lr=0.001"].interval
    assert a.high > b.low


def test_one_seed_says_its_ranking_has_no_uncertainty():
    rows = [row("cosine", "0.001", None, 5.0, own=(4.1, 6.0)), row("linear", "0.001", None, 5.2)]
    configs = configurations(rows, VIEW)
    assert single_seed(configs) and all(c.tied is None for c in configs[1:])
    lines = render.answer(configs, VIEW)
    assert "no uncertainty estimate" in lines[2] and "[4.1, 6]" in lines[3]
    assert "(run)" in render.to_text(configs, VIEW), "the run's own evaluation interval is shown"


def test_stopped_and_failed_runs_do_not_count_as_seeds():
    rows = [row("cosine", "0.001", 0, 5.0), row("cosine", "0.001", 1, 6.0),
            row("cosine", "0.001", 2, 1.0, outcome="stopped early"),  # an early value is not comparable
            row("linear", "0.001", 0, 9.0, outcome="stopped early"), row("linear", "0.001", 1, 9.0, outcome="error")]
    configs = configurations(rows, VIEW)
    cosine, linear = configs
    assert cosine.n == 2 and cosine.mean == pytest.approx(5.5)
    assert linear.mean is None and not linear.is_best, "no finished seed: listed last, not ranked"
    header, body = render.table(configs, VIEW)
    assert body[0][header.index("finished")] == "2/3" and body[1][header.index("tied with best")] == "-"


def test_a_configuration_with_too_few_common_seeds_is_not_judged():
    rows = [row("cosine", "0.001", s, 5.0 + s) for s in range(3)] + [row("linear", "0.001", 2, 9.0)]
    configs = configurations(rows, VIEW)
    assert configs[1].tied is None
    assert any("not judged" in line for line in render.answer(configs, VIEW))


def test_renderers_only_format_the_numbers():
    rows = [row("cosine", "0.001", s, 5.0 + s) for s in range(4)] + [row("linear", "0.001", s, 9.0 + s)
                                                                       for s in range(4)]
    configs = configurations(rows, VIEW)
    table = list(csv.DictReader(io.StringIO(render.to_csv(configs, VIEW))))
    assert [r["schedule"] for r in table] == ["cosine", "linear"]
    assert table[0]["seeds"] == "4" and float(table[0]["eval/fid mean"]) == pytest.approx(6.5)
    assert float(table[0]["IQM"]) == pytest.approx(6.5) and table[1]["tied with best"] == "no"
    markdown = render.to_markdown(configs, VIEW)
    assert "best configuration: schedule=cosine, lr=0.001" in markdown and "tied with it" in markdown
    runs = list(csv.DictReader(io.StringIO(render.runs_csv(rows, VIEW))))
    assert len(runs) == 8 and {r["config_id"] for r in runs} == {c.config_id for c in configs}


def sqlite_sweep(tmp_path, runs: list[tuple[dict, float]], swept: str = "schedule,seed", family: str = "diffusion",
                 extra: dict | None = None):
    """A sweep's parent run and one finished child per (params, final eval/fid), in a real MLflow SQLite
    store: the rows come from MLflow through `rows.load_rows`, as the report reads them."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from orchestration.tracking import PARENT_TAG, TRIAL_TAG, TUNE_EXPERIMENT_TAG

    tmp_path.mkdir()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("sweep", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment_id, tags={TUNE_EXPERIMENT_TAG: "sweep"})
    client.log_batch(parent.info.run_id, params=[Param("family", family), Param("metric", "eval/fid"),
                                                 Param("mode", "min"), Param("swept", swept),
                                                 *(Param(k, v) for k, v in (extra or {}).items())])
    for i, (params, final) in enumerate(runs):
        run = client.create_run(experiment_id, tags={PARENT_TAG: parent.info.run_id, TRIAL_TAG: f"t{i}"},
                                run_name=f"run{i}")
        client.log_batch(run.info.run_id, metrics=[Metric("eval/fid", 50.0, 0, 1), Metric("eval/fid", final, 0, 2)],
                         params=[Param(k, str(v)) for k, v in {"iterations": 2, **params}.items()])
        client.set_terminated(run.info.run_id, "FINISHED")
    return client, experiment_id, client.get_run(parent.info.run_id)


def fid_runs(eval_samples: list[int]) -> list[tuple[dict, float]]:
    return [({"schedule": ["cosine", "linear"][i % 2], "seed": i // 2, "eval_samples": n}, 5.0 + i)
            for i, n in enumerate(eval_samples)]


def test_fids_from_different_sample_counts_are_not_ranked_and_the_table_names_the_count(tmp_path):
    from orchestration.errors import SweepError
    from orchestration.results import load_results
    from orchestration.results.rows import load_rows

    client, experiment_id, parent = sqlite_sweep(tmp_path / "mixed", fid_runs([300, 500]))
    with pytest.raises(SweepError, match=r"measured eval/fid with different eval_samples \(300, 500\)"):
        load_rows(client, experiment_id, parent)
    client, experiment_id, parent = sqlite_sweep(tmp_path / "same", fid_runs([500, 500, 500, 500]))
    results = load_results(client, experiment_id, parent)
    assert results.view.metric_label == "eval/fid (eval_samples=500)"
    assert "eval/fid (eval_samples=500) mean" in render.to_text(results.configs, results.view)
    assert "eval/fid (eval_samples=500) 6," in render.answer(results.configs, results.view)[0]


def test_a_diverged_seed_is_a_result_and_keeps_its_configuration_out_of_the_ranking(tmp_path):
    """cosine is best on its two finite seeds, but its third ended on NaN: it is marked diverged, not
    ranked, and linear is the best. Before, the NaN seed was dropped and cosine named best on the others."""
    from orchestration.results import load_results

    finals = {"cosine": [5.0, float("nan"), 6.0], "linear": [7.0, 8.0, 9.0]}
    runs = [({"schedule": name, "seed": seed}, value) for name, values in finals.items()
            for seed, value in enumerate(values)]
    client, experiment_id, parent = sqlite_sweep(tmp_path / "nan", runs)
    results = load_results(client, experiment_id, parent)
    cosine = next(c for c in results.configs if c.config["schedule"] == "cosine")
    assert results.best.config["schedule"] == "linear" and not cosine.is_best
    assert cosine.diverged_seeds == [1] and cosine.mean is None
    header, body = render.table(results.configs, results.view)
    assert body[-1][header.index("tied with best")] == "diverged"
    assert "diverged (NaN or inf at the end), so not ranked: schedule=cosine on seed 1" in render.answer(
        results.configs, results.view)


def test_the_best_is_chosen_and_compared_on_the_seeds_every_configuration_finished():
    """linear's seed 2 failed. On its own seeds linear (6.0) looks better than cosine (10.0, dragged by
    seed 2); on the seeds both finished cosine is ahead in each (5 < 6), so cosine is best."""
    rows = [row("cosine", "0.001", s, v) for s, v in enumerate([5.0, 5.0, 20.0])]
    rows += [row("linear", "0.001", 0, 6.0), row("linear", "0.001", 1, 6.1),
             row("linear", "0.001", 2, 9.0, outcome="error")]
    configs = configurations(rows, VIEW)
    assert configs[0].config["schedule"] == "cosine" and configs[0].is_best
    assert any("chosen and compared on the seeds every ranked configuration finished: 0, 1" in line
               for line in render.answer(configs, VIEW))


def test_runs_without_a_seed_are_not_replicates(tmp_path):
    """Two runs of one configuration without a seed (num_samples 2) both count; before, both were keyed
    as seed 0 and one hid the other."""
    from orchestration.results import load_results

    runs = [({"schedule": "cosine"}, 5.0), ({"schedule": "cosine"}, 7.0), ({"schedule": "linear"}, 9.0)]
    client, experiment_id, parent = sqlite_sweep(tmp_path / "seedless", runs, swept="schedule")
    results = load_results(client, experiment_id, parent)
    cosine = next(c for c in results.configs if c.config["schedule"] == "cosine")
    assert cosine.n == 2 and cosine.mean == pytest.approx(6.0)
    assert results.configs[1].tied is None, "runs without seeds pair with nothing"



def test_a_raced_sweep_s_table_replays_the_race_so_its_tied_set_is_the_survivors(tmp_path):
    """Recorded as a race left them: linear out after 2 seeds, sigmoid diverged at seed 2, cosine and
    scaled_linear raced on to 4. The table marks who left when, and its tied set is exactly the survivors;
    race.csv has every configuration at every round it was in."""
    import json

    from orchestration.results import load_results
    from orchestration.results import race as race_record

    fid = {"cosine": [5.0, 6.0, 5.5, 6.2], "scaled_linear": [5.2, 6.1, 5.4, 6.4], "linear": [9.0, 10.2],
           "sigmoid": [5.1, 6.0, float("nan")]}
    runs = [({"schedule": name, "seed": seed}, value) for name, values in fid.items()
            for seed, value in enumerate(values)]
    race = {"first_seeds": 2, "max_seeds": 4, "alpha": 0.05, "seeds": [0, 1, 2, 3]}
    client, experiment_id, parent = sqlite_sweep(tmp_path / "race", runs, extra={"race": json.dumps(race)})
    results = load_results(client, experiment_id, parent)
    cells = {c.config["schedule"]: render._tied_cell(c) for c in results.configs}
    assert cells == {"cosine": "best", "scaled_linear": "yes", "linear": "no (out in round 1)",
                     "sigmoid": "diverged"}, cells
    assert {c.config["schedule"] for c in tied_set(results.configs)} == {"cosine", "scaled_linear"}
    outs = {c.config["schedule"]: c.out for c in results.configs if c.out}
    assert outs == {"linear": (1, "behind the best"), "sigmoid": (2, "diverged at seed 2")}
    rows = race_record.race_rows(results.configs, results.view)
    assert [(r[0], r[2].split("=")[1]) for r in rows] == [
        ("1", "cosine"), ("1", "sigmoid"), ("1", "scaled_linear"), ("1", "linear"),
        ("2", "cosine"), ("2", "scaled_linear"), ("2", "sigmoid"), ("3", "cosine"), ("3", "scaled_linear")]
    assert float(rows[-1][4]) == pytest.approx(5.775) and float(rows[-2][4]) == pytest.approx(sum(fid["cosine"]) / 4)
    assert any("raced: 2 of 4 configurations left with 4 seeds each" in line
               for line in render.answer(results.configs, results.view))


def test_the_rows_page_through_every_run_of_a_sweep(tmp_path, monkeypatch):
    """A store answers one search with at most so many runs (MLflow's server caps max_results): with a cap
    of 3, all 8 runs of a sweep are still read, page by page, and the table is the one read in one go.
    Before, one search of max_results=10,000 read 3 runs here (and 10,000 of a 12,000-run sweep)."""
    from orchestration.results import load_results

    runs = [({"schedule": ["cosine", "linear"][i % 2], "seed": i // 2}, 5.0 + i) for i in range(8)]
    client, experiment_id, parent = sqlite_sweep(tmp_path / "paged", runs)
    whole = load_results(client, experiment_id, parent)
    search = client.search_runs

    def capped(experiment_ids, filter_string="", max_results=1000, page_token=None, **kwargs):
        return search(experiment_ids, filter_string=filter_string, max_results=min(max_results, 3),
                      page_token=page_token, **kwargs)

    monkeypatch.setattr(client, "search_runs", capped)
    paged = load_results(client, experiment_id, parent)
    assert len(paged.rows) == 8 and [c.n for c in paged.configs] == [4, 4]
    assert render.to_csv(paged.configs, paged.view) == render.to_csv(whole.configs, whole.view)
