#!/usr/bin/env python3
"""Report locations to a herd server over HTTP and read them back.

Standard library only:

    examples/http/report.py [--url URL] [--token TOKEN] CLIENT LAT LON
    examples/http/report.py --get CLIENT
    examples/http/report.py --places CLIENT --radius-km 10 --bound 3

HERD_URL and HERD_TOKEN in the environment set the defaults of --url and
--token.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def call(url, token, method, path, body=None):
    """Send one request; return (status, headers, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=15) as res:
            return res.status, res.headers, json.load(res)
    except urllib.error.HTTPError as err:
        # Every error of the API is {"error": "..."}.
        return err.code, err.headers, json.load(err)


def client_path(client):
    return "/v1/clients/" + urllib.parse.quote(client, safe="")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("HERD_URL", "http://127.0.0.1:14000"))
    p.add_argument("--token", default=os.environ.get("HERD_TOKEN", ""))
    p.add_argument("--get", metavar="CLIENT", help="read a client's location")
    p.add_argument("--places", metavar="CLIENT", help="what is near a client")
    p.add_argument("--radius-km", default="10")
    p.add_argument("--bound", default="5")
    p.add_argument("report", nargs="*", metavar="CLIENT LAT LON")
    a = p.parse_args()

    if a.get:
        status, _, body = call(a.url, a.token, "GET", client_path(a.get))
    elif a.places:
        q = urllib.parse.urlencode({"radius_km": a.radius_km, "bound": a.bound})
        status, headers, body = call(a.url, a.token, "GET", client_path(a.places) + "/places?" + q)
        if status == 200:
            print("Herd-At:", headers["Herd-At"])
    elif len(a.report) == 3:
        client, lat, lon = a.report
        # The time as a string keeps every digit (a float cannot hold nanoseconds).
        ns = time.time_ns()
        report = {"client": client, "lat": float(lat), "lon": float(lon), "time": "%d.%09d" % divmod(ns, 10**9)}
        status, _, body = call(a.url, a.token, "POST", "/v1/locations", report)
    else:
        p.error("give CLIENT LAT LON, --get CLIENT or --places CLIENT")

    json.dump(body, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
