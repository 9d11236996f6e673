#!/usr/bin/env bash
# netns-test.sh — a herd across "machines": each server in its own Linux
# network namespace with its own IP address, joined by veth pairs to a bridge
# that lives in a namespace of its own (the root namespace is not touched).
#
#   sudo scripts/netns-test.sh
#
# What it checks (one test; the last line is "netns: N passed, M failed"):
#   1. five `herd serve NAME` processes, one per namespace, on 10.213.0.11–15,
#      with peer links over mutual TLS (certificates made by `herd certs`),
#      bring up all six links of the default topology;
#   1b. a stranger on another "machine" speaking the peer protocol in plain
#      text to a peer port is refused;
#   2. an IAMAT sent to Hands reaches Welsh, the server farthest from it
#      (Hands → Goloman/Wilkes → Holiday → Welsh), byte for byte;
#   3. with Welsh's cable pulled (its veth end on the bridge set down), a newer
#      IAMAT reaches every other server but not Welsh, and Holiday and Welsh
#      both notice the dead link;
#   4. once the cable is back, Welsh catches up within a few seconds without any
#      client resending;
#   5. every server stops cleanly on SIGTERM.
#
# Needs root, iproute2 (installed with apt-get when `ip` is missing), Go, and
# GNU coreutils `timeout`. It sends traffic only to the addresses it creates,
# and removes its namespaces, links, processes and temporary files on exit,
# also when it fails or is interrupted.
#
# Environment:
#   HERD_BIN=path                 test this binary instead of building ./cmd/herd
#   NETNS_KEEP=1                  keep the temporary directory (config, logs)
#   NETNS_SKIP_UNSUPPORTED=1      exit 0 with "netns: skipped" when this host
#                                 cannot create network namespaces (not root,
#                                 no CAP_SYS_ADMIN, no bridge/veth support)
set -euo pipefail
case ${HERD_BIN:-} in "" | /*) ;; *) HERD_BIN=$PWD/$HERD_BIN ;; esac
cd "$(dirname "$0")/.."

SUBNET=10.213.0            # 10.213.0.0/24, private, used only inside our namespaces
CLIENT_PORT=12000          # every host uses the same ports: each has its own IP
PEER_PORT=12100
SERVERS=(Goloman Hands Holiday Welsh Wilkes)
declare -A IP=([Goloman]=$SUBNET.11 [Hands]=$SUBNET.12 [Holiday]=$SUBNET.13 [Welsh]=$SUBNET.14 [Wilkes]=$SUBNET.15)
CLIENT_IP=$SUBNET.100      # a sixth "machine" that plays the mobile client
# The default topology (SPEC §1), as "A B" links.
LINKS=("Goloman Hands" "Goloman Holiday" "Goloman Wilkes" "Hands Wilkes" "Holiday Welsh" "Holiday Wilkes")

FLOOD_DEADLINE=10          # seconds for an update to cross the herd
CUTOFF_DETECT_DEADLINE=10  # seconds for both ends to drop the dead link (dead_after is 2s here)
CATCHUP_DEADLINE=5         # seconds for the cut-off host to catch up once its link is back
STOP_DEADLINE=5            # seconds for a server to exit after SIGTERM

tag="herdnt$$"             # prefix of everything this run creates
brns="$tag-br"
clientns="$tag-client"
tmp=""
herd=""
declare -A NS=() PID=()
for s in "${SERVERS[@]}"; do NS[$s]="$tag-$s"; done
created_ns=()
status=fail                # pass | fail | skip | interrupted

say() { printf '%s netns: %s\n' "$(date +%H:%M:%S)" "$*"; }
ok() { say "ok - $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---------------------------------------------------------------- cleanup
cleanup() {
	local rc=$? s p
	trap - EXIT INT TERM
	set +e
	for s in "${!PID[@]}"; do
		kill -TERM "${PID[$s]}" 2>/dev/null
	done
	for s in "${!PID[@]}"; do
		p=${PID[$s]}
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Anything still running inside our own namespaces was started by us.
	for s in "${created_ns[@]}"; do
		for p in $(ip netns pids "$s" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	# Deleting the bridge's namespace removes the bridge and the veth pairs.
	for s in "${created_ns[@]}"; do
		ip -n "$s" link del br0 2>/dev/null
		ip netns del "$s" 2>/dev/null || say "warning: could not delete namespace $s"
	done
	if [ "$status" = fail ] && [ -n "$tmp" ] && [ -d "$tmp" ]; then
		for s in "${SERVERS[@]}"; do
			[ -f "$tmp/$s.out" ] && { echo "--- $s: stderr (last 15 lines)"; tail -n 15 "$tmp/$s.out"; }
			[ -f "$tmp/logs/$s.log" ] && { echo "--- $s: log (last 15 records, cut to 300 bytes)"; tail -n 15 "$tmp/logs/$s.log" | cut -c1-300; }
		done
	fi
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		if [ "${NETNS_KEEP:-}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	fi
	case $status in
	pass) echo "netns: 1 passed, 0 failed"; exit 0 ;;
	skip) echo "netns: skipped"; exit 0 ;;
	interrupted) echo "netns: 0 passed, 1 failed (interrupted)"; exit 130 ;;
	*) echo "netns: 0 passed, 1 failed"; [ "$rc" -ne 0 ] && exit "$rc"; exit 1 ;;
	esac
}
trap cleanup EXIT
trap 'say "interrupted"; status=interrupted; exit 130' INT TERM

fail() {
	say "FAIL: $*"
	exit 1
}

unsupported() {
	if [ "${NETNS_SKIP_UNSUPPORTED:-}" = 1 ]; then
		say "cannot run here: $* (NETNS_SKIP_UNSUPPORTED=1)"
		status=skip
		exit 0
	fi
	fail "cannot run here: $*"
}

# ---------------------------------------------------------------- preflight
[ "$(id -u)" -eq 0 ] || unsupported "needs root (network namespaces); try: sudo $0"
command -v timeout >/dev/null || fail "\`timeout\` (coreutils) is missing"
if ! command -v ip >/dev/null; then
	command -v apt-get >/dev/null || fail "\`ip\` (iproute2) is missing and apt-get is not available"
	say "installing iproute2"
	timeout 300 apt-get update -qq || fail "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq iproute2 >/dev/null || fail "apt-get install iproute2 failed"
fi
[ -n "${HERD_BIN:-}" ] || command -v go >/dev/null || fail "\`go\` is missing (or set HERD_BIN)"
for n in "$brns" "$clientns" "${NS[@]}"; do
	[ ! -e "/run/netns/$n" ] || fail "namespace $n already exists"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-netns.XXXXXX")
herd="$tmp/herd"
if [ -n "${HERD_BIN:-}" ]; then
	[ -x "$HERD_BIN" ] || fail "HERD_BIN=$HERD_BIN is not an executable"
	cp "$HERD_BIN" "$herd"
	say "using $HERD_BIN"
else
	say "building herd"
	go build -o "$herd" ./cmd/herd || fail "go build failed"
fi

# ---------------------------------------------------------------- network
addns() {
	ip netns add "$1" 2>"$tmp/netns.err" || unsupported "ip netns add: $(cat "$tmp/netns.err")"
	created_ns+=("$1")
	ip -n "$1" link set lo up
}

say "creating namespaces and the bridge on $SUBNET.0/24 (prefix $tag)"
addns "$brns"
ip -n "$brns" link add br0 type bridge 2>"$tmp/netns.err" || unsupported "bridge: $(cat "$tmp/netns.err")"
ip -n "$brns" link set br0 up

# plug NS IP PORT: a veth pair from namespace NS (eth0, address IP) to port
# PORT of the bridge.
plug() {
	local ns=$1 addr=$2 port=$3
	addns "$ns"
	ip -n "$brns" link add "$port" type veth peer name eth0 netns "$ns" 2>"$tmp/netns.err" ||
		unsupported "veth: $(cat "$tmp/netns.err")"
	ip -n "$brns" link set "$port" master br0
	ip -n "$brns" link set "$port" up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}
declare -A PORT=()
i=0
for s in "${SERVERS[@]}"; do
	i=$((i + 1))
	PORT[$s]="vb$i"
	plug "${NS[$s]}" "${IP[$s]}" "${PORT[$s]}"
done
plug "$clientns" "$CLIENT_IP" vbc

# ---------------------------------------------------------------- config
neighbors_of() { # the servers NAME talks with (both directions of LINKS), as a TOML array
	local me=$1 l a b out=""
	for l in "${LINKS[@]}"; do
		read -r a b <<<"$l"
		if [ "$a" = "$me" ]; then out+="${out:+, }\"$b\""; fi
		if [ "$b" = "$me" ]; then out+="${out:+, }\"$a\""; fi
	done
	echo "[$out]"
}
{
	echo "# written by scripts/netns-test.sh: one server per network namespace"
	echo "log_dir = \"$tmp/logs\""
	echo
	echo "[peer]                # short timers so that a pulled cable is noticed quickly"
	echo "heartbeat = \"500ms\""
	echo "dead_after = \"2s\""
	echo "dial_timeout = \"1s\""
	echo "retry_max = \"500ms\""
	echo
	echo "[peer.tls]            # made by herd certs below"
	echo "ca_file = \"$tmp/certs/ca.crt\""
	echo "cert_file = \"$tmp/certs/{name}.crt\""
	echo "key_file = \"$tmp/certs/{name}.key\""
	for s in "${SERVERS[@]}"; do
		echo
		echo "[[server]]"
		echo "name = \"$s\""
		echo "addr = \"${IP[$s]}:$CLIENT_PORT\""
		echo "peer_addr = \"${IP[$s]}:$PEER_PORT\""
		echo "neighbors = $(neighbors_of "$s")"
	done
} >"$tmp/herd.toml"
"$herd" certs -config "$tmp/herd.toml" -dir "$tmp/certs" >"$tmp/certs.out" || fail "herd certs failed: $(cat "$tmp/certs.out")"
say "herd certs wrote $(grep -c '^wrote' "$tmp/certs.out") files"

# ---------------------------------------------------------------- herd
for s in "${SERVERS[@]}"; do
	ip netns exec "${NS[$s]}" "$herd" serve "$s" -config "$tmp/herd.toml" >"$tmp/$s.out" 2>&1 &
	PID[$s]=$!
done
pids=""
for s in "${SERVERS[@]}"; do pids+="${pids:+ }${PID[$s]}"; done
say "started ${SERVERS[*]} (pids $pids)"

# hclient NS NAME LINE…: runs `herd client` in namespace NS against server
# NAME's client address; prints the replies.
hclient() {
	local ns=$1 name=$2
	shift 2
	timeout 5 ip netns exec "$ns" "$herd" client -addr "${IP[$name]}:$CLIENT_PORT" -timeout 3s "$@"
}

# first_line NS NAME ID: the first line of NAME's answer to WHATSAT ID.
first_line() {
	local out
	out=$(hclient "$1" "$2" "WHATSAT $3 10 1" 2>&1) || true
	printf '%s' "${out%%$'\n'*}"
}

# log_count NAME MSG PEER: how many records "MSG" about PEER NAME has logged.
log_count() {
	local f="$tmp/logs/$1.log"
	[ -f "$f" ] || { echo 0; return; }
	grep -F "\"msg\":\"$2\"" "$f" | grep -cF "\"peer\":\"$3\"" || true
}

# wait_at NS NAME ID WANT DEADLINE: polls NAME (from namespace NS) until the
# first line of its WHATSAT ID answer is WANT; prints the time it took in ms.
wait_at() {
	local ns=$1 name=$2 id=$3 want=$4 deadline=$(($(now_ms) + $5 * 1000)) start got
	start=$(now_ms)
	while :; do
		got=$(first_line "$ns" "$name" "$id")
		[ "$got" = "$want" ] && { echo $(($(now_ms) - start)); return 0; }
		[ "$(now_ms)" -lt "$deadline" ] || { say "$name answers: $got" >&2; return 1; }
		sleep 0.1
	done
}

# Every server listens within a few seconds.
deadline=$(($(now_ms) + 10000))
for s in "${SERVERS[@]}"; do
	until [ "$(hclient "$clientns" "$s" 'WHATSAT nobody.invalid 1 1' 2>/dev/null)" = "? WHATSAT nobody.invalid 1 1" ]; do
		kill -0 "${PID[$s]}" 2>/dev/null || fail "$s exited: $(tail -n 3 "$tmp/$s.out")"
		[ "$(now_ms)" -lt "$deadline" ] || fail "$s does not answer on ${IP[$s]}:$CLIENT_PORT"
		sleep 0.1
	done
done
ok "all five servers answer clients from another namespace"

# Both ends of every link report it up.
deadline=$(($(now_ms) + 10000))
for l in "${LINKS[@]}"; do
	read -r a b <<<"$l"
	until [ "$(log_count "$a" 'peer link up' "$b")" -gt 0 ] && [ "$(log_count "$b" 'peer link up' "$a")" -gt 0 ]; do
		[ "$(now_ms)" -lt "$deadline" ] || fail "link $a–$b did not come up"
		sleep 0.1
	done
done
ok "all ${#LINKS[@]} authenticated peer links are up across namespaces"
tls_ups=$(grep -hF '"msg":"peer link up"' "$tmp"/logs/*.log | grep -cF '"auth":"tls"' || true)
[ "$tls_ups" -ge $((2 * ${#LINKS[@]})) ] || fail "only $tls_ups link-up records say auth=tls"
ok "every link is mutual TLS"

# 1b. A stranger on another machine: a plaintext hello to a TLS peer port.
stranger=$(timeout 5 ip netns exec "$clientns" bash -c \
	"exec 3<>/dev/tcp/${IP[Goloman]}/$PEER_PORT; printf 'HERD-PEER 2 Hands Goloman %s\nHERD-PEER-AUTH -\nSYNC 0 0\n' $(printf '0f%.0s' $(seq 16)) >&3; cat <&3" 2>&1) || true
case $stranger in
"HERD-PEER-ERR 2 this port speaks TLS"*) ok "a stranger's plaintext hello from $CLIENT_IP is refused" ;;
*) fail "a stranger's plaintext hello was answered: $stranger" ;;
esac

# 1. Flooding across hosts: Hands → … → Welsh.
id="netns-$$.example"
at1=$(hclient "$clientns" Hands "IAMAT $id +34.068930-118.445127 $(date +%s.%N)") || fail "IAMAT to Hands failed"
case $at1 in "AT Hands "*) ;; *) fail "IAMAT to Hands answered: $at1" ;; esac
ms=$(wait_at "$clientns" Welsh "$id" "$at1" "$FLOOD_DEADLINE") || fail "Welsh did not learn the location within ${FLOOD_DEADLINE}s"
ok "Welsh (3 links from Hands) has Hands' AT line after ${ms} ms"
for s in "${SERVERS[@]}"; do
	wait_at "$clientns" "$s" "$id" "$at1" 2 >/dev/null || fail "$s does not have the location"
done
ok "every server answers with the same AT line"

# 2. Pull Welsh's cable: its veth end on the bridge goes down.
downs_holiday=$(log_count Holiday 'peer link down' Welsh)
downs_welsh=$(log_count Welsh 'peer link down' Holiday)
ups_holiday=$(log_count Holiday 'peer link up' Welsh)
ip -n "$brns" link set "${PORT[Welsh]}" down
say "Welsh cut off (${PORT[Welsh]} down)"
at2=$(hclient "$clientns" Hands "IAMAT $id +34.052235-118.243683 $(date +%s.%N)") || fail "second IAMAT to Hands failed"
case $at2 in "AT Hands "*) ;; *) fail "second IAMAT to Hands answered: $at2" ;; esac
for s in Goloman Hands Holiday Wilkes; do
	wait_at "$clientns" "$s" "$id" "$at2" "$FLOOD_DEADLINE" >/dev/null || fail "$s did not get the update while Welsh was cut off"
done
ok "the update reached Goloman, Hands, Holiday and Wilkes"
# Welsh itself is still reachable from inside its own namespace.
got=$(first_line "${NS[Welsh]}" Welsh "$id")
[ "$got" = "$at1" ] || fail "cut-off Welsh answers \"$got\", want the old \"$at1\""
ok "cut-off Welsh still has the old location"
deadline=$(($(now_ms) + CUTOFF_DETECT_DEADLINE * 1000))
until [ "$(log_count Holiday 'peer link down' Welsh)" -gt "$downs_holiday" ] &&
	[ "$(log_count Welsh 'peer link down' Holiday)" -gt "$downs_welsh" ]; do
	[ "$(now_ms)" -lt "$deadline" ] || fail "Holiday and Welsh did not drop their dead link within ${CUTOFF_DETECT_DEADLINE}s"
	sleep 0.1
done
got=$(first_line "${NS[Welsh]}" Welsh "$id")
[ "$got" = "$at1" ] || fail "cut-off Welsh answers \"$got\", want the old \"$at1\""
ok "Holiday and Welsh dropped the dead link; Welsh still has the old location"

# 3. Plug the cable back in: Welsh catches up by itself.
ip -n "$brns" link set "${PORT[Welsh]}" up
say "Welsh reconnected (${PORT[Welsh]} up)"
ms=$(wait_at "${NS[Welsh]}" Welsh "$id" "$at2" "$CATCHUP_DEADLINE") || fail "Welsh did not catch up within ${CATCHUP_DEADLINE}s of its link coming back"
deadline=$(($(now_ms) + 2000)) # log records are flushed every 100 ms
until [ "$(log_count Holiday 'peer link up' Welsh)" -gt "$ups_holiday" ]; do
	[ "$(now_ms)" -lt "$deadline" ] || fail "Welsh has the update but Holiday logged no new link to it"
	sleep 0.1
done
ok "Welsh caught up ${ms} ms after its link came back"
wait_at "$clientns" Welsh "$id" "$at2" 2 >/dev/null || fail "Welsh is not reachable from the client namespace again"
ok "Welsh answers clients from other namespaces again"

# 4. Clean stop.
for s in "${SERVERS[@]}"; do kill -TERM "${PID[$s]}"; done
for s in "${SERVERS[@]}"; do
	p=${PID[$s]}
	for _ in $(seq $((STOP_DEADLINE * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && fail "$s did not stop within ${STOP_DEADLINE}s of SIGTERM"
	rc=0
	wait "$p" || rc=$?
	unset "PID[$s]"
	[ "$rc" -eq 0 ] || fail "$s exited with status $rc after SIGTERM: $(tail -n 3 "$tmp/$s.out")"
done
ok "every server stopped cleanly on SIGTERM"

status=pass
