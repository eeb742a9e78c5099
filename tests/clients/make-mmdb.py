#!/usr/bin/env python3
"""Writes a small GeoIP database in MaxMind's .mmdb format (GeoLite2-City
layout: an IPv6 tree with IPv4 inside, `location.latitude` and
`location.longitude` as doubles) with PyPI `mmdb-writer`.

usage: make-mmdb.py OUT CIDR=LAT,LON [CIDR=LAT,LON ...]

Prints {"path": OUT, "networks": N} on stdout.
"""
import json
import sys

from mmdb_writer import MMDBWriter, MmdbF64
from netaddr import IPSet


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, rules = sys.argv[1], sys.argv[2:]
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="reel-test-City",
        languages=["en"],
        description="reel integration test database",
    )
    for rule in rules:
        network, _, location = rule.partition("=")
        latitude, _, longitude = location.partition(",")
        writer.insert_network(
            IPSet([network]),
            {
                "location": {
                    "latitude": MmdbF64(float(latitude)),
                    "longitude": MmdbF64(float(longitude)),
                }
            },
        )
    writer.to_db_file(out)
    print(json.dumps({"path": out, "networks": len(rules)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
