cd /work/main
export OMP_NUM_THREADS=1
/work/main/.venv/bin/robodistill bench refine rpd --task pick_place --recipe rpd/pick_place_edm1 --teacher runs/pp_edm --seeds 0 1 2 --reward sparse --json out/refine/rpd_pick_place_edm1.json
