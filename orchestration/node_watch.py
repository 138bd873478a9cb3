"""On a cluster, say which node was lost and where its trials went.

Tune retries a trial whose node died (with --max-failures) from its last checkpoint, but only says that a
trial errored, with an actor-died trace. The watch below polls Ray's node table from the driver, prints a
line when a node that ran trials is gone, with those trials, and a line per trial when it reports again from
another node: which node, and the checkpoint iteration it continued from. Nodes share an IP when several run
on one machine, so trials are placed by node id (each result carries it, see trainable.py)."""

from __future__ import annotations

import time

from ray.tune import Callback

NODE_KEY = "node_id"  # the trial's node, in every result


def describe(node: dict) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


class NodeWatch(Callback):
    def __init__(self, poll_s: float = 2.0, nodes=None, clock=None, out=None):
        """`nodes`: Ray's node table (default ray.nodes); `clock`: seconds (default time.monotonic); `out`: where
        the lines go (default print). The defaults are looked up when used: Tune pickles its callbacks with
        the experiment, and builtins such as print may be replaced by then."""
        self.poll_s, self._nodes, self._clock, self._out = poll_s, nodes, clock, out
        self.alive: dict[str, dict] = {}  # node id -> Ray's record, as of the last poll
        self.lost: dict[str, str] = {}  # node id -> description, of nodes gone during this sweep
        self.trial_node: dict[str, str] = {}  # trial id -> node id of its last result
        self.pending: dict[str, list[tuple]] = {}  # node id -> moves off it before Ray declared it dead
        self.last_poll = -float("inf")
        self.events: list[str] = []  # every line said

    def nodes(self) -> list[dict]:
        if self._nodes is not None:
            return self._nodes()
        import ray

        return ray.nodes()

    def clock(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    def out(self, line: str) -> None:
        (self._out or print)(line, flush=True)

    def _say(self, line: str) -> None:
        self.events.append(line)
        self.out(f"[cluster] {line}")

    def _say_move(self, trial: str, lost: str, where: str, resumed_from: int) -> None:
        self._say(f"trial {trial} moved from lost node {lost} to {where}, continuing from its checkpoint at "
                  f"iteration {resumed_from}")

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        now = self.clock()
        if now - self.last_poll < self.poll_s:
            return
        self.last_poll = now
        table = {n["NodeID"]: n for n in self.nodes()}
        for node_id, record in list(self.alive.items()):
            if node_id in self.lost or table.get(node_id, {}).get("Alive", False):
                continue
            self.lost[node_id] = describe(record)
            moved = self.pending.pop(node_id, [])
            names = [str(t) for t in trials if self.trial_node.get(t.trial_id) == node_id]
            names += [move[0] for move in moved]
            self._say(f"lost node {self.lost[node_id]}; its trials: {', '.join(names) or 'none'}; "
                      "they continue from their last checkpoints on the remaining nodes (--max-failures)")
            for trial, where, resumed_from in moved:
                self._say_move(trial, self.lost[node_id], where, resumed_from)
        self.alive = {node_id: n for node_id, n in table.items() if n.get("Alive")}

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        node = result.get(NODE_KEY)
        previous = self.trial_node.get(trial.trial_id)
        if node and previous and node != previous:
            move = (str(trial), describe(self.alive[node]) if node in self.alive else node[:8],
                    int(result.get("training_iteration", 1)) - 1)
            if previous in self.lost:
                self._say_move(move[0], self.lost[previous], *move[1:])
            else:  # Ray has not declared its node dead yet (or a scheduler moved it): told if the node is lost
                self.pending.setdefault(previous, []).append(move)
        if node:
            self.trial_node[trial.trial_id] = node
