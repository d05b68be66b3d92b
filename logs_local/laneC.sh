cd /work/main
export OMP_NUM_THREADS=1
/work/main/.venv/bin/robodistill bench refine opd --task reach --recipe opd/reach --teacher runs/reach_teacher --seeds 0 --steps 10240 --eval-every 2048 --json out/refine/opd_reach.json
/work/main/.venv/bin/robodistill bench refine opd --task reach --recipe opd/reach --teacher runs/reach_teacher --seeds 1 --steps 10240 --eval-every 2048 --json out/refine/opd_reach.json
