#!/usr/bin/env bash
# Single-node SLURM test cluster (munge + MariaDB + slurmdbd + slurmctld + slurmd),
# everything as root, all config/state/logs/sockets/pids under one directory.
#
#   cluster.sh install         apt-get install the Debian packages (skipped if present)
#   cluster.sh start DIR       write configs into DIR, start the daemons, print env
#   cluster.sh stop DIR        kill exactly the PIDs recorded in DIR/pids, wait for exit
#   cluster.sh status DIR      show daemons / sinfo / env
#   cluster.sh env DIR         print the client env (KEY=VALUE lines) of a started cluster
#
# Knobs (env): SLURM_TEST_CLUSTER (default snaketest), SLURM_TEST_PARTITION (debug),
# SLURM_TEST_ACCOUNT (hrlzoo, as in profiles/slurm), SLURM_TEST_START_TIMEOUT (seconds, default 60).
# See README.md next to this file.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="$HERE/templates"
CLUSTER="${SLURM_TEST_CLUSTER:-snaketest}"
PARTITION="${SLURM_TEST_PARTITION:-debug}"
ACCOUNT="${SLURM_TEST_ACCOUNT:-hrlzoo}"
START_TIMEOUT="${SLURM_TEST_START_TIMEOUT:-60}"
# snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable (SLURM_CONF
# included) before its nested `srun`, so inside a job srun only finds the config at
# Slurm's compiled-in default path. start links it there; stop removes the link.
DEFAULT_CONF=/etc/slurm/slurm.conf
LINK_DEFAULT_CONF="${SLURM_TEST_LINK_DEFAULT_CONF:-1}"
# stop order (reverse of start)
DAEMONS_STOP_ORDER="slurmd,slurmctld slurmdbd mariadbd,munged"

PACKAGES="slurm-wlm slurm-client slurmctld slurmd slurmdbd slurm-wlm-mysql-plugin munge mariadb-server mariadb-client"
REQUIRED_BINS="munged munge slurmctld slurmd slurmdbd sbatch srun sacct sacctmgr scontrol sinfo squeue scancel mariadbd mariadb-install-db mariadb"

log() { echo "[cluster.sh] $*" >&2; }
die() { echo "[cluster.sh] ERROR: $*" >&2; exit 1; }

