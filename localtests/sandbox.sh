#!/usr/bin/env bash
# Real-database sandbox for osc tests, demos and benchmarks.
#
#   bash localtests/sandbox.sh up      start (installing/initialising on demand); idempotent
#   bash localtests/sandbox.sh down    stop what `up` started and delete the sandbox directory
#   bash localtests/sandbox.sh status  print each server up/down; exit 0 only if all are up
#   bash localtests/sandbox.sh env     print `export OSC_...=...` lines (use with eval)
#
# Servers (all bound to 127.0.0.1, never the default ports 3306/5432):
#   MariaDB primary 13306 (root, no password, binlog ROW/FULL, GTID), replica 13307 (GTID, read_only),
#     both with time zone tables and the global time_zone $OSC_SANDBOX_MYSQL_TZ (default Europe/Berlin)
#   PostgreSQL 15 primary 15432 (postgres, trust, wal_level=logical), physical standby 15433,
#     and a second primary 15434 ("quiet") for tests that need a server no other test uses at the same time
# State lives in $OSC_SANDBOX_DIR (default /tmp/osc-sandbox). Sandbox use only: no passwords, no fsync.
set -euo pipefail

# Server binaries live in sbin directories, which a minimal CI shell may not have on PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SANDBOX_DIR=${OSC_SANDBOX_DIR:-/tmp/osc-sandbox}
SANDBOX_DIR=${SANDBOX_DIR%/}
MARKER="$SANDBOX_DIR/.osc-sandbox"
LOCK_FILE="$SANDBOX_DIR.lock"

HOST=127.0.0.1
MY_PRIMARY_PORT=13306
MY_REPLICA_PORT=13307
PG_PRIMARY_PORT=15432
PG_STANDBY_PORT=15433
PG_QUIET_PORT=15434
PG_BIN=/usr/lib/postgresql/15/bin
PG_SOCK_DIR="$SANDBOX_DIR/pg-sock"
DATABASES=(osc_test osc_demo)
# The MariaDB servers' global time_zone: not UTC, and with daylight saving time, so that every test runs
# where converting to and from TIMESTAMP depends on the zone (and an hour repeats each autumn).
MY_TIME_ZONE=${OSC_SANDBOX_MYSQL_TZ:-Europe/Berlin}
START_TIMEOUT=${OSC_SANDBOX_TIMEOUT:-90}

