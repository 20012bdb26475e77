#!/usr/bin/env bash
# Stop the test cluster started by tests/cluster/start_slurm.sh: cancel its jobs, then end each
# daemon by the PID the start script recorded (TERM, then KILL after 10 s). Idempotent: safe to
# call when nothing runs. Leaves the packages, /etc/slurm/*.conf and $RADFLOW_SLURM_STATE (logs).
set -uo pipefail

STATE="${RADFLOW_SLURM_STATE:-/var/tmp/radflow-slurm}"
PIDS="$STATE/pids"
[ -d "$PIDS" ] || { echo "stop_slurm: no test cluster state in $STATE" >&2; exit 0; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Jobs first (their slurmstepd processes are children of our slurmd): cancel and wait briefly.
pid=$(cat "$PIDS/slurmctld.pid" 2>/dev/null || true)
if alive "$pid"; then
    scancel --partition="${RADFLOW_SLURM_PARTITION:-radflow}" 2>/dev/null || true
    for _ in $(seq 20); do
        [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
        sleep 0.5
    done
fi

# Reverse start order: compute daemon, controller, accounting, database, authentication.
for name in slurmd slurmctld slurmdbd mariadbd munged; do
    pid=$(cat "$PIDS/$name.pid" 2>/dev/null || true)
    alive "$pid" || { rm -f "$PIDS/$name.pid"; continue; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        echo "stop_slurm: $name ($pid) did not stop after TERM; KILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
    echo "stop_slurm: stopped $name ($pid)" >&2
done
