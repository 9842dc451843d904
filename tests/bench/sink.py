"""Benchmark sink: aiosmtpd with STARTTLS + AUTH (throw-away CA) that reads
DATA in bulk.  Writes DIR/port, DIR/ca.pem; runs until killed.
Usage: sink.py DIR [SIZE]: SIZE, when given, is the limit its EHLO offers."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from smtpserver import Certs, Server  # noqa: E402

d = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else None
srv = Server(bulk=True, size_limit=size).start()
os.symlink(Certs.get().ca, os.path.join(d, "ca.pem"))
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.port))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
while True:
    time.sleep(3600)
