cd /work/main
export OMP_NUM_THREADS=1
/work/main/.venv/bin/robodistill refine rpd --recipe rpd/push --teacher runs/push_teacher --task push --reward sparse --seed 2 --out out/refine/rpd_push_runs/rpd_sparse_s2
