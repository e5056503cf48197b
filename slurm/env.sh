# Point the SLURM clients (sinfo, srun, sbatch, squeue, sacct, scancel, scontrol, sacctmgr) and submitit at the
# test cluster of `slurm/start.sh DIR`. Usage: source slurm/env.sh [DIR]   (default: <repo>/.slurm-testbed)
export SLURM_CONF="$(realpath -m "${1:-$(dirname "${BASH_SOURCE[0]}")/../.slurm-testbed}")/etc/slurm.conf"
[ -f "$SLURM_CONF" ] || echo "env.sh: $SLURM_CONF does not exist yet; run slurm/start.sh first" >&2
