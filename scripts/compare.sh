#!/usr/bin/env bash
# Measures herd side by side with what a user would run instead, a Redis GEO
# set with replicas, with the same load client (herd bench), and prints the
# table at the top of docs/PERFORMANCE.md.
#
#   scripts/compare.sh            one run of every target
#   RUNS=3 scripts/compare.sh     the median of 3 runs of each figure
#
# Targets, each started afresh for each run, in temporary directories, on
# free 127.0.0.1 ports:
#   redis        Redis, primary + 4 replicas, no persistence
#   redis-aof    Redis, primary + 4 replicas, appendonly with appendfsync always
#   herd         the classic five-server herd, one process per server, in memory
#   herd-durable the same with data_dir and data_sync = "always"
#   herd-secret  herd in memory, its links authenticated by a shared secret
#                (an HMAC on every line)
#   herd-tls     herd in memory, its links over mutual TLS (herd certs)
# (the default targets are the first four; add the last two to TARGETS to
# see what link security costs). The herd rows run in protected mode (no
# credential: peers accepted from loopback only) unless said.
# herd logs every client line (log_dir in the temporary directory), as it
# does when deployed. Every server process runs on CPU $SERVER_CPU, the load
# on CPU $LOAD_CPU (taskset). The load: $CONNS keep-alive connections with
# one update in flight each, the same with $PIPE in flight, and $CONNS
# one-shot workers; each run lasts $DUR after $WARMUP of warm-up and goes to
# the first server (Redis: the primary; herd: Goloman). Redis gets
# "GEOADD herd <lng> <lat> <id>", herd the same update as an IAMAT; each
# moves its client to another of 8 locations around UCLA, so that every
# update changes state (a GEOADD that changes nothing is neither written to
# the append-only file nor replicated). For herd, the time an update takes
# over 3 hops (Hands to Welsh) is measured while the keep-alive load runs.
#
# MODES lists the measurements (default: keepalive pipelined oneshot
# propagation).
# HERD=FILE runs that herd binary instead of one built from this tree.
# PROFILE=DIR records, with perf(1), what CPU $SERVER_CPU does during each
# run, call graphs included, to DIR/<target>-<mode>.perf.data (read with
# `perf report -i FILE`); perf must be installed (linux-perf).
#
# redis-server is installed from the Debian packages when it is missing
# (apt-get, as root). Everything stops by itself: each run is bounded by
# -d and by `timeout`, and every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-1}
DUR=${DUR:-5s}
WARMUP=${WARMUP:-0.5s}
CONNS=${CONNS:-16}
PIPE=${PIPE:-16}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
TARGETS=${TARGETS:-"redis redis-aof herd herd-durable"}
MODES=${MODES:-"keepalive pipelined oneshot propagation"}

need() { command -v "$1" >/dev/null 2>&1; }
install_pkgs() {
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		need sudo || { echo "compare.sh: need root (or sudo) to install $*" >&2; exit 1; }
		sudo=sudo
	fi
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}
missing=()
need redis-server || missing+=(redis-server)
need redis-cli || missing+=(redis-tools)
need jq || missing+=(jq)
need taskset || missing+=(util-linux)
need curl || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then install_pkgs "${missing[@]}"; fi

tmp=$(mktemp -d -t herd-compare-XXXXXX)
pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# HERD=FILE measures that herd binary instead of building this tree (to
# compare two versions in one session).
herd=${HERD:-}
if [ -z "$herd" ]; then
	go build -o "$tmp/herd" ./cmd/herd
	herd=$tmp/herd
fi

# free_port sets port to a 127.0.0.1 port nothing listens on, not handed
# out before.
used=" "
free_port() {
	while :; do
		port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
		case "$used" in *" $port "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			used="$used$port "
			return
		fi
	done
}

# wait_for CMD...: retries CMD for up to 60 s.
wait_for() {
	local i
	for i in $(seq 600); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "compare.sh: timed out waiting for: $*" >&2
	[ ! -s "$tmp/herd-stderr.log" ] || grep -v "peer link up" "$tmp/herd-stderr.log" | head -20 >&2
	return 1
}

