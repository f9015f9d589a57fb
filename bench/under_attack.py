#!/usr/bin/env python3
"""Under attack: sotto-aggregator against peers that never authenticate, measured from outside.

Written from protos/ alone, like an attacker's client: a frame is a 4-byte big-endian length and that many bytes
of a sotto.v1.Envelope. Two attacks, each against a fresh aggregator started from --bin-dir:

  memory       N TLS connections (no client certificate, no hello) each announce an 8 MiB frame (00 80 00 00)
               and send nothing more. Reports the aggregator's RSS before and while they are held.
  descriptors  the aggregator runs under a lowered RLIMIT_NOFILE and N plain TCP connections exhaust it.
               Reports the aggregator's CPU time and the log lines it wrote while they are held.

During each attack one real sotto-client (mutual TLS, from 127.0.0.1) asks for a round; the table says whether
and when that round completed. The attack comes from 127.0.0.2, or with --spread from 127.0.0.2-127.0.0.251.

  usage: bench/under_attack.py --bin-dir build/bin --attack memory --connections 200 [--spread] [--label after]
         [--extra-toml 'max_connections = 0'] [--nofile 64] [--hold-s 10]
Prints one Markdown table row.
"""
import argparse
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout_s, poll_s=0.05):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


def write_configs(work, server_extra):
    pki = os.path.join(work, "pki")
    subprocess.run([os.path.join(ROOT, "scripts/make-certs.sh"), pki, "1"], check=True, capture_output=True)
    with open(os.path.join(work, "aggregator.toml"), "w") as f:
        f.write(f"""[server]
port = 0
cert_file = "{pki}/server.pem"
key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
handshake_timeout_s = 30
hello_timeout_s = 30
linger_s = 0.5
{server_extra}
[rounds]
total = 1000
cohort_target = 1
cohort_min = 1
[evaluation]
enabled = false
[state]
dir = "{work}/state"
""")
    with open(os.path.join(work, "client.toml"), "w") as f:
        f.write(f"""[client]
id = "client-1"
max_rounds = 1
[server]
port = PORT
ca_file = "{pki}/ca.pem"
[auth]
cert_file = "{pki}/client-1.pem"
key_file = "{pki}/client-1.key"
[data]
max_examples = 200
[connection]
backoff_initial_s = 0.2
backoff_max_s = 1
give_up_after_s = 120
""")
    return pki


def open_attackers(kind, n, port, ca, spread):
    held, failed = [], 0
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    for i in range(n):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((f"127.0.0.{2 + i % 250}" if spread else "127.0.0.2", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            if kind == "memory":
                s = context.wrap_socket(s, server_hostname="localhost")
                s.sendall(b"\x00\x80\x00\x00")  # announces 8 MiB, then silence
            held.append(s)
        except (OSError, ssl.SSLError):
            failed += 1
    return held, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--attack", choices=["memory", "descriptors"], required=True)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--spread", action="store_true")
    ap.add_argument("--label", default="")
    ap.add_argument("--extra-toml", default="")
    ap.add_argument("--nofile", type=int, default=0)
    ap.add_argument("--hold-s", type=float, default=10)
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix="sotto-attack-")
    try:
        pki = write_configs(work, args.extra_toml.replace("\\n", "\n"))
        command = [os.path.join(args.bin_dir, "sotto-aggregator"), "--config", os.path.join(work, "aggregator.toml")]
        if args.nofile:
            command = ["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--"] + command
        log_path = os.path.join(work, "aggregator.log")
        log = open(log_path, "w")
        aggregator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        port_file = os.path.join(work, "state", "port")
        if not wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30):
            sys.exit("aggregator did not start: " + open(log_path).read())
        port = int(open(port_file).read())
        time.sleep(3)  # the initial model is built (LibTorch loaded) meanwhile
        rss_before, cpu_before, log_before = rss_mib(aggregator.pid), cpu_seconds(aggregator.pid), os.path.getsize(log_path)
        t0 = time.monotonic()
        held, failed = open_attackers(args.attack, args.connections, port, os.path.join(pki, "ca.pem"), args.spread)
        opened_s = time.monotonic() - t0
        client_toml = os.path.join(work, "client.toml")
        with open(client_toml) as f:
            text = f.read().replace("PORT", str(port))
        with open(client_toml, "w") as f:
            f.write(text)
        client_start = time.monotonic()
        client = subprocess.Popen([os.path.join(args.bin_dir, "sotto-client"), "--config", client_toml],
                                  stdout=open(os.path.join(work, "client.log"), "w"), stderr=subprocess.STDOUT)
        client_done = None
        while time.monotonic() - client_start < args.hold_s:
            if client_done is None and client.poll() is not None:
                client_done = time.monotonic() - client_start
            time.sleep(0.05)
        rss_during = rss_mib(aggregator.pid)
        cpu_during = cpu_seconds(aggregator.pid) - cpu_before
        log_lines = open(log_path, errors="replace").read()[log_before:].count("\n")
        log_bytes = os.path.getsize(log_path) - log_before
        for s in held:
            s.close()
        code = client.wait(timeout=150)
        if client_done is None:
            outcome = f"not during the attack; exit {code} {time.monotonic() - client_start - args.hold_s:.1f} s after it"
        else:
            outcome = f"{'round done' if code == 0 else 'exit ' + str(code)} after {client_done:.1f} s"
        aggregator.terminate()
        aggregator.wait(timeout=60)
        label = args.label or os.path.basename(os.path.abspath(args.bin_dir))
        where = "250 addresses" if args.spread else "1 address"
        if args.nofile:
            where += f", RLIMIT_NOFILE {args.nofile}"
        print(f"| {label} | {args.attack} | {args.connections} ({where}) | {len(held)} held, {failed} failed, "
              f"{opened_s:.1f} s | {rss_before:.0f} | {rss_during:.0f} | {cpu_during:.2f} s in {args.hold_s:.0f} s | "
              f"{log_lines} lines, {log_bytes} B | {outcome} |")
    finally:
        if os.environ.get("SOTTO_KEEP_ATTACK_DIR"):
            print("kept", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