log() { echo "sandbox: $*" >&2; }
die() {
	echo "sandbox: ERROR: $*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------
# installation

# with_services_denied runs its arguments with a policy-rc.d that forbids package scripts from
# starting system services (MariaDB on 3306, PostgreSQL on 5432); an existing policy is kept.
with_services_denied() {
	local policy=/usr/sbin/policy-rc.d created=0 rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created=1
	fi
	"$@" || rc=$?
	if ((created)); then
		rm -f "$policy"
	fi
	return "$rc"
}

ensure_packages() {
	local pkgs=()
	if ! command -v mariadbd >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1 ||
		! command -v mariadb >/dev/null 2>&1 || ! command -v mariadb-admin >/dev/null 2>&1; then
		pkgs+=(mariadb-server mariadb-client)
	fi
	if [[ ! -x $PG_BIN/initdb || ! -x $PG_BIN/pg_basebackup ]]; then
		pkgs+=(postgresql-15)
	fi
	if [[ ! -d /usr/share/zoneinfo ]]; then
		pkgs+=(tzdata)
	fi
	if ! command -v openssl >/dev/null 2>&1; then
		pkgs+=(openssl)
	fi
	if ((${#pkgs[@]} == 0)); then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "missing packages (${pkgs[*]}) and not root: install them first"
	log "installing ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update </dev/null >&2
	with_services_denied apt-get install -y --no-install-recommends "${pkgs[@]}" </dev/null >&2
}

# tls_certs makes a sandbox certificate authority and a certificate for $HOST signed by it (once): every
# sandbox server accepts TLS with it, so tests can connect with verification
# (OSC_SANDBOX_TLS_CA). Each server reads its own copy of the key, owned by its OS user.
tls_certs() {
	local dir="$SANDBOX_DIR/tls"
	[[ -s $dir/server.pem && -s $dir/mysql/server-key.pem ]] && return 0
	log "creating the sandbox TLS certificates"
	mkdir -p "$dir/mysql"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=osc sandbox CA" \
		-keyout "$dir/ca-key.pem" -out "$dir/ca.pem" >/dev/null 2>&1 || die "openssl: CA certificate"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout "$dir/server-key.pem" -out "$dir/server.csr" \
		>/dev/null 2>&1 || die "openssl: server key"
	printf 'subjectAltName = IP:%s, DNS:localhost\n' "$HOST" >"$dir/san.ext"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
		-days 3650 -extfile "$dir/san.ext" -out "$dir/server.pem" >/dev/null 2>&1 || die "openssl: server certificate"
	cp "$dir/ca.pem" "$dir/server.pem" "$dir/server-key.pem" "$dir/mysql/"
	chown -R mysql:mysql "$dir/mysql"
	chmod 600 "$dir/mysql/server-key.pem" "$dir/server-key.pem" "$dir/ca-key.pem"
	chmod 644 "$dir/ca.pem" "$dir/server.pem"
	chmod 755 "$dir" "$dir/mysql"
}

ensure_users() {
	local u
	for u in mysql postgres; do
		if ! id "$u" >/dev/null 2>&1; then
			log "creating OS user $u"
			useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$u"
		fi
	done
}

# as_postgres runs a command as the OS user postgres (PostgreSQL refuses to run as root).
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		"$@"
	else
		runuser -u postgres -- "$@"
	fi
}

# ---------------------------------------------------------------------------------------------
# MariaDB

my_dir() { echo "$SANDBOX_DIR/mysql-$1"; } # $1 = primary | replica
my_port() { if [[ $1 == primary ]]; then echo $MY_PRIMARY_PORT; else echo $MY_REPLICA_PORT; fi; }

# my_sql runs SQL on a sandbox server over TCP as root (no password).
my_sql() {
	local role=$1
	shift
	mariadb --no-defaults --protocol=TCP -h "$HOST" -P "$(my_port "$role")" -uroot --batch --skip-column-names "$@"
}

# proc_alive PID NAME: PID is a live process running NAME. kill -0 is not enough: it succeeds on a
# zombie (a killed server its parent has not reaped yet) and on a pid recycled by another program,
# and either would make `up` wait for a server that will never answer.
proc_alive() {
	local pid=$1 name=$2 stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ ${stat##*) } != Z* ]] || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]
}

my_pid_alive() {
	local pidfile
	pidfile="$(my_dir "$1")/mariadbd.pid"
	[[ -s $pidfile ]] && proc_alive "$(cat "$pidfile")" mariadbd
}

# my_login checks a real root login over TCP (mariadb-admin ping succeeds even on access denied).
my_login() { my_sql "$1" --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; }

my_up() { my_pid_alive "$1" && my_login "$1"; }

my_write_cnf() {
	local role=$1 dir port server_id extra
	dir=$(my_dir "$role")
	port=$(my_port "$role")
	if [[ $role == primary ]]; then
		server_id=1
		# Strict GTID mode on the primary catches out-of-order GTIDs early.
		extra="gtid_strict_mode = ON"
	else
		server_id=2
		# The replica stays forgiving so a stray test write on it does not wedge replication.
		extra=$(printf '%s\n' "read_only = ON" "gtid_strict_mode = OFF" "relay_log = $dir/relay-bin" \
			"report_host = $HOST" "report_port = $port")
	fi
	cat >"$dir/my.cnf" <<EOF
[mysqld]
user = mysql
datadir = $dir/data
tmpdir = $dir/tmp
socket = $dir/mariadbd.sock
pid-file = $dir/mariadbd.pid
log-error = $dir/error.log
port = $port
bind-address = $HOST
skip-name-resolve
server_id = $server_id
log_bin = $dir/data/binlog
log_slave_updates = ON
binlog_format = ROW
binlog_row_image = FULL
# Stress runs write gigabytes of binlog an hour: keep two hours (resume tests need minutes).
binlog_expire_logs_seconds = 7200
gtid_domain_id = 0
sync_binlog = 0
innodb_buffer_pool_size = 256M
innodb_log_file_size = 128M
innodb_flush_log_at_trx_commit = 2
max_connections = 500
max_allowed_packet = 64M
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
performance_schema = OFF
# TLS for the TLS tests (sandbox CA, see tls_certs); connections without TLS are accepted too.
ssl_ca = $SANDBOX_DIR/tls/mysql/ca.pem
ssl_cert = $SANDBOX_DIR/tls/mysql/server.pem
ssl_key = $SANDBOX_DIR/tls/mysql/server-key.pem
$extra

[client]
socket = $dir/mariadbd.sock
user = root
EOF
}

my_init() {
	local role=$1 dir
	dir=$(my_dir "$role")
	mkdir -p "$dir/tmp"
	my_write_cnf "$role"
	chown -R mysql:mysql "$dir"
	if [[ ! -d $dir/data/mysql ]]; then
		log "initialising MariaDB $role datadir"
		rm -rf "$dir/data"
		if ! mariadb-install-db --defaults-file="$dir/my.cnf" --user=mysql --datadir="$dir/data" \
			--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1; then
			tail -n 30 "$dir/install.log" >&2
			die "mariadb-install-db failed for $role (log: $dir/install.log)"
		fi
	fi
}

# my_accounts makes root work over TCP from 127.0.0.1 / ::1 / localhost with no password. It runs
# through the unix socket (root@localhost via unix_socket or empty password) and is not binlogged,
# so each server gets it independently.
my_accounts() {
	local role=$1 dir
	dir=$(my_dir "$role")
	mariadb --defaults-file="$dir/my.cnf" -uroot --batch <<'EOF'
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'root'@'::1';
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING '' OR unix_socket;
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '';
ALTER USER 'root'@'::1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
}

# my_start initialises (if needed) and starts a server. A fresh datadir only has root@localhost,
# so it waits on the unix socket first, then creates the TCP accounts and checks TCP login.
my_start() {
	local role=$1 dir i pid=""
	dir=$(my_dir "$role")
	my_init "$role"
	if my_up "$role"; then
		return 0
	fi
	if ! my_pid_alive "$role"; then
		log "starting MariaDB $role on $HOST:$(my_port "$role")"
		rm -f "$dir/mariadbd.pid" "$dir/mariadbd.sock"
		# setsid + nohup: the server outlives this script and its session.
		# 9>&-: the daemon must not inherit the lock descriptor (it would hold the lock forever).
		setsid nohup mariadbd --defaults-file="$dir/my.cnf" </dev/null >>"$dir/stdout.log" 2>&1 9>&- &
		pid=$!
	fi
	for ((i = 0; i < START_TIMEOUT * 5; i++)); do
		if mariadb --defaults-file="$dir/my.cnf" -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
			die "MariaDB $role exited during startup (log: $dir/error.log)"
		fi
		sleep 0.2
	done
	if ! mariadb --defaults-file="$dir/my.cnf" -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; then
		tail -n 30 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
		die "MariaDB $role did not accept connections on $dir/mariadbd.sock within ${START_TIMEOUT}s (log: $dir/error.log)"
	fi
	my_accounts "$role" || die "MariaDB $role: creating root@127.0.0.1 failed"
	for ((i = 0; i < 50; i++)); do
		my_up "$role" && return 0
		sleep 0.2
	done
	tail -n 30 "$dir/error.log" >&2 || true
	die "MariaDB $role does not accept TCP connections on $HOST:$(my_port "$role")"
}

# my_time_zone loads the time zone tables (once, not binlogged: each server loads its own) and sets the
# global time_zone. It runs at every `up`: a named zone cannot be in my.cnf, whose default-time-zone is
# read before the tables exist on a fresh datadir.
my_time_zone() {
	local role=$1 dir
	dir=$(my_dir "$role")
	if [[ $(my_sql "$role" -e "SELECT COUNT(*) FROM mysql.time_zone_name") == 0 ]]; then
		[[ -d /usr/share/zoneinfo ]] || die "no /usr/share/zoneinfo: install tzdata"
		log "loading time zone tables into MariaDB $role"
		{
			echo "SET SESSION sql_log_bin = 0;"
			mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null
		} | mariadb --defaults-file="$dir/my.cnf" -uroot mysql || die "loading time zone tables into MariaDB $role failed"
	fi
	my_sql "$role" -e "SET GLOBAL time_zone = '$MY_TIME_ZONE'" || die "MariaDB $role: SET GLOBAL time_zone = '$MY_TIME_ZONE' failed"
}

my_setup_primary() {
	local db
	for db in "${DATABASES[@]}"; do
		my_sql primary -e "CREATE DATABASE IF NOT EXISTS \`$db\`"
	done
}

# my_slave_threads prints the replica's Slave_IO_Running and Slave_SQL_Running ("- -" if unknown).
my_slave_threads() {
	my_sql replica --column-names -e "SHOW SLAVE STATUS\G" |
		awk '$1 == "Slave_IO_Running:" {io = $2} $1 == "Slave_SQL_Running:" {sql = $2}
			END {print (io == "" ? "-" : io), (sql == "" ? "-" : sql)}'
}

my_setup_replica() {
	local io sql
	if [[ -z $(my_sql replica -e "SHOW SLAVE STATUS") ]]; then
		log "configuring MariaDB replica (GTID, slave_pos) from $HOST:$MY_PRIMARY_PORT"
		my_sql replica -e "CHANGE MASTER TO master_host='$HOST', master_port=$MY_PRIMARY_PORT,
			master_user='root', master_password='', master_use_gtid=slave_pos,
			master_connect_retry=1; START SLAVE;"
	else
		read -r io sql < <(my_slave_threads)
		if [[ $io != Yes || $sql != Yes ]]; then
			log "starting MariaDB replica threads (io=$io sql=$sql)"
			my_sql replica -e "START SLAVE" || true
		fi
	fi
}

# my_wait_replica waits until every sandbox database exists on the replica (replicated DDL).
my_wait_replica() {
	local i db missing
	for ((i = 0; i < START_TIMEOUT * 5; i++)); do
		missing=0
		for db in "${DATABASES[@]}"; do
			if [[ -z $(my_sql replica -e "SHOW DATABASES LIKE '$db'") ]]; then
				missing=1
			fi
		done
		((missing)) || return 0
		sleep 0.2
	done
	my_sql replica -e "SHOW SLAVE STATUS\G" >&2 || true
	die "MariaDB replica does not replicate from the primary (see SHOW SLAVE STATUS above)"
}

my_stop() {
	local role=$1 dir pid i
	dir=$(my_dir "$role")
	[[ -s $dir/mariadbd.pid ]] || return 0
	pid=$(cat "$dir/mariadbd.pid")
	proc_alive "$pid" mariadbd || return 0
	log "stopping MariaDB $role (pid $pid)"
	mariadb-admin --defaults-file="$dir/my.cnf" --connect-timeout=5 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		proc_alive "$pid" mariadbd || return 0
		sleep 0.2
	done
	log "MariaDB $role (pid $pid) did not stop in 60s, killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

pg_data() { echo "$SANDBOX_DIR/pg-$1/data"; } # $1 = primary | standby | quiet
pg_port() {
	case $1 in
	primary) echo $PG_PRIMARY_PORT ;;
	standby) echo $PG_STANDBY_PORT ;;
	quiet) echo $PG_QUIET_PORT ;;
	esac
}

pg_sql() {
	local role=$1
	shift
	"$PG_BIN/psql" -X -q -h "$HOST" -p "$(pg_port "$role")" -U postgres -d postgres -v ON_ERROR_STOP=1 -At "$@"
}

# pg_current ROLE: the running server is the installed build. A package upgrade under a running server
# leaves it with libraries (PL/pgSQL, ...) it can no longer load.
pg_current() {
	local running installed
	running=$(pg_sql "$1" -c "SHOW server_version" 2>/dev/null) || return 1
	installed=$("$PG_BIN/postgres" -V)
	[[ $installed == *") $running" ]]
}

pg_pid_alive() {
	local pidfile
	pidfile="$(pg_data "$1")/postmaster.pid"
	[[ -s $pidfile ]] && proc_alive "$(head -n 1 "$pidfile")" postgres
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$(pg_port "$1")" -U postgres -t 2 >/dev/null 2>&1; }

pg_up() { pg_pid_alive "$1" && pg_ready "$1"; }

# pg_init ROLE: a primary (primary | quiet), each its own cluster.
pg_init() {
	local role=$1 data
	data=$(pg_data "$role")
	mkdir -p "$PG_SOCK_DIR" "$(dirname "$data")"
	chown postgres:postgres "$PG_SOCK_DIR" "$(dirname "$data")"
	[[ -f $data/PG_VERSION ]] && return 0
	log "initialising PostgreSQL $role"
	rm -rf "$data"
	if ! as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$(dirname "$data")/initdb.log" 2>&1; then
		tail -n 30 "$(dirname "$data")/initdb.log" >&2
		die "initdb failed (log: $(dirname "$data")/initdb.log)"
	fi
	cat >>"$data/postgresql.conf" <<EOF

# --- osc sandbox (speed over durability; never use these settings for real data) ---
listen_addresses = '$HOST'
port = $(pg_port "$role")
unix_socket_directories = '$PG_SOCK_DIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 512MB
max_slot_wal_keep_size = 4GB
logging_collector = off
log_min_messages = warning
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
	install -o postgres -g postgres -m 644 "$SANDBOX_DIR/tls/server.pem" "$data/server.crt"
	install -o postgres -g postgres -m 600 "$SANDBOX_DIR/tls/server-key.pem" "$data/server.key"
	cat >"$data/pg_hba.conf" <<EOF
# osc sandbox: trust everything local (sandbox only)
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   trust
host    replication  all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
host    replication  all   ::1/128        trust
EOF
	chown postgres:postgres "$data/postgresql.conf" "$data/pg_hba.conf"
}

pg_init_standby() {
	local data base
	data=$(pg_data standby)
	base=$(dirname "$data")
	[[ -f $data/PG_VERSION ]] && return 0
	log "creating PostgreSQL standby with pg_basebackup"
	mkdir -p "$base"
	chown postgres:postgres "$base"
	rm -rf "$data"
	if ! as_postgres "$PG_BIN/pg_basebackup" -h "$HOST" -p "$PG_PRIMARY_PORT" -U postgres -D "$data" \
		-R -X stream -c fast >"$base/basebackup.log" 2>&1; then
		tail -n 30 "$base/basebackup.log" >&2
		rm -rf "$data"
		die "pg_basebackup failed (log: $base/basebackup.log)"
	fi
	printf '\n# --- osc sandbox standby ---\nport = %s\n' "$PG_STANDBY_PORT" >>"$data/postgresql.conf"
	chmod 700 "$data"
}

pg_start() {
	local role=$1 data logf
	data=$(pg_data "$role")
	logf="$(dirname "$data")/postgres.log"
	if pg_up "$role"; then
		if pg_current "$role"; then
			return 0
		fi
		log "restarting PostgreSQL $role: it runs $(pg_sql "$role" -c "SHOW server_version"), the installed build is $("$PG_BIN/postgres" -V)"
		as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$logf" -w -t "$START_TIMEOUT" -m fast restart >/dev/null 9>&- ||
			die "PostgreSQL $role did not restart (log: $logf)"
		return 0
	fi
	if pg_pid_alive "$role"; then
		die "PostgreSQL $role runs but does not answer on port $(pg_port "$role"); try: $0 down"
	fi
	log "starting PostgreSQL $role on $HOST:$(pg_port "$role")"
	# A killed postmaster may linger as a zombie, which PostgreSQL's own lock-file checks take for a
	# running server; proc_alive already said it is not one.
	rm -f "$data/postmaster.pid" "$PG_SOCK_DIR/.s.PGSQL.$(pg_port "$role")" "$PG_SOCK_DIR/.s.PGSQL.$(pg_port "$role").lock"
	# pg_ctl daemonizes the postmaster in its own session (setsid), so it outlives this script.
	# 9>&-: the postmaster must not inherit the lock descriptor.
	if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$logf" -w -t "$START_TIMEOUT" start >/dev/null 9>&-; then
		tail -n 30 "$logf" >&2 || true
		die "PostgreSQL $role did not start on port $(pg_port "$role") (log: $logf)"
	fi
	local i
	for ((i = 0; i < START_TIMEOUT * 5; i++)); do
		pg_up "$role" && return 0
		sleep 0.2
	done
	tail -n 30 "$logf" >&2 || true
	die "PostgreSQL $role does not accept connections on port $(pg_port "$role")"
}

# pg_setup ROLE: the databases on a primary (primary | quiet).
pg_setup() {
	local db
	for db in "${DATABASES[@]}"; do
		if [[ -z $(pg_sql "$1" -c "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
			pg_sql "$1" -c "CREATE DATABASE $db"
		fi
	done
}

pg_wait_streaming() {
	local i
	for ((i = 0; i < START_TIMEOUT * 5; i++)); do
		if [[ -n $(pg_sql primary -c "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'") ]]; then
			return 0
		fi
		sleep 0.2
	done
	tail -n 30 "$(dirname "$(pg_data standby)")/postgres.log" >&2 || true
	die "PostgreSQL standby is not streaming from the primary"
}

pg_stop() {
	local role=$1 data
	data=$(pg_data "$role")
	pg_pid_alive "$role" || return 0
	log "stopping PostgreSQL $role"
	if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
		log "pg_ctl stop failed for $role, sending SIGQUIT"
		kill -QUIT "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null || true
	fi
}

# ---------------------------------------------------------------------------------------------
# commands

all_up() { my_up primary && my_up replica && pg_up primary && pg_up standby && pg_up quiet; }

# my_zone_ok: both MariaDB servers have the sandbox's global time_zone.
my_zone_ok() {
	[[ $(my_sql primary -e "SELECT @@global.time_zone" 2>/dev/null) == "$MY_TIME_ZONE" &&
		$(my_sql replica -e "SELECT @@global.time_zone" 2>/dev/null) == "$MY_TIME_ZONE" ]]
}

replication_ok() {
	local io sql
	read -r io sql < <(my_slave_threads 2>/dev/null)
	[[ $io == Yes && $sql == Yes ]] || return 1
	[[ -n $(pg_sql primary -c "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null) ]]
}

with_lock() {
	mkdir -p "$(dirname "$LOCK_FILE")"
	exec 9>"$LOCK_FILE"
	if ! flock -w 300 9; then
		die "another sandbox.sh holds $LOCK_FILE for more than 300s"
	fi
}

cmd_env() {
	cat <<EOF
export OSC_MYSQL_HOST=$HOST
export OSC_MYSQL_PORT=$MY_PRIMARY_PORT
export OSC_MYSQL_USER=root
export OSC_MYSQL_REPLICA_PORT=$MY_REPLICA_PORT
export OSC_PG_HOST=$HOST
export OSC_PG_PORT=$PG_PRIMARY_PORT
export OSC_PG_USER=postgres
export OSC_PG_STANDBY_PORT=$PG_STANDBY_PORT
export OSC_PG_QUIET_PORT=$PG_QUIET_PORT
export OSC_PG_DSN=postgres://postgres@$HOST:$PG_PRIMARY_PORT/osc_test?sslmode=disable
export OSC_SANDBOX_TLS_CA=$SANDBOX_DIR/tls/ca.pem
EOF
}

summary() {
	echo "osc sandbox up ($SANDBOX_DIR):"
	echo "  MariaDB    primary $HOST:$MY_PRIMARY_PORT  replica $HOST:$MY_REPLICA_PORT  (user root, no password)"
	echo "  PostgreSQL primary $HOST:$PG_PRIMARY_PORT  standby $HOST:$PG_STANDBY_PORT  quiet $HOST:$PG_QUIET_PORT  (user postgres, trust)"
	echo "  databases: ${DATABASES[*]}"
	cmd_env
}

cmd_up() {
	with_lock
	if [[ -f $MARKER ]] && all_up && replication_ok && my_zone_ok && pg_current primary && pg_current standby && pg_current quiet; then
		summary
		return 0
	fi
	ensure_packages
	ensure_users
	if [[ -e $SANDBOX_DIR && ! -f $MARKER ]] && [[ -n $(ls -A "$SANDBOX_DIR") ]]; then
		die "$SANDBOX_DIR exists and is not an osc sandbox; set OSC_SANDBOX_DIR to another directory"
	fi
	mkdir -p "$SANDBOX_DIR"
	chmod 755 "$SANDBOX_DIR"
	touch "$MARKER"
	tls_certs

	my_start primary
	my_time_zone primary
	my_setup_primary
	my_start replica
	my_time_zone replica
	my_setup_replica
	my_wait_replica

	pg_init primary
	pg_start primary
	pg_setup primary
	pg_init_standby
	pg_start standby
	pg_wait_streaming
	pg_init quiet
	pg_start quiet
	pg_setup quiet

	summary
}

cmd_down() {
	with_lock
	if [[ ! -e $SANDBOX_DIR ]]; then
		log "nothing to do: $SANDBOX_DIR does not exist"
		return 0
	fi
	[[ -f $MARKER ]] || die "$SANDBOX_DIR is not an osc sandbox (no $MARKER); refusing to touch it"
	pg_stop quiet
	pg_stop standby
	pg_stop primary
	my_stop replica
	my_stop primary
	rm -rf "$SANDBOX_DIR"
	log "sandbox stopped and $SANDBOX_DIR removed"
}

cmd_status() {
	local ok=0 name
	report() {
		if "$2" "$3"; then
			printf '%-20s up    %s:%s\n' "$1" "$HOST" "$4"
		else
			printf '%-20s down  %s:%s\n' "$1" "$HOST" "$4"
			ok=1
		fi
	}
	report "mariadb primary" my_up primary $MY_PRIMARY_PORT
	report "mariadb replica" my_up replica $MY_REPLICA_PORT
	report "postgres primary" pg_up primary $PG_PRIMARY_PORT
	report "postgres standby" pg_up standby $PG_STANDBY_PORT
	report "postgres quiet" pg_up quiet $PG_QUIET_PORT
	return $ok
}

main() {
	case "${1:-}" in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env) cmd_env ;;
	*)
		echo "usage: $0 up|down|status|env" >&2
		exit 2
		;;
	esac
}

main "$@"