# start_redis PERSIST: a primary and 4 replicas; sets target.
start_redis() {
	local persist=$1 primary i dir args p
	free_port
	primary=$port
	for i in 0 1 2 3 4; do
		dir=$tmp/redis-$i
		rm -rf "$dir" && mkdir -p "$dir"
		p=$primary
		if [ "$i" != 0 ]; then free_port; p=$port; fi
		args=(--port "$p" --bind 127.0.0.1 --dir "$dir" --save "" --logfile "$dir/redis.log" --daemonize no)
		if [ "$persist" = yes ]; then
			args+=(--appendonly yes --appendfsync always)
		else
			args+=(--appendonly no)
		fi
		[ "$i" = 0 ] || args+=(--replicaof 127.0.0.1 "$primary")
		taskset -c "$SERVER_CPU" redis-server "${args[@]}" &
		pids+=($!)
		wait_for redis-cli -p "$p" ping
		if [ "$i" != 0 ]; then
			wait_for sh -c "redis-cli -p $p info replication | grep -q 'master_link_status:up'"
		fi
	done
	wait_for sh -c "redis-cli -p $primary info replication | grep -q 'connected_slaves:4'"
	target=127.0.0.1:$primary
	workload=redis
}

# start_herd DURABLE [LINKS]: the classic herd, one `herd serve` per server,
# durable or not, its links in protected mode (LINKS empty), with a shared
# secret (secret) or over mutual TLS (tls); sets target.
start_herd() {
	local durable=$1 links=${2:-} cfg=$tmp/herd.toml n
	rm -rf "$tmp/logs" "$tmp/data"
	declare -A addr peer metrics
	local names=(Goloman Hands Holiday Welsh Wilkes)
	for n in "${names[@]}"; do
		free_port; addr[$n]=127.0.0.1:$port
		free_port; peer[$n]=127.0.0.1:$port
		free_port; metrics[$n]=127.0.0.1:$port
	done
	{
		echo "log_dir = \"$tmp/logs\""
		if [ "$durable" = yes ]; then
			echo "data_dir = \"$tmp/data\""
			echo 'data_sync = "always"'
		fi
		case $links in
		secret)
			"$herd" secret >"$tmp/secret"
			echo "peer_secret_file = \"$tmp/secret\""
			;;
		tls)
			echo '[peer.tls]'
			echo "ca_file = \"$tmp/certs/ca.crt\""
			echo "cert_file = \"$tmp/certs/{name}.crt\""
			echo "key_file = \"$tmp/certs/{name}.key\""
			;;
		esac
		server() {
			echo
			echo '[[server]]'
			echo "name = \"$1\""
			echo "addr = \"${addr[$1]}\""
			echo "peer_addr = \"${peer[$1]}\""
			echo "metrics = \"${metrics[$1]}\""
			echo "neighbors = [$2]"
		}
		server Goloman '"Hands", "Holiday", "Wilkes"'
		server Hands '"Goloman", "Wilkes"'
		server Holiday '"Goloman", "Welsh", "Wilkes"'
		server Welsh '"Holiday"'
		server Wilkes '"Goloman", "Hands", "Holiday"'
	} >"$cfg"
	if [ "$links" = tls ]; then
		rm -rf "$tmp/certs"
		"$herd" certs -config "$cfg" -dir "$tmp/certs" >/dev/null
	fi
	for n in "${names[@]}"; do
		taskset -c "$SERVER_CPU" "$herd" serve "$n" -config "$cfg" 2>>"$tmp/herd-stderr.log" &
		pids+=($!)
	done
	# Every link up at both ends: 12 in the classic herd.
	links_up() {
		local total=0 m c
		for n in "${names[@]}"; do
			m=$(curl -sf "http://${metrics[$n]}/metrics") || return 1
			c=$(grep -c '^herd_peer_link_up{.*} 1$' <<<"$m" || true)
			total=$((total + c))
		done
		[ "$total" = 12 ]
	}
	wait_for links_up
	# Every server answers a WHATSAT from its places (the offline gazetteer,
	# loaded in the background at start): none is still loading when the
	# measuring begins.
	places_ready() {
		"$herd" client -addr "$1" iamat compare.ready >/dev/null &&
			"$herd" client -addr "$1" -json whatsat compare.ready 1 1 | grep -Eq '"status" *: *"(OK|ZERO_RESULTS)"'
	}
	for n in "${names[@]}"; do wait_for places_ready "${addr[$n]}"; done
	target=${addr[Goloman]}
	prop_from=${addr[Hands]} # three hops from Welsh
	prop_to=${addr[Welsh]}
	workload=iamat
}

# server_cpu: the CPU time, in clock ticks, that every server process
# started so far has used.
server_cpu() {
	local p total=0 stat
	for p in "${pids[@]}"; do
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		stat=${stat##*) } # the fields after the command name
		read -r -a f <<<"$stat"
		total=$((total + f[11] + f[12])) # utime, stime
	done
	echo "$total"
}
tick_us=$((1000000 / $(getconf CLK_TCK)))

# server_syscalls: the read and write system calls (syscr + syscw of
# /proc/PID/io) that every server process started so far has made.
server_syscalls() {
	local p total=0 k v
	for p in "${pids[@]}"; do
		while read -r k v; do
			case $k in syscr: | syscw:) total=$((total + v)) ;; esac
		done <"/proc/$p/io" 2>/dev/null || true
	done
	echo "$total"
}
# warmup_s: $WARMUP in seconds ("500ms", "0.5s", "1m" are understood).
warmup_s=$(awk -v d="$WARMUP" 'BEGIN {
	if (d ~ /ms$/) { sub(/ms$/, "", d); print d / 1000 } else if (d ~ /m$/) { sub(/m$/, "", d); print d * 60 } else { sub(/s$/, "", d); print d + 0 } }')

