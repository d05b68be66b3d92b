cd /work/main
export OMP_NUM_THREADS=1
while kill -0 $(cat logs_local/lane2.pid) 2>/dev/null; do sleep 10; done
/work/main/.venv/bin/robodistill train --recipe diffusion/pick_place --dataset data/pick_place --out runs/pick_place_teacher
/work/main/.venv/bin/robodistill refine rpd --teacher runs/pick_place_teacher --task pick_place --out out/refine/timing/rpd_pick_place
