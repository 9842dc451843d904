"""For `make demo`: a local SMTP server with STARTTLS and AUTH (aiosmtpd and
a throw-away CA, as in the tests).  Writes DIR/ca.pem, DIR/port and each
message it receives to DIR/received-N.eml; runs until killed."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "e2e"))
from smtpserver import PASSWORD, USER, Certs, Server  # noqa: E402

d = sys.argv[1]
srv = Server().start()
os.symlink(Certs.get().ca, os.path.join(d, "ca.pem"))
with open(os.path.join(d, "password"), "w") as f:
    f.write(PASSWORD + "\n")
os.chmod(os.path.join(d, "password"), 0o600)
with open(os.path.join(d, "user"), "w") as f:
    f.write(USER)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.port))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
seen = 0
while True:
    time.sleep(0.05)
    while seen < len(srv.messages):
        seen += 1
        with open(os.path.join(d, "received-%d.eml" % seen), "wb") as f:
            f.write(srv.messages[seen - 1][1])