# bench LABEL MODE ARGS...: one herd bench run on CPU $LOAD_CPU; appends
# "target mode throughput p50 p99 errors cpu syscalls" to $tmp/results,
# cpu being the servers' CPU time per update in µs and syscalls their
# reads and writes per update (each over the warm-up and the run, divided
# by the updates of the run scaled to both).
bench() {
	local label=$1 mode=$2
	shift 2
	local out perf_pid=
	if [ -n "${PROFILE:-}" ]; then
		mkdir -p "$PROFILE"
		perf record -q -g -C "$SERVER_CPU" -o "$PROFILE/$label-$mode.perf.data" 2>/dev/null &
		perf_pid=$!
	fi
	local cpu0 cpu1 sys0 sys1
	cpu0=$(server_cpu)
	sys0=$(server_syscalls)
	out=$(timeout 120 taskset -c "$LOAD_CPU" "$herd" bench -q -json -addr "$target" -workload "$workload" \
		-d "$DUR" -warmup "$WARMUP" "$@") || { echo "compare.sh: herd bench failed on $label $mode" >&2; echo "$out" >&2; }
	cpu1=$(server_cpu)
	sys1=$(server_syscalls)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" && wait "$perf_pid" || true
	fi
	jq -r --arg l "$label" --arg m "$mode" --argjson cpu $(((cpu1 - cpu0) * tick_us)) --argjson warm "$warmup_s" \
		--argjson sys $((sys1 - sys0)) \
		'[$l, $m, .herd.throughput, .herd.latency_ns.p50, .herd.latency_ns.p99, .herd.errors,
		  $cpu / (.herd.throughput * (.herd.elapsed_s + $warm)), $sys / (.herd.throughput * (.herd.elapsed_s + $warm))] | @tsv' \
		<<<"$out" >>"$tmp/results" || true
	jq -r --arg l "$label" --arg m "$mode" '"  \($l) \($m): \(.herd.throughput | floor)/s, p50 \(.herd.latency_ns.p50 / 1000 | floor) µs, p99 \(.herd.latency_ns.p99 / 1000 | floor) µs, \(.herd.errors) errors, servers \($cpu / 1000 | floor) ms CPU"' --argjson cpu $(((cpu1 - cpu0) * tick_us)) <<<"$out" >&2 || true
}

# propagation LABEL: how long an update takes over 3 hops (an IAMAT at
# Hands, then WHATSAT at Welsh until it answers with that AT line) while
# the keep-alive load runs at the first server; appends "target
# propagation <load throughput> p50 p99 errors 0" to $tmp/results.
propagation() {
	local label=$1 load_pid out
	timeout 120 taskset -c "$LOAD_CPU" "$herd" bench -q -json -addr "$target" -workload "$workload" \
		-c "$CONNS" -d "$DUR" -warmup "$WARMUP" >"$tmp/load.json" &
	load_pid=$!
	out=$(timeout 120 taskset -c "$LOAD_CPU" "$herd" bench -q -json -workload propagation \
		-from "$prop_from" -to "$prop_to" -d "$DUR" -warmup "$WARMUP") || { echo "compare.sh: propagation failed on $label" >&2; echo "$out" >&2; }
	wait "$load_pid" || echo "compare.sh: the load under propagation failed on $label" >&2
	jq -r --arg l "$label" --argjson load "$(jq .herd.throughput "$tmp/load.json")" \
		'[$l, "propagation", $load, .herd.latency_ns.p50, .herd.latency_ns.p99, .herd.errors, 0, 0] | @tsv' <<<"$out" >>"$tmp/results" || true
	jq -r --arg l "$label" '"  \($l) propagation, 3 hops, under load: p50 \(.herd.latency_ns.p50 / 1000 | floor) µs, p99 \(.herd.latency_ns.p99 / 1000 | floor) µs, \(.herd.requests) samples, \(.herd.errors) errors"' <<<"$out" >&2 || true
}

