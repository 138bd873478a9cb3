#!/usr/bin/env bash
# Every benchmark, one after another (they must not share the CPUs), then BENCHMARKS.md.
# About nine hours on 2 cores (bench/gpu.py runs only where there is a GPU). Needs the project installed plus diffusers: pip install -e ".[bench]"
set -euo pipefail
cd "$(dirname "$0")/.."
python bench/rl.py
# CleanRL from $CLEANRL_DIR when set, else cloned into ~/.cache/rl-sweeps-bench (needs github.com)
python bench/vs_cleanrl.py ${CLEANRL_DIR:+--cleanrl "$CLEANRL_DIR"}
# the held-out env, which neither side's defaults were tuned on (3 seeds, about 30 minutes)
python bench/vs_cleanrl.py ${CLEANRL_DIR:+--cleanrl "$CLEANRL_DIR"} --envs MountainCar-v0 --no-matched --seeds 0 1 2
# candidate RL defaults on seeds the comparison never uses, round by round (about 65 minutes in all)
python bench/rl_defaults.py --algorithm dqn --env CartPole-v1
python bench/rl_defaults.py --algorithm dqn --env Acrobot-v1 --candidates defaults n_step_3 n_step_3_epsilon_5k
python bench/rl_defaults.py --algorithm dqn --env CartPole-v1 --round 2 --seeds 105 106 107 108 109 110 --max-seconds 60 --candidates n_step_3_epsilon_5k envs_8
python bench/rl_defaults.py --algorithm a2c --env CartPole-v1 --max-seconds 60
python bench/rl_defaults.py --algorithm a2c --env CartPole-v1 --round 2 --seeds 105 106 107 108 109 110 --max-seconds 60 --candidates envs_8 defaults
python bench/rl_defaults.py --algorithm dqn --env CartPole-v1 --round 3 --seeds 105 106 107 108 109 110 --max-seconds 60 --candidates envs_8 defaults
python bench/rl_defaults.py --algorithm dqn --env Acrobot-v1 --round 3 --candidates envs_8 defaults
python bench/rl_defaults.py --algorithm dqn --env CartPole-v1 --round 4 --seeds 111 112 113 114 115 116 --max-seconds 60 --candidates envs_8 defaults
python bench/rl_defaults.py --algorithm a2c --env CartPole-v1 --round 3 --max-seconds 60 --candidates defaults envs_32 envs_64 envs_32_lr_3e-3 envs_32_fragment_16
python bench/rl_defaults.py --algorithm a2c --env CartPole-v1 --round 4 --max-seconds 60 --candidates defaults fragment_4 entropy_0 lambda_1
python bench/rl_defaults.py --algorithm a2c --env CartPole-v1 --round 5 --max-seconds 60 --candidates defaults clip_0.5 clip_0.5_lr_4e-3
python bench/rl_defaults.py --algorithm dqn --env CartPole-v1 --round 5 --seeds 117 118 119 120 121 122 --max-seconds 60 --candidates defaults n_step_3_epsilon_5k
python bench/diffusion.py
python bench/gan_vs_ddpm.py   # 3 seeds x 2 models x 120 s of training (about 15 minutes)
python bench/rbm_vs_sklearn.py --seeds $(seq 0 19)   # about 3 minutes
python bench/sweep_overhead.py   # every family, 3 pairs each (about 70 minutes)
python bench/asha_vs_grid.py
python bench/memory.py
python bench/seed_stability.py
python bench/tpe_vs_random.py
python bench/pbt_vs_grid.py
python bench/speedups.py
# needs PostgreSQL's server binaries (apt install postgresql) and psycopg2-binary (in .[bench])
python bench/tracking_load.py --seconds 30 --label after --repeats 3
python bench/many_trials.py   # 1,000 trials on a 3-node local cluster (about 40 minutes)
python bench/report.py
