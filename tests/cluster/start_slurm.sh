#!/usr/bin/env bash
# Start a single-node SLURM test cluster on this machine (Debian/Ubuntu, as root), with job
# accounting (slurmdbd + a private MariaDB), so that Snakemake's SLURM executor plugin works with
# its default status command (sacct), as on an institutional cluster.
#
#   tests/cluster/start_slurm.sh      # install (apt), configure, start, wait until the node is idle
#   tests/cluster/stop_slurm.sh       # cancel the test jobs, stop the daemons by PID
#
# Exit codes: 0 cluster up; 77 cannot run here (not root, no apt-get, packages not installable) -
# the caller skips with the printed reason; anything else: a real failure (see the logs below).
#
# Everything except the two config files lives in $RADFLOW_SLURM_STATE (default
# /var/tmp/radflow-slurm): daemon state, logs (log/), PIDs (pids/), the MariaDB data directory.
# slurm.conf must be /etc/slurm/slurm.conf: inside a job the plugin removes every SLURM_* variable
# (SLURM_CONF too) before its nested `srun`, which then only finds the default location. The
# script refuses to overwrite a slurm.conf it did not write (a real cluster's configuration).
#
# Known details of this set-up (SLURM 22.05 from Debian 12, no systemd, no cgroups):
# * Debian's postinst starts no service here: munged (as user munge; socket directory mode 0755),
#   mariadbd, slurmdbd, slurmctld and `slurmd -N localhost` are started by hand, in the foreground
#   of their own session, so that their PIDs are known and the stop script ends exactly them.
# * ProctrackType=proctrack/linuxproc and TaskPlugin=task/none work without cgroups.
# * The node line comes from `slurmd -C` (CPUs, sockets, cores, memory of this machine), raised
#   to at least 2 CPUs and 16 GB on smaller machines (config_overrides).
# * MinJobAge=300 keeps finished jobs visible to squeue (the plugin's alternative status command).
# * AccountingStoreFlags=job_comment keeps the plugin's job comment (rule and wildcards) in sacct.
set -euo pipefail

MARKER="# radflow-test-cluster: written by tests/cluster/start_slurm.sh"
STATE="${RADFLOW_SLURM_STATE:-/var/tmp/radflow-slurm}"
PARTITION="${RADFLOW_SLURM_PARTITION:-radflow}"
CLUSTER=radflow
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

skip() { echo "SKIP: $*" >&2; exit 77; }
log() { echo "[start_slurm $(date +%T)] $*" >&2; }
die() {
    echo "ERROR: $*" >&2
    for f in "$STATE"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
    exit 1
}

[ "$(id -u)" -eq 0 ] || skip "not root: installing and starting SLURM daemons needs root"
command -v apt-get >/dev/null || skip "no apt-get: the test cluster is built from Debian packages"

started=$SECONDS
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"/tmp/radflow-slurm-apt.log" 2>&1 \
        || skip "the Debian packages ${missing[*]} cannot be installed (see /tmp/radflow-slurm-apt.log)"
fi
log "packages ready ($((SECONDS - started)) s)"

if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script (a real SLURM configuration?); not touching it"
fi
if [ -f "$STATE/pids/slurmctld.pid" ] && kill -0 "$(cat "$STATE/pids/slurmctld.pid")" 2>/dev/null; then
    if [ "$(sinfo -h -N -n localhost -o %T 2>/dev/null)" = idle ] && [ -z "$(squeue -h -o %i)" ]; then
        log "the test cluster is already running and idle (state in $STATE); using it"
        exit 0
    fi
    die "a test cluster is already running and busy (state in $STATE); stop it with tests/cluster/stop_slurm.sh"
fi

rm -rf "$STATE"
mkdir -p "$STATE"/{log,pids,ctld,spool,mysql,mysql-run}
chmod 0755 "$STATE"

# --- munge: the authentication daemon every SLURM command talks to
[ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; }
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
munged_pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
if [ -z "$munged_pid" ] || [ "$(cat "/proc/$munged_pid/comm" 2>/dev/null)" != munged ]; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$STATE/pids/munged.pid"
fi
munge -n | unmunge >/dev/null || die "munge does not work"

# Start a daemon in its own session, in the foreground (so that $! is its PID), logging to log/.
start_daemon() {
    local name=$1; shift
    setsid "$@" >"$STATE/log/$name.out" 2>&1 < /dev/null &
    echo $! >"$STATE/pids/$name.pid"
}

# --- MariaDB (private data directory and socket) for the accounting database
chown mysql:mysql "$STATE/mysql" "$STATE/mysql-run"
mariadb-install-db --user=mysql --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
    --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
export MYSQL_UNIX_PORT="$STATE/mysql-run/mysqld.sock"
start_daemon mariadbd /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" \
    --socket="$MYSQL_UNIX_PORT" --skip-networking --pid-file="$STATE/mysql-run/mariadbd.pid" \
    --log-error="$STATE/mysql-run/mariadbd.log" --innodb-buffer-pool-size=128M \
    --innodb-lock-wait-timeout=900
for _ in $(seq 100); do mariadb-admin --socket="$MYSQL_UNIX_PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
mariadb-admin --socket="$MYSQL_UNIX_PORT" ping >/dev/null 2>&1 || die "mariadbd did not start"

# --- configuration
# The node line from `slurmd -C`, named localhost. On a small machine the node is declared with
# at least 2 CPUs and 16 GB (SlurmdParameters=config_overrides lets slurmd accept that), so that
# the workflow's requests (a grouped job on 2 CPUs, 8 GB for the crawl) can always be scheduled.
read -r NODE_LINE < <(slurmd -C | head -n 1)
NODE_LINE=$(sed -e 's/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/' <<<"$NODE_LINE")
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
[ "${mem:-0}" -ge 16384 ] || NODE_LINE=$(sed -e "s/RealMemory=[0-9]*/RealMemory=16384/" <<<"$NODE_LINE")
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
if [ "${cpus:-0}" -lt 2 ]; then
    NODE_LINE=$(sed -e 's/ CPUs=[0-9]*/ CPUs=2/' -e 's/ \(Boards\|SocketsPerBoard\|CoresPerSocket\|ThreadsPerCore\)=[0-9]*//g' <<<"$NODE_LINE")
fi
mkdir -p /etc/slurm
cat >"$CONF" <<EOF
$MARKER
# A single-node test cluster bound to localhost. Stop it with tests/cluster/stop_slurm.sh.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobCompType=jobcomp/none
$NODE_LINE State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$DBD_CONF" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
chmod 0600 "$DBD_CONF"

# --- daemons
start_daemon slurmdbd /usr/sbin/slurmdbd -D
for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -n list cluster >/dev/null 2>&1 || die "slurmdbd did not start"
sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
start_daemon slurmctld /usr/sbin/slurmctld -D -i
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP || die "slurmctld did not start"
start_daemon slurmd /usr/sbin/slurmd -D -N localhost

state=""
for _ in $(seq 120); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    case "$state" in
        down*|drain*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
[ "$state" = idle ] || die "node localhost is '${state:-unknown}', not idle, after 60 s"
log "cluster '$CLUSTER' up: partition $PARTITION, node localhost idle ($((SECONDS - started)) s in all)"
sinfo >&2
