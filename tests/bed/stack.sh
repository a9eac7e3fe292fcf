#!/bin/bash
# stack.sh — an isolated PC/SC stack for tests and the demo.
#
#   stack.sh start DIR [--driver vpcd|pcsctap] [--driver-path PATH]
#                      [--driver-opts OPTS] [--card test|vicc|none]
#                      [--card-args "ARGS"] [--owner PID] [--name NAME]
#                      [--reversed]
#   stack.sh stop DIR
#   stack.sh pcscd-stop DIR | pcscd-start DIR
#
# start: pcscd in a private mount namespace (its /run/pcscd is DIR), a
# virtual reader on a pair of free loopback ports, and a virtual card (with
# --reversed the card listens and the driver connects to it).  It
# returns once pcscd answers and the card is seen in the reader (bounded
# waits, no fixed sleeps) and writes DIR/env, a file to source:
#   PCSCLITE_CSOCK_NAME BED_READER BED_PORT BED_CARD_LOG BED_DIR
# With --owner, a watchdog stops the stack when that process dies, so an
# interrupted test leaves nothing behind.
#
# stop: stops exactly the processes that start recorded (DIR/*.bedpid) and
# releases the ports.  Both are idempotent.
#
# pcscd-stop / pcscd-start: kill only pcscd (SIGKILL, a crash: its
# clients' connections break), then start it again with the same reader.conf and
# wait until the card, which keeps trying to reach the reader, is seen
# again.  The card, the watchdog and the ports are kept.
#
# Needs root (mount namespaces).  Environment: PCSCTAP (the pcsctap
# executable, for the test card), BED_WAIT (the bedwait helper),
# PCSCTAP_DRIVER (libifdpcsctap.so for --driver pcsctap).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port_locks=/tmp/pcsctap-bed-ports
vpcd_driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

die() {
	echo "stack.sh: $*" >&2
	exit 1
}

# A port is free when no TCP socket has it as its local port, in any state
# (/proc/net/tcp{,6}): a connection's port keeps the driver from binding it.
port_in_use() {
	awk -v port="$(printf ':%04X' "$1")" \
		'FNR > 1 && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Reserve an even port P with P+1 free too (vpcd's two slots); mkdir makes
