"""The tracking phase's load generator, in its own process:
``python -m sequent.bench.loadgen HOST PORT FILE [CONNECTIONS] [--keep-alive]``.

FILE holds one URL path a line. The requests are shuffled (seeded) and shared among
CONNECTIONS threads, each sending one request at a time with a browser's User-Agent
(so the hits count as human). Each request opens its own TCP connection and closes it
(``Connection: close``), as the mail clients and browsers fetching a pixel or following
a link do: every hit comes from a different reader, so no connection is reused. The
latency includes connecting. ``--keep-alive`` reuses one connection per thread instead
(an easier load, for comparison only). Prints one JSON object: requests, answers by
status, seconds, requests per second and latency percentiles.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import sys
import threading
import time

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def _fire(
    host: str,
    port: int,
    paths: list[str],
    latencies: list[float],
    statuses: dict[int, int],
    keep_alive: bool,
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"User-Agent": USER_AGENT, "Connection": "keep-alive" if keep_alive else "close"}
    for path in paths:
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
        if not keep_alive:
            # The next request connects again (http.client reopens a closed connection).
            conn.close()
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
    conn.close()


def run(
    host: str, port: int, paths: list[str], connections: int, keep_alive: bool = False
) -> dict[str, object]:
    """Fire every request of *paths*; the figures of the whole load."""
    random.Random(8).shuffle(paths)
    shares = [paths[n::connections] for n in range(connections)]
    latencies: list[list[float]] = [[] for _ in shares]
    statuses: list[dict[int, int]] = [{} for _ in shares]
    threads = [
        threading.Thread(target=_fire, args=(host, port, share, latencies[n], statuses[n], keep_alive))
        for n, share in enumerate(shares)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    every = sorted(value for share in latencies for value in share)
    answers: dict[str, int] = {}
    for share_statuses in statuses:
        for status, count in share_statuses.items():
            answers[str(status)] = answers.get(str(status), 0) + count
    cuts = statistics.quantiles(every, n=100, method="inclusive") if len(every) > 1 else every * 99
    return {
        "requests": len(every),
        "answers": answers,
        "connections": connections,
        "keep_alive": keep_alive,
        "seconds": round(seconds, 3),
        "per_s": round(len(every) / seconds, 1) if seconds else None,
        "p50_ms": round(cuts[49] * 1000, 2) if cuts else None,
        "p99_ms": round(cuts[98] * 1000, 2) if cuts else None,
    }


def main(argv: list[str]) -> None:
    """Command line: host, port, file of paths, connections, ``--keep-alive``."""
    keep_alive = "--keep-alive" in argv
    argv = [arg for arg in argv if arg != "--keep-alive"]
    host, port, path = argv[0], int(argv[1]), argv[2]
    connections = int(argv[3]) if len(argv) > 3 else 8
    with open(path, encoding="utf-8") as source:
        paths = [line.strip() for line in source if line.strip()]
    print(json.dumps(run(host, port, paths, connections, keep_alive)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
