"""Load test of `rewardkit serve` on loopback: dynamic batching vs one request per forward.

Starts the server twice in a subprocess on 127.0.0.1 (batching on: --max-batch-items 256;
off: --max-batch-items 1), sends OpenRLHF-style /get_reward requests (one query each, as
OpenRLHF does) from 1, 8 and 32 concurrent clients, and reports throughput and p50/p99
latency. Then a soak: --soak requests at about 4x the measured capacity against a small queue;
every request must end in a result or a 503, and the server's memory must stay flat.
Bounded in count and time; traffic goes to 127.0.0.1 only.

    python bench/serve_load.py [--model smollm2-135m] [--requests 48] [--soak 10000]
    python bench/serve_load.py --hostile-only 0.3 --requests 120   # the hostile mix alone

Hostile mix: a fraction of the requests are bad — malformed JSON, a lone surrogate in the
text, an oversized declared body, an oversized chunked body with no Content-Length, a /rank
past the comparison cap — sent among good ones from 8 clients; every bad one must get a 4xx,
and the good ones' success rate and p99 are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import hardware

QUESTION = "Give me one tip for sleeping better."
ANSWERS = ["Keep a regular bedtime.", "Avoid screens an hour before bed.", "Drink coffee at night.", "I don't know."]
REFERENCE = "Go to bed at the same time every day."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batch_items: int, max_queue: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "rewardkit.cli.main", "serve", "--model", model, "--host", "127.0.0.1",
               "--port", str(port), "--max-batch-items", str(batch_items), "--max-queue", str(max_queue),
               "--max-length", "512"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body(i: int) -> dict:
    return {"query": [f"{QUESTION}\n{ANSWERS[i % len(ANSWERS)]}"], "prompts": [f"{QUESTION}\n"], "labels": [REFERENCE]}


async def load(port: int, clients: int, total: int, deadline_s: float) -> dict:
    latencies, codes = [], []
    counter = iter(range(total))
    stop = time.perf_counter() + deadline_s

    async def client(ac: httpx.AsyncClient):
        for i in counter:
            if time.perf_counter() > stop:
                return
            start = time.perf_counter()
            response = await ac.post("/get_reward", json=body(i))
            latencies.append(time.perf_counter() - start)
            codes.append(response.status_code)

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 limits=httpx.Limits(max_connections=clients + 4)) as ac:
        await asyncio.gather(*[client(ac) for _ in range(clients)])
    elapsed = time.perf_counter() - start
    ok = [lat for lat, c in zip(latencies, codes) if c == 200]
    ok.sort()
    pick = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] * 1000 if ok else float("nan")  # noqa: E731
    return {"sent": len(codes), "ok": len(ok), "busy_503": codes.count(503), "other": len(codes) - len(ok) - codes.count(503),
            "throughput": len(ok) / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


async def soak(port: int, pid: int, total: int, rate: float) -> dict:
    codes: list[int] = []
    memory = [rss_mb(pid)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300,
                                 limits=httpx.Limits(max_connections=256)) as ac:
        async def one(i):
            try:
                response = await ac.post("/get_reward", json=body(i))
                codes.append(response.status_code)
            except httpx.HTTPError:
                codes.append(-1)

        tasks = []
        start = time.perf_counter()
        for i in range(total):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
            if i % 500 == 0:
                memory.append(rss_mb(pid))
        await asyncio.gather(*tasks)
        memory.append(rss_mb(pid))
    return {"sent": total, "answered": len(codes), "ok": codes.count(200), "busy_503": codes.count(503),
            "lost_or_error": len([c for c in codes if c not in (200, 503)]) + total - len(codes),
            "rss_mb_first": memory[1] if len(memory) > 1 else memory[0], "rss_mb_last": memory[-1], "rss_mb_max": max(memory),
            "rss_trace_mb": [round(m) for m in memory]}


def hostile_request(i: int):
    """(method kwargs, expected status class) for the i-th bad request of the mix."""
    kind = i % 5
    if kind == 0:
        return {"url": "/get_reward", "content": b"{not json", "headers": {"content-type": "application/json"}}, 400
    if kind == 1:
        text = '{"query": ["q\\ud800 a"], "prompts": ["q"], "labels": ["r"]}'
        return {"url": "/get_reward", "content": text.encode(), "headers": {"content-type": "application/json"}}, 400
    if kind == 2:
        return {"url": "/get_reward", "content": b" " * (9 * 2**20), "headers": {"content-type": "application/json"}}, 413

    async def chunks():
        for _ in range(10):
            yield b" " * 2**20

    if kind == 3:
        return {"url": "/get_reward", "content": chunks(), "headers": {"content-type": "application/json"}}, 413
    many = {"prompt": QUESTION, "responses": [f"answer {j}" for j in range(40)], "strategy": "round_robin"}
    return {"url": "/rank", "json": many}, 400


async def hostile_mix(port: int, clients: int, good: int, fraction: float) -> dict:
    """Good /get_reward requests with bad ones interleaved at `fraction` of the traffic."""
    plan = []
    bad_every = max(1, round(1 / fraction)) if fraction > 0 else 0
    for i in range(good):
        plan.append(("good", i))
        if bad_every and i % bad_every == 0:
            plan.append(("bad", len(plan)))
    results = {"good": [], "bad_ok": 0, "bad_wrong": 0}
    queue = iter(plan)

    async def client(ac: httpx.AsyncClient):
        for kind, i in queue:
            start = time.perf_counter()
            if kind == "good":
                response = await ac.post("/get_reward", json=body(i))
                results["good"].append((response.status_code, time.perf_counter() - start))
                continue
            kwargs, expected = hostile_request(i)
            try:
                response = await ac.post(**kwargs)
                right = response.status_code == expected
            except httpx.HTTPError:  # the server may close an oversized upload early: also a refusal
                right = expected == 413
            results["bad_ok" if right else "bad_wrong"] += 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 limits=httpx.Limits(max_connections=clients + 4)) as ac:
        await asyncio.gather(*[client(ac) for _ in range(clients)])
    ok = sorted(lat for code, lat in results["good"] if code == 200)
    return {"good_sent": len(results["good"]), "good_ok": len(ok),
            "good_p99_ms": ok[min(len(ok) - 1, int(0.99 * len(ok)))] * 1000 if ok else float("nan"),
            "bad_sent": results["bad_ok"] + results["bad_wrong"], "bad_refused_as_expected": results["bad_ok"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=90, help="time cap per level")
    parser.add_argument("--soak", type=int, default=10000)
    parser.add_argument("--soak-only", type=float, default=None, metavar="REQ_PER_S",
                        help="skip the load levels and soak at this rate")
    parser.add_argument("--hostile", type=float, default=0.2, help="share of bad requests in the hostile mix (0: skip)")
    parser.add_argument("--hostile-only", type=float, default=None, metavar="SHARE",
                        help="run only the hostile mix, with this share of bad requests")
    args = parser.parse_args()
    if args.hostile_only is not None:
        args.hostile, args.soak, args.levels = args.hostile_only, 0, []
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"hardware: {hardware()}")
    print(f"settings: model={args.model}, one /get_reward query per request (judge vs a reference, both orders), "
          f"{args.requests} requests per level, cap {args.seconds:.0f}s")
    capacity = {}
    pairs = () if args.soak_only or not args.levels else (("batched", 256), ("unbatched", 1))
    for label, batch_items in pairs:
        port = free_port()
        server = start_server(args.model, port, batch_items, max_queue=4096)
        try:
            asyncio.run(load(port, 2, 4, 60))  # warm-up
            for clients in args.levels:
                r = asyncio.run(load(port, clients, args.requests, args.seconds))
                capacity[(label, clients)] = r
                print(f"  {label:<9} clients={clients:<3} ok={r['ok']:<4} 503={r['busy_503']:<3} "
                      f"throughput={r['throughput']:6.2f} req/s  p50={r['p50_ms']:7.0f} ms  p99={r['p99_ms']:7.0f} ms", flush=True)
        finally:
            server.terminate()
            server.wait(30)
    for clients in args.levels if pairs else ():
        b, u = capacity[("batched", clients)], capacity[("unbatched", clients)]
        print(f"  ratio at {clients} clients: throughput {b['throughput'] / u['throughput']:.2f}x, "
              f"p99 {b['p99_ms'] / u['p99_ms']:.2f}x (batched / unbatched)")
    if args.hostile:
        port = free_port()
        server = start_server(args.model, port, 256, max_queue=4096)
        try:
            asyncio.run(load(port, 2, 4, 60))  # warm-up
            r = asyncio.run(hostile_mix(port, 8, args.requests, args.hostile))
        finally:
            server.terminate()
            server.wait(30)
        print(f"hostile mix ({args.hostile:.0%} bad, 8 clients): good requests {r['good_ok']}/{r['good_sent']} answered "
              f"200, p99 {r['good_p99_ms']:.0f} ms; bad requests refused as expected {r['bad_refused_as_expected']}/"
              f"{r['bad_sent']}", flush=True)
    if args.soak:
        rate = args.soak_only or 4 * max(r["throughput"] for (label, _), r in capacity.items() if label == "batched")
        port = free_port()
        server = start_server(args.model, port, 256, max_queue=64)
        try:
            r = asyncio.run(soak(port, server.pid, args.soak, rate))
        finally:
            server.terminate()
            server.wait(30)
        print(f"soak: {r['sent']} requests at {rate:.1f} req/s (~4x capacity), queue 64: ok {r['ok']}, 503 {r['busy_503']}, "
              f"lost/errors {r['lost_or_error']}; server RSS {r['rss_mb_first']:.0f} → {r['rss_mb_last']:.0f} MB "
              f"(max {r['rss_mb_max']:.0f})")
        print(f"soak: server RSS every 500 requests (MB): {r['rss_trace_mb']}")


if __name__ == "__main__":
    main()