# the reservation atomic between parallel tests.
reserve_ports() {
	local tries=0 p owner
	mkdir -p "$port_locks"
	# Reclaim reservations of stacks whose directory is gone (a crashed run).
	for owner in "$port_locks"/*/owner; do
		[ -f "$owner" ] && [ ! -d "$(cat "$owner")" ] && rm -rf "$(dirname "$owner")"
	done
	# Below the kernel's ephemeral range, which outgoing connections (the
	# cards', pcscd's clients') take their ports from.
	local low
	read -r low _ < /proc/sys/net/ipv4/ip_local_port_range || low=32768
	[ "$low" -ge 22000 ] || low=50000	# a range that low: share it, as before
	while [ $tries -lt 200 ]; do
		p=$(( (RANDOM % ((low - 20000) / 2)) * 2 + 20000 ))
		tries=$((tries + 1))
		if port_in_use "$p" || port_in_use $((p + 1)); then
			continue
		fi
		if mkdir "$port_locks/$p" 2>/dev/null; then
			echo "$dir" > "$port_locks/$p/owner"
			echo "$p"
			return 0
		fi
	done
	return 1
}

# pid_alive PID: true while PID runs (a zombie counts as gone).
pid_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

cmd_stop() {
	local dir=$1 f
	[ -d "$dir" ] || return 0
	# The watchdog first, so it does not race us; never ourselves.
	for f in watchdog card pcscd; do
		[ -f "$dir/$f.bedpid" ] || continue
		local pid
		pid=$(cat "$dir/$f.bedpid")
		if [ "$pid" != "$$" ] && [ "$pid" != "${BASHPID:-}" ]; then
			stop_pid "$pid"
		fi
		rm -f "$dir/$f.bedpid"
	done
	if [ -f "$dir/port" ]; then
		rm -rf "${port_locks:?}/$(cat "$dir/port")"
		rm -f "$dir/port"
	fi
	rm -f "$dir/pcscd.comm" "$dir/pcscd.pid"
	return 0
}

wait_for() {
	# wait_for TENTHS DESCRIPTION COMMAND...: poll COMMAND with a bound.
	local tenths=$1 what=$2 i
	shift 2
	for i in $(seq "$tenths"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "stack.sh: timed out waiting for $what" >&2
	return 1
}

pcscd_ready() {
	[ -S "$dir/pcscd.comm" ] && grep -q "daemon ready" "$dir/pcscd.log" 2>/dev/null
}

# start_card KIND PORT MODE ARGS: the virtual card, connecting to the
# reader (MODE connect) or waiting for it (MODE listen: vpcd's reversed mode).
start_card() {
	local kind=$1 port=$2 mode=$3 card_args=$4
	case $kind in
	none) return 0 ;;
	test)
		[ -x "${PCSCTAP:-}" ] || die "PCSCTAP must name the pcsctap executable"
		# shellcheck disable=SC2086
		"$PCSCTAP" card --$mode "127.0.0.1:$port" --log "$dir/card.log" $card_args \
			> "$dir/card.out" 2>&1 < /dev/null &
		;;
	vicc)
		[ -x /usr/bin/vicc ] || die "vicc is not installed (vsmartcard-vpicc)"
		# Debian's vicc imports Crypto, Debian ships Cryptodome; and its
		# module is not on sys.path (NOTES-pcsc.md).
		mkdir -p "$dir/pylib"
		ln -sfn /usr/lib/python3/dist-packages/Cryptodome "$dir/pylib/Crypto"
		local reversed=""
		[ "$mode" = listen ] && reversed=--reversed
		# shellcheck disable=SC2086
		PYTHONPATH=/usr/lib/python3/site-packages/virtualsmartcard:$dir/pylib \
			/usr/bin/python3 /usr/bin/vicc -t iso7816 -H 127.0.0.1 -P "$port" $reversed $card_args \
			> "$dir/card.out" 2>&1 < /dev/null &
		;;
	*) die "unknown card $kind" ;;
	esac
	echo $! > "$dir/card.bedpid"
}

start_pcscd() {
	local pcscd_bin
	pcscd_bin=$(command -v pcscd || echo /usr/sbin/pcscd)
	# exec keeps one PID from setsid to pcscd, so the recorded PID is pcscd's.
	setsid unshare -m --propagation private sh -c \
		'mount --bind "$1" /run/pcscd && exec "$2" --foreground --debug --apdu --config "$1/reader.conf"' \
		sh "$dir" "$pcscd_bin" > "$dir/pcscd.log" 2>&1 < /dev/null &
	# pcscd writes a pcscd.pid of its own into DIR: ours is named apart.
	echo $! > "$dir/pcscd.bedpid"
}

cmd_pcscd_stop() {
	dir=$1
	local pid i
	[ -f "$dir/pcscd.bedpid" ] || die "$dir: no pcscd recorded"
	pid=$(cat "$dir/pcscd.bedpid")
	# SIGKILL: a crash, no goodbye to clients or driver.
	pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	for i in $(seq 100); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	pid_alive "$pid" && die "pcscd $pid did not die"
	rm -f "$dir/pcscd.bedpid" "$dir/pcscd.comm" "$dir/pcscd.pid"
}

cmd_pcscd_start() {
	local name
	dir=$1
	[ -f "$dir/reader.conf" ] && [ -f "$dir/port" ] || die "$dir: not a started stack"
	[ -f "$dir/pcscd.bedpid" ] && pid_alive "$(cat "$dir/pcscd.bedpid")" && die "$dir: pcscd is running"
	# The previous log is kept for the record.
	[ -f "$dir/pcscd.log" ] && cat "$dir/pcscd.log" >> "$dir/pcscd.log.old"
	start_pcscd
	wait_for 100 "pcscd to start (see $dir/pcscd.log)" pcscd_ready || return 1
	[ -f "$dir/card.bedpid" ] || return 0
	name=$(sed -n 's/^FRIENDLYNAME "\(.*\)"$/\1/p' "$dir/reader.conf")
	PCSCLITE_CSOCK_NAME=$dir/pcscd.comm "${BED_WAIT:-$here/bedwait}" "$name 00 00" present 15000 || {
		echo "stack.sh: the card never came back (see $dir/pcscd.log)" >&2
		return 1
	}
}

cmd_start() {
	dir=$1
	shift
	local driver=vpcd driver_path="" driver_opts="" card=test card_args="" owner="" name="" reversed=""
	while [ $# -gt 0 ]; do
		case $1 in
		--driver) driver=$2; shift ;;
		--driver-path) driver_path=$2; shift ;;
		--driver-opts) driver_opts=$2; shift ;;
		--card) card=$2; shift ;;
		--card-args) card_args=$2; shift ;;
		--owner) owner=$2; shift ;;
		--name) name=$2; shift ;;
		--reversed) reversed=1 ;;
		*) die "unknown option $1" ;;
		esac
		shift
	done
	[ "$(id -u)" = 0 ] || die "needs root (private mount namespace for pcscd)"
	command -v pcscd >/dev/null || [ -x /usr/sbin/pcscd ] || die "pcscd is not installed"
	case $driver in
	vpcd) driver_path=${driver_path:-$vpcd_driver} ;;
	pcsctap) driver_path=${driver_path:-${PCSCTAP_DRIVER:-}} ;;
	*) die "unknown driver $driver" ;;
	esac
	[ -f "$driver_path" ] || die "reader driver '$driver_path' not found"

	mkdir -p "$dir" /run/pcscd || die "cannot create $dir"
	dir=$(cd "$dir" && pwd)
	cmd_stop "$dir"

	local port
	port=$(reserve_ports) || die "no free port pair"
	echo "$port" > "$dir/port"
	name=${name:-Bed$port}

	local devicename="/dev/null:$port"
	if [ -n "$reversed" ]; then
		# Reversed mode: the card listens, the driver connects to it.
		devicename="127.0.0.1:$port"
		start_card "$card" "$port" listen "$card_args"
	fi
	[ -n "$driver_opts" ] && devicename="$devicename:$driver_opts"
	cat > "$dir/reader.conf" <<-EOF
	FRIENDLYNAME "$name"
	DEVICENAME $devicename
	LIBPATH $driver_path
	CHANNELID $port
	EOF

	start_pcscd

	if [ -n "$owner" ]; then
		(
			exec </dev/null >/dev/null 2>&1
			while kill -0 "$owner" 2>/dev/null && [ -f "$dir/port" ]; do
				sleep 0.5
			done
			"$here/stack.sh" stop "$dir"
		) &
		echo $! > "$dir/watchdog.bedpid"
	fi

	cat > "$dir/env" <<-EOF
	PCSCLITE_CSOCK_NAME=$dir/pcscd.comm
	BED_READER='$name 00 00'
	BED_READER2='$name 00 01'
	BED_PORT=$port
	BED_CARD_LOG=$dir/card.log
	BED_DIR=$dir
	EOF
	: > "$dir/card.log"

	if ! wait_for 100 "pcscd to start (see $dir/pcscd.log)" pcscd_ready; then
		cmd_stop "$dir"
		return 1
	fi

	[ -z "$reversed" ] && start_card "$card" "$port" connect "$card_args"

	if [ "$card" != none ]; then
		if ! PCSCLITE_CSOCK_NAME=$dir/pcscd.comm "${BED_WAIT:-$here/bedwait}" "$name 00 00" present 15000; then
			echo "stack.sh: the card never showed up in the reader (see $dir/pcscd.log, $dir/card.out)" >&2
			cmd_stop "$dir"
			return 1
		fi
	fi
	return 0
}

case ${1:-} in
start)
	[ $# -ge 2 ] || die "usage: stack.sh start DIR [OPTIONS]"
	shift
	cmd_start "$@"
	;;
stop)
	[ $# -eq 2 ] || die "usage: stack.sh stop DIR"
	cmd_stop "$2"
	;;
pcscd-stop|pcscd-start)
	[ $# -eq 2 ] || die "usage: stack.sh $1 DIR"
	d=$(cd "$2" 2>/dev/null && pwd) || die "no stack at $2"
	if [ "$1" = pcscd-stop ]; then
		cmd_pcscd_stop "$d"
	else
		cmd_pcscd_start "$d"
	fi
	;;
*)
	die "usage: stack.sh start|stop|pcscd-stop|pcscd-start DIR [OPTIONS]"
	;;
esac
