cd /work/main
export OMP_NUM_THREADS=1
while kill -0 $(cat logs_local/lane2b.pid) 2>/dev/null; do sleep 10; done
/work/main/.venv/bin/robodistill bench refine opd --task reach --teacher runs/reach_teacher --seeds 1 --steps 10240 --eval-every 2048 --json out/refine/opd_reach.json
