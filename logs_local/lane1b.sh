cd /work/main
export OMP_NUM_THREADS=1
while kill -0 $(cat logs_local/lane1.pid) 2>/dev/null; do sleep 10; done
while kill -0 $(cat logs_local/lane2.pid) 2>/dev/null; do sleep 10; done
/work/main/.venv/bin/robodistill bench refine rpd --task push --teacher runs/push_teacher --seeds 0 1 2 --reward dense sparse --json out/refine/rpd_push.json
/work/main/.venv/bin/robodistill bench refine rpd --task pick_place --recipe rpd/pick_place_edm1 --teacher runs/pp_edm --seeds 0 1 2 --reward dense sparse --json out/refine/rpd_pick_place_edm1.json
while [ ! -e out/refine/timing/rpd_pick_place/train.log ]; do sleep 10; done
/work/main/.venv/bin/robodistill refine opd --teacher runs/pick_place_teacher --task pick_place --out out/refine/timing/opd_pick_place