measure() {
	local label=$1
	case " $MODES " in *" keepalive "*) bench "$label" keepalive -c "$CONNS" ;; esac
	case " $MODES " in *" pipelined "*) bench "$label" pipelined -c "$CONNS" -pipeline "$PIPE" ;; esac
	case " $MODES " in *" oneshot "*) bench "$label" oneshot -c "$CONNS" -mode oneshot ;; esac
	case " $MODES " in *" propagation "*) if [ "$workload" = iamat ]; then propagation "$label"; fi ;; esac
}

: >"$tmp/results"
started=$(date -u +%Y-%m-%dT%H:%MZ)
for run in $(seq "$RUNS"); do
	echo "run $run of $RUNS" >&2
	for t in $TARGETS; do
		case $t in
		redis) start_redis no ;;
		redis-aof) start_redis yes ;;
		herd) start_herd no ;;
		herd-durable) start_herd yes ;;
		herd-secret) start_herd no secret ;;
		herd-tls) start_herd no tls ;;
		*) echo "compare.sh: unknown target $t" >&2; exit 2 ;;
		esac
		measure "$t"
		stop_all
	done
done

# The table: the median of the runs of each figure, and the ratios the
# targets of docs/PERFORMANCE.md are stated in.
echo
echo "Side by side, $started, $(nproc) CPUs, servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU, $CONNS connections, $DUR after $WARMUP, median of $RUNS run(s):"
echo
awk -F'\t' -v targets="$TARGETS" -v pipe="$PIPE" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n ? a[int((n + 1) / 2)] : 0
}
function us(ns) { return ns >= 1e6 ? sprintf("%.2f ms", ns / 1e6) : sprintf("%.0f µs", ns / 1e3) }
function rate(x,   s) {
	s = sprintf("%d", x)
	while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
	return s
}
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
# row: the ratios of target a to target b, when both were measured.
function row(label, a, b) {
	if (a in ka && b in ka) printf "| %s | %s | %s | %s |\n", label, ratio(ka[a], ka[b]), ratio(pl[a], pl[b]), ratio(os[a], os[b])
}
{
	for (f = 3; f <= 8; f++) vals[$1 SUBSEP $2 SUBSEP f] = vals[$1 SUBSEP $2 SUBSEP f] " " $f
}
END {
	name["redis"] = "Redis, primary + 4 replicas, no persistence"
	name["redis-aof"] = "Redis, primary + 4 replicas, `appendfsync always`"
	name["herd"] = "herd, 5 servers, in memory"
	name["herd-durable"] = "herd, 5 servers, `data_dir`, `data_sync = \"always\"`"
	name["herd-secret"] = "herd, 5 servers, in memory, links with a shared secret"
	name["herd-tls"] = "herd, 5 servers, in memory, links over mutual TLS"
	printf "| target | updates/s (keep-alive) | p50 | p99 | servers'"'"' CPU per update | servers'"'"' reads + writes per update | pipelined (%d in flight)/s | oneshot/s | propagation, 3 hops, under keep-alive load: p50 / p99 | errors |\n", pipe
	print "|---|---|---|---|---|---|---|---|---|---|"
	n = split(targets, ts, " ")
	for (i = 1; i <= n; i++) {
		t = ts[i]
		ka[t] = median(t SUBSEP "keepalive" SUBSEP 3)
		pl[t] = median(t SUBSEP "pipelined" SUBSEP 3)
		os[t] = median(t SUBSEP "oneshot" SUBSEP 3)
		errs = median(t SUBSEP "keepalive" SUBSEP 6) + median(t SUBSEP "pipelined" SUBSEP 6) + median(t SUBSEP "oneshot" SUBSEP 6)
		prop = "—"
		if ((t SUBSEP "propagation" SUBSEP 4) in vals)
			prop = us(median(t SUBSEP "propagation" SUBSEP 4)) " / " us(median(t SUBSEP "propagation" SUBSEP 5))
		printf "| %s | %s | %s | %s | %.0f µs | %.1f | %s | %s | %s | %d |\n", name[t], rate(ka[t]), us(median(t SUBSEP "keepalive" SUBSEP 4)),
			us(median(t SUBSEP "keepalive" SUBSEP 5)), median(t SUBSEP "keepalive" SUBSEP 7), median(t SUBSEP "keepalive" SUBSEP 8), rate(pl[t]), rate(os[t]), prop, errs
	}
	print ""
	print "| ratio | keep-alive | pipelined | oneshot |"
	print "|---|---|---|---|"
	row("herd in memory / Redis (no persistence)", "herd", "redis")
	row("herd durable / Redis `appendfsync always`", "herd-durable", "redis-aof")
	row("herd durable / herd in memory", "herd-durable", "herd")
	row("herd, shared secret / protected mode", "herd-secret", "herd")
	row("herd, mutual TLS / protected mode", "herd-tls", "herd")
}' "$tmp/results"
