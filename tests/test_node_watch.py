"""NodeWatch says which node was lost and where its trials went, whichever Ray reports first: the node's
death in its node table, or the trial's first result from another node. (The cluster test in
test_multinode.py checks the same lines from a real lost node.)"""

from orchestration.node_watch import NodeWatch


class Trial:
    def __init__(self, trial_id: str, name: str):
        self.trial_id, self.name = trial_id, name

    def __str__(self) -> str:
        return self.name


def watch_over(table: list[dict]):
    lines = []
    clock = iter(range(0, 10_000, 10))
    watch = NodeWatch(poll_s=1, nodes=lambda: table, clock=lambda: next(clock),
                      out=lambda line, **_: lines.append(line))
    return watch, lines


def node(node_id: str, alive: bool = True) -> dict:
    return {"NodeID": node_id, "NodeManagerAddress": "10.0.0.5", "Alive": alive}


def result(node_id: str, iteration: int) -> dict:
    return {"node_id": node_id, "training_iteration": iteration}


def test_a_lost_node_is_named_with_its_trials_and_where_they_went():
    table = [node("a" * 16), node("b" * 16)]
    watch, lines = watch_over(table)
    linear, cosine = Trial("t1", "schedule=linear"), Trial("t2", "schedule=cosine")
    watch.on_step_begin(0, [linear, cosine])
    watch.on_trial_result(0, [], linear, result("a" * 16, 1))
    watch.on_trial_result(0, [], cosine, result("b" * 16, 1))
    watch.on_trial_result(0, [], cosine, result("b" * 16, 2))
    table[1] = node("b" * 16, alive=False)
    watch.on_step_begin(1, [linear, cosine])
    assert lines == ["[cluster] lost node 10.0.0.5 (bbbbbbbb); its trials: schedule=cosine; they continue from "
                     "their last checkpoints on the remaining nodes (--max-failures)"]
    watch.on_trial_result(1, [], cosine, result("a" * 16, 3))
    assert lines[1] == ("[cluster] trial schedule=cosine moved from lost node 10.0.0.5 (bbbbbbbb) to 10.0.0.5 "
                        "(aaaaaaaa), continuing from its checkpoint at iteration 2")
    watch.on_step_begin(2, [linear, cosine])
    assert len(lines) == 2  # said once


def test_a_trial_that_moves_before_ray_declares_its_node_dead_is_told_with_the_loss():
    table = [node("a" * 16), node("b" * 16)]
    watch, lines = watch_over(table)
    cosine = Trial("t2", "schedule=cosine")
    watch.on_step_begin(0, [cosine])
    watch.on_trial_result(0, [], cosine, result("b" * 16, 1))
    watch.on_trial_result(0, [], cosine, result("a" * 16, 2))
    assert lines == []  # a move alone is no loss
    table[1] = node("b" * 16, alive=False)
    watch.on_step_begin(1, [cosine])
    assert [line.split(";")[0] for line in lines] == ["[cluster] lost node 10.0.0.5 (bbbbbbbb)",
                                                      "[cluster] trial schedule=cosine moved from lost node 10.0.0.5 "
                                                      "(bbbbbbbb) to 10.0.0.5 (aaaaaaaa), continuing from its "
                                                      "checkpoint at iteration 1"]
    assert "its trials: schedule=cosine;" in lines[0]


def test_no_line_while_every_node_lives():
    table = [node("a" * 16)]
    watch, lines = watch_over(table)
    trial = Trial("t1", "x")
    for step in range(5):
        watch.on_step_begin(step, [trial])
        watch.on_trial_result(step, [], trial, result("a" * 16, step + 1))
    assert lines == []


def test_it_pickles_with_the_experiment_even_once_print_is_replaced(monkeypatch):
    """Tune pickles its callbacks with the experiment; by then print may be another object (Ray's output
    handling replaces it), and a callback that kept a reference to the builtin could not be saved."""
    import builtins
    import pickle

    watch = NodeWatch()
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: None)
    restored = pickle.loads(pickle.dumps(watch))
    assert restored.poll_s == watch.poll_s
