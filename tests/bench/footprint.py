#!/usr/bin/env python3
"""The agent's footprint next to its peers, side by side in one run.

Runs, at the same time on this machine, for DURATION seconds:
  - suanli-agent streaming at 1 s to a local aggregator (the aggregator is not counted);
  - Debian's prometheus-node-exporter, scraped once a second (the scraper is not counted);
  - netdata at its default 1 s (its whole process tree: the daemon and its plugins);
  - collectd at Interval 1 with the cpu, memory, load, interface, disk and df plugins.
For each it prints the CPU share of one core (user + system time over the run)
and the peak RSS (VmHWM, summed over the process tree). For the agent it also
prints the bytes on the wire per sample (UDP payload the aggregator received
over the run, divided by the samples stored) next to node_exporter's bytes per scrape.

    python3 tests/bench/footprint.py [DURATION]      # default 60

Needs root (apt-get installs the peers if missing). Nothing leaves the machine.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
HZ = os.sysconf("SC_CLK_TCK")
PEERS = ["prometheus-node-exporter", "collectd-core", "netdata"]


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(pid):
    total = 0.0
    for p in tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def tree_rss(pid):
    total = 0
    for p in tree(pid):
        try:
            total += peak_rss_kib(p)
        except OSError:
            pass
    return total


def wait_for(path, timeout=30):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {path}")
        time.sleep(0.1)


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    missing = [p for p in PEERS if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing)
    sh("cargo", "build", "--release", "-q", "-p", "suanli-aggregator", "-p", "suanli-agent", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="suanli-footprint-")
    os.chmod(work, 0o755)  # netdata drops to its own user and must reach its dirs
    procs = []

    def start(args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        procs.append(p)
        return p

    try:
        # Suanli: aggregator + one enrolled agent at 1 s.
        node = os.path.join(work, "node")
        agg = subprocess.Popen(
            [f"{BIN}/suanli-aggregator", "serve", "--data-dir", node,
             "--quic-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(agg)
        first = agg.stdout.readline()
        http = first.split("http=")[1].strip()
        sh(f"{BIN}/suanli-aggregator", "provider", "create", "--data-dir", node, "--name", "bench",
           "--uscc", "91350100M000100Y43", "--region", "110108", "--industry", "I65",
           capture_output=True)
        join = subprocess.run(
            [f"{BIN}/suanli-aggregator", "token", "create", "--data-dir", node, "--provider", "P00001"],
            check=True, capture_output=True, text=True).stdout.strip()
        state = os.path.join(work, "agent")
        sh(f"{BIN}/suanli-agent", "join", join, "--state-dir", state, capture_output=True)
        agent = start([f"{BIN}/suanli-agent", "run", "--state-dir", state, "--interval", "1s"])

        # node_exporter, scraped every second below.
        exporter = start(["prometheus-node-exporter", "--web.listen-address=127.0.0.1:19100"])

        # netdata in the foreground, 1 s updates, its own dirs.
        nd = os.path.join(work, "netdata")
        for sub in ("cache", "lib", "log"):
            os.makedirs(os.path.join(nd, sub))
        for sub in ("cache", "lib", "log"):
            shutil.chown(os.path.join(nd, sub), "netdata", "netdata")
        with open(os.path.join(nd, "netdata.conf"), "w") as f:
            f.write(f"""[global]
    run as user = netdata
    update every = 1
    cache directory = {nd}/cache
    lib directory = {nd}/lib
    log directory = {nd}/log
[web]
    bind to = 127.0.0.1:19999
""")
        netdata = start(["netdata", "-D", "-c", os.path.join(nd, "netdata.conf")])

        # collectd at 1 s with the usual host plugins, writing nowhere but memory.
        cd = os.path.join(work, "collectd.conf")
        with open(cd, "w") as f:
            f.write(f"""Interval 1
BaseDir "{work}"
PIDFile "{work}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin interface
LoadPlugin disk
LoadPlugin df
""")
        collectd = start(["collectd", "-f", "-C", cd])

        time.sleep(5)  # let every daemon finish starting
        subjects = {
            "suanli-agent (stream at 1 s)": agent.pid,
            "node_exporter (scraped at 1 s)": exporter.pid,
            "netdata (1 s, daemon + plugins)": netdata.pid,
            "collectd (Interval 1)": collectd.pid,
        }
        host0 = hosts(http, node)
        cpu0 = {k: tree_cpu(p) for k, p in subjects.items()}
        t0 = time.time()
        scrape_bytes = []
        while time.time() - t0 < duration:
            tick = time.time()
            with urllib.request.urlopen("http://127.0.0.1:19100/metrics") as r:
                scrape_bytes.append(len(r.read()))
            time.sleep(max(0.0, 1.0 - (time.time() - tick)))
        elapsed = time.time() - t0
        cpu1 = {k: tree_cpu(p) for k, p in subjects.items()}
        host1 = hosts(http, node)

        print(f"run: {elapsed:.0f} s on {os.cpu_count()} cores, all four at once")
        print(f"{'':34} {'CPU % of one core':>18} {'peak RSS MiB':>13}")
        for k, pid in subjects.items():
            share = (cpu1[k] - cpu0[k]) / elapsed * 100
            print(f"{k:34} {share:18.2f} {tree_rss(pid) / 1024:13.1f}")
        samples = host1["samples_stored"] - host0["samples_stored"]
        rx = host1["link"]["rx_bytes"] - host0["link"]["rx_bytes"]
        print(f"suanli bytes on the wire per sample: {rx / max(samples, 1):.0f} "
              f"(UDP payload incl. QUIC/TLS overhead and acks' share, {samples} samples)")
        print(f"node_exporter bytes per scrape: {sum(scrape_bytes) / len(scrape_bytes):.0f} "
              f"(HTTP body only)")
    finally:
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def hosts(http, node):
    token = open(os.path.join(node, "admin.token")).read().strip()
    req = urllib.request.Request(f"http://{http}/api/v1/hosts",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["hosts"][0]


if __name__ == "__main__":
    main()
