#!/bin/sh
# Report a location to a herd server over HTTP and read it back, with curl.
#
#   examples/http/report.sh [CLIENT [LAT [LON]]]
#
# HERD_URL   the server's http listener (default http://127.0.0.1:14000)
# HERD_TOKEN a token from [http] tokens_file (none: a loopback listener without tokens)
set -eu

url=${HERD_URL:-http://127.0.0.1:14000}
client=${1:-kiwi.cs.ucla.edu}
lat=${2:-34.068930}
lon=${3:-"-118.445127"}

# hcurl is curl with the token, when there is one.
hcurl() {
	if [ -n "${HERD_TOKEN:-}" ]; then
		curl -sS --fail-with-body -H "Authorization: Bearer $HERD_TOKEN" "$@"
	else
		curl -sS --fail-with-body "$@"
	fi
}

# The client id goes into the path URL-encoded ("alice/phone" is alice%2Fphone).
id=$(printf %s "$client" | sed 's/%/%25/g; s|/|%2F|g; s/ /%20/g')

echo "== report (the time is now, in POSIX seconds with nanoseconds)"
hcurl -H 'Content-Type: application/json' \
	-d "{\"client\": \"$client\", \"lat\": $lat, \"lon\": $lon, \"time\": \"$(date +%s.%N)\"}" \
	"$url/v1/locations"
echo

echo "== read it back"
hcurl "$url/v1/clients/$id"
echo

echo "== what is within 10 km, at most 3 places (the AT line is in Herd-At)"
hcurl -D - "$url/v1/clients/$id/places?radius_km=10&bound=3" |
	sed -n '/^Herd-At:/p; /^\r$/,$p' | head -n 20
