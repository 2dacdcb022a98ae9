#!/usr/bin/env python3
"""Receivers for scripts/bench-alerts.sh: an HTTP endpoint (the webhook), a
UDP syslog socket, a watcher of the ECS file, and an HTTP endpoint that
accepts and never answers (an output that hangs). Each logs, as one JSON
line, when it first saw each incident id: {"output", "incident", "t"}."""
import json, re, socket, sys, threading, time, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log_path, web_port, udp_port, hang_port, ecs_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
lock = threading.Lock()
seen = set()
INC = re.compile(rb"INC-\d+")

def note(output, data):
    t = time.time()
    for inc in set(INC.findall(data)):
        key = (output, inc)
        with lock:
            if key in seen:
                continue
            seen.add(key)
            with open(log_path, "a") as f:
                f.write(json.dumps({"output": output, "incident": inc.decode(), "t": t}) + "\n")

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        note("webhook", body)
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", udp_port))
    while True:
        note("syslog", s.recv(65536))

def hang():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", hang_port)); s.listen(64)
    held = []
    while True:
        c, _ = s.accept(); held.append(c)

def ecs():
    pos = 0
    while True:
        try:
            with open(ecs_path, "rb") as f:
                f.seek(pos); data = f.read(); pos += len(data)
            if data:
                note("ecs", data)
        except FileNotFoundError:
            pass
        time.sleep(0.002)

for fn in (udp, hang, ecs):
    threading.Thread(target=fn, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", web_port), Hook).serve_forever()