have_all() {
    local b
    for b in $REQUIRED_BINS; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
    done
    [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/accounting_storage_mysql.so ] \
        || ls /usr/lib/*/slurm-wlm/accounting_storage_mysql.so >/dev/null 2>&1 || return 1
}

cmd_install() {
    if have_all; then
        log "packages already installed; skipping apt-get"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "install needs root"
    log "installing: $PACKAGES"
    # Keep the packages' init scripts from starting the system-wide daemons
    # (munge/mariadb/slurm*) during install: we start our own private ones.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || rc=$?
    if [ "$rc" = 0 ]; then
        apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            $PACKAGES || rc=$?
    fi
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get failed (rc=$rc)"
    have_all || die "packages installed but some binaries are missing"
}

# ---------------------------------------------------------------- helpers

sbin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# pick 4 consecutive free TCP ports
pick_ports() {
    local base i ok tries=0
    while [ $tries -lt 50 ]; do
        tries=$((tries + 1))
        base=$(( 20000 + (RANDOM * 32768 + RANDOM) % 35000 ))
        ok=1
        for i in 0 1 2 3; do
            if port_in_use $((base + i)); then ok=0; break; fi
        done
        [ $ok = 1 ] && { echo "$base"; return 0; }
    done
    die "could not find free ports"
}

render() { # template out
    local tpl="$1" out="$2"
    sed -e "s|@DIR@|$DIR|g" \
        -e "s|@CLUSTER@|$CLUSTER|g" \
        -e "s|@PARTITION@|$PARTITION|g" \
        -e "s|@HOST@|$HOST|g" \
        -e "s|@NODE@|$NODE|g" \
        -e "s|@NODE_LINE@|$NODE_LINE|g" \
        -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
        -e "s|@DBD_PORT@|$DBD_PORT|g" \
        -e "s|@MYSQL_PORT@|$MYSQL_PORT|g" \
        "$tpl" > "$out"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# guard against PID reuse: the recorded PID must still run the daemon we started
pid_is() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q "$2"; }

# Start a daemon in the foreground mode in its own session; record exactly its PID.
launch() { # name logfile cmd...
    local name="$1" logf="$2"; shift 2
    setsid "$@" </dev/null >>"$logf" 2>&1 &
    local pid=$!
    echo "$pid" > "$DIR/pids/$name.pid"
    LAST_PID=$pid
    log "started $name pid=$pid"
}

wait_for() { # description timeout cmd...   (gives up early if the last launched daemon died)
    local what="$1" t="$2"; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        if [ -n "${LAST_PID:-}" ] && ! pid_alive "$LAST_PID"; then
            log "$what: process $LAST_PID exited"
            return 1
        fi
        if [ $SECONDS -ge $end ]; then
            log "timeout waiting for $what"
            return 1
        fi
        sleep 0.3
    done
}

check_alive() { # name logfile
    local pid
    pid="$(cat "$DIR/pids/$1.pid" 2>/dev/null || true)"
    if ! pid_alive "$pid"; then
        log "$1 died; last lines of $2 (and its stdout/stderr):"
        tail -n 30 "$2" >&2 || true
        tail -n 30 "$DIR/log/$1.out" >&2 || true
        return 1
    fi
}

load_state() {
    [ -f "$DIR/cluster.state" ] || die "$DIR/cluster.state missing (not started?)"
    # shellcheck disable=SC1091
    . "$DIR/cluster.state"
}

print_env() {
    cat <<EOF
SLURM_CONF=$DIR/etc/slurm.conf
SLURM_CLUSTER=$CLUSTER
SLURM_PARTITION=$PARTITION
SLURM_ACCOUNT=$ACCOUNT
SLURM_TEST_DIR=$DIR
EOF
}

# ---------------------------------------------------------------- start

cmd_start() {
    [ "$(id -u)" = 0 ] || die "start needs root"
    have_all || die "packages missing; run: $0 install"
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd -P)"
    # unix socket paths are limited to 107 bytes
    [ ${#DIR} -le 80 ] || die "DIR path too long for unix sockets (${#DIR} > 80): $DIR"
    if [ -d "$DIR/pids" ]; then
        local f
        for f in "$DIR"/pids/*.pid; do
            [ -e "$f" ] || continue
            if pid_alive "$(cat "$f")"; then
                die "a daemon from $DIR is still running ($(basename "$f" .pid)); stop it first"
            fi
        done
    fi
    mkdir -p "$DIR"/{etc,log,run,pids,state,spool,munge,mysql}
    chmod 700 "$DIR" "$DIR/munge" "$DIR/run"
    chmod 755 "$DIR/log"

    HOST="$(hostname -s)"
    NODE="$HOST"
    # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    NODE_LINE="$("$(sbin slurmd)" -C | head -n 1)"
    case "$NODE_LINE" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $NODE_LINE" ;; esac
    MUNGE_SOCKET="$DIR/run/munge.sock"
    if [ -f "$DIR/cluster.state" ]; then
        # restart of an existing cluster dir: keep ports unless taken
        # shellcheck disable=SC1091
        . "$DIR/cluster.state"
        if port_in_use "$CTLD_PORT" || port_in_use "$SLURMD_PORT" || port_in_use "$DBD_PORT" || port_in_use "$MYSQL_PORT"; then
            unset CTLD_PORT
        fi
    fi
    if [ -z "${CTLD_PORT:-}" ]; then
        local base
        base="$(pick_ports)"
        CTLD_PORT=$base; SLURMD_PORT=$((base + 1)); DBD_PORT=$((base + 2)); MYSQL_PORT=$((base + 3))
    fi
    cat > "$DIR/cluster.state" <<EOF
CLUSTER=$CLUSTER
PARTITION=$PARTITION
ACCOUNT=$ACCOUNT
HOST=$HOST
NODE=$NODE
CTLD_PORT=$CTLD_PORT
SLURMD_PORT=$SLURMD_PORT
DBD_PORT=$DBD_PORT
MYSQL_PORT=$MYSQL_PORT
EOF

    render "$TEMPLATES/slurm.conf.in" "$DIR/etc/slurm.conf"
    render "$TEMPLATES/gres.conf.in" "$DIR/etc/gres.conf"
    render "$TEMPLATES/slurmdbd.conf.in" "$DIR/etc/slurmdbd.conf"
    render "$TEMPLATES/my.cnf.in" "$DIR/etc/my.cnf"
    chmod 600 "$DIR/etc/slurmdbd.conf"   # slurmdbd refuses a group/world readable config
    chmod 644 "$DIR/etc/slurm.conf" "$DIR/etc/gres.conf" "$DIR/etc/my.cnf"

    export SLURM_CONF="$DIR/etc/slurm.conf"
    local t0=$SECONDS
    # if anything below fails, stop whatever was already started
    trap 'rc=$?; if [ $rc != 0 ]; then log "start failed (rc=$rc); stopping started daemons; logs in $DIR/log"; cmd_stop || true; fi' EXIT

    # ---- munge: private key, socket, pid, log, seed
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$DIR/munge/munge.key"
    launch munged "$DIR/log/munged.out" "$(sbin munged)" --foreground --force \
        --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for "munged" 20 munge_ok || { check_alive munged "$DIR/log/munged.out"; die "munged not answering"; }

    # ---- MariaDB
    if [ ! -d "$DIR/mysql/data/mysql" ]; then
        log "initialising MariaDB datadir"
        mariadb-install-db --defaults-file="$DIR/etc/my.cnf" --user=root \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$DIR/log/mariadb-install.log" 2>&1 || { tail -n 30 "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    launch mariadbd "$DIR/log/mariadbd.out" "$(sbin mariadbd)" --defaults-file="$DIR/etc/my.cnf"
    wait_for "mariadbd" 60 mysql_q "SELECT 1" || { check_alive mariadbd "$DIR/log/mariadb.log"; die "mariadbd not answering"; }
    mysql_q "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
             CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmtest';
             CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmtest';
             GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
             GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
             FLUSH PRIVILEGES;"

    # ---- slurmdbd
    # slurmdbd has no -f: it reads slurmdbd.conf from the directory of $SLURM_CONF
    launch slurmdbd "$DIR/log/slurmdbd.out" "$(sbin slurmdbd)" -D
    wait_for "slurmdbd" "$START_TIMEOUT" sacctmgr -n list cluster || { check_alive slurmdbd "$DIR/log/slurmdbd.log"; die "slurmdbd not answering"; }

    # ---- accounting entities (idempotent: sacctmgr exits 1 with "Nothing new added" otherwise)
    sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="test account" Organization=test >/dev/null 2>&1 || true
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
    sacctmgr -n -P list assoc cluster="$CLUSTER" user=root account="$ACCOUNT" format=cluster,account,user | grep -q "$ACCOUNT" \
        || die "association root/$ACCOUNT missing in slurmdbd"

    link_default_conf

    # ---- slurmctld (-i: ignore state files from an old run that no longer match)
    launch slurmctld "$DIR/log/slurmctld.out" "$(sbin slurmctld)" -D -i -f "$DIR/etc/slurm.conf"
    wait_for "slurmctld" "$START_TIMEOUT" scontrol ping || { check_alive slurmctld "$DIR/log/slurmctld.log"; die "slurmctld not answering"; }
    wait_for "slurmctld->slurmdbd registration" 30 ctld_registered || log "warning: cluster not yet registered with slurmdbd"

    # ---- slurmd
    launch slurmd "$DIR/log/slurmd.out" "$(sbin slurmd)" -D -f "$DIR/etc/slurm.conf"
    if ! wait_for "node $NODE idle" "$START_TIMEOUT" node_ready; then
        check_alive slurmd "$DIR/log/slurmd.log" || true
        scontrol show node "$NODE" >&2 || true
        die "node $NODE did not become idle"
    fi
    log "cluster '$CLUSTER' up in $((SECONDS - t0))s (partition=$PARTITION account=$ACCOUNT)"
    print_env | tee "$DIR/env"
    trap - EXIT
}

link_default_conf() {
    [ "$LINK_DEFAULT_CONF" = 1 ] || { log "not linking $DEFAULT_CONF (SLURM_TEST_LINK_DEFAULT_CONF=0)"; return 0; }
    if [ -L "$DEFAULT_CONF" ]; then
        local cur other
        cur="$(readlink "$DEFAULT_CONF")"
        if [ "$cur" != "$DIR/etc/slurm.conf" ]; then
            other="$(dirname "$(dirname "$cur")")"
            if [ -f "$other/pids/slurmctld.pid" ] && pid_alive "$(cat "$other/pids/slurmctld.pid")"; then
                die "$DEFAULT_CONF links to a running test cluster in $other; stop it first"
            fi
        fi
    elif [ -e "$DEFAULT_CONF" ]; then
        die "$DEFAULT_CONF exists and is not ours; move it away or set SLURM_TEST_LINK_DEFAULT_CONF=0 (then jobs run by the snakemake jobstep plugin cannot find the config)"
    fi
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -sfn "$DIR/etc/slurm.conf" "$DEFAULT_CONF"
    echo "$DEFAULT_CONF" > "$DIR/run/default_conf_link"
    log "linked $DEFAULT_CONF -> $DIR/etc/slurm.conf"
}

unlink_default_conf() {
    if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$DIR/etc/slurm.conf" ]; then
        rm -f "$DEFAULT_CONF"
        log "removed link $DEFAULT_CONF"
    fi
    rm -f "$DIR/run/default_conf_link"
}

munge_ok() { munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null; }
mysql_q() { mariadb --no-defaults --protocol=socket -S "$DIR/run/mysqld.sock" -uroot -e "$1"; }
ctld_registered() {
    sacctmgr -n -P list cluster "$CLUSTER" format=ControlPort | grep -q "^$CTLD_PORT$"
}
node_ready() {
    local st
    st="$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1)"
    case "$st" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------- stop

cmd_stop() {
    [ -d "$DIR/pids" ] || { log "nothing to stop in $DIR"; return 0; }
    DIR="$(cd "$DIR" && pwd -P)"
    export SLURM_CONF="$DIR/etc/slurm.conf"
    # cancel leftover jobs so that slurmstepd/job processes go away with slurmd
    local ctld_pid
    ctld_pid="$(cat "$DIR/pids/slurmctld.pid" 2>/dev/null || true)"
    if pid_alive "$ctld_pid" && [ -n "$(squeue -h -o %i 2>/dev/null | head -n 1)" ]; then
        log "cancelling leftover jobs"
        timeout 10 scancel --full --signal=KILL -u root >/dev/null 2>&1 || true
        timeout 10 scancel -u root >/dev/null 2>&1 || true
        local end=$((SECONDS + 15))
        while [ $SECONDS -lt $end ] && [ -n "$(squeue -h -o %i 2>/dev/null | head -n 1)" ]; do sleep 0.5; done
    fi
    local group name pid end rc=0 pids
    # stage by stage (slurmctld must flush to slurmdbd, which needs munge + MariaDB);
    # the daemons inside one stage are stopped together
    for group in $DAEMONS_STOP_ORDER; do
        pids=""
        for name in ${group//,/ }; do
            [ -f "$DIR/pids/$name.pid" ] || continue
            pid="$(cat "$DIR/pids/$name.pid")"
            if pid_alive "$pid" && ! pid_is "$pid" "$name"; then
                log "pid $pid of $name is now another program; not killing it"
                rm -f "$DIR/pids/$name.pid"
            elif pid_alive "$pid"; then
                kill -TERM "$pid" 2>/dev/null || true
                pids="$pids $name:$pid"
            else
                rm -f "$DIR/pids/$name.pid"
            fi
        done
        for name in $pids; do
            pid="${name#*:}"; name="${name%%:*}"
            end=$((SECONDS + 30))
            while pid_alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.1; done
            if pid_alive "$pid"; then
                log "$name ($pid) ignored SIGTERM; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                end=$((SECONDS + 10))
                while pid_alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.1; done
            fi
            if pid_alive "$pid"; then log "$name ($pid) still alive!"; rc=1; else log "stopped $name ($pid)"; rm -f "$DIR/pids/$name.pid"; fi
        done
    done
    unlink_default_conf
    return $rc
}

# ---------------------------------------------------------------- status

cmd_status() {
    DIR="$(cd "$DIR" && pwd -P)"
    load_state
    export SLURM_CONF="$DIR/etc/slurm.conf"
    local name pid all=0
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        pid="$(cat "$DIR/pids/$name.pid" 2>/dev/null || true)"
        if pid_alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: not running"; all=1; fi
    done
    if [ $all = 0 ]; then
        sinfo || true
        sacctmgr -n -P list assoc cluster="$CLUSTER" format=cluster,account,user || true
    fi
    print_env
    return $all
}

# ---------------------------------------------------------------- main

sub="${1:-}"
case "$sub" in
    install) cmd_install ;;
    start|stop|status|env)
        [ $# -ge 2 ] || die "usage: $0 $sub DIR"
        DIR="$2"
        case "$sub" in
            start) cmd_start ;;
            stop) cmd_stop ;;
            status) cmd_status ;;
            env) DIR="$(cd "$DIR" && pwd -P)"; load_state; print_env ;;
        esac
        ;;
    *) echo "usage: $0 {install|start DIR|stop DIR|status DIR|env DIR}" >&2; exit 2 ;;
esac
