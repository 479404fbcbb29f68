"""A no-op milter written the plain pymilter way, the peer of bench/milter.ts.

A Milter.Base subclass with the usual callbacks, each returning Milter.CONTINUE, run by
Milter.runmilter (libmilter underneath, one thread per connection). Overriding a callback is how
pymilter learns that the milter wants that step, so the MTA sends all of them and waits for each
answer, as it does for most pymilter milters in the field.

Usage: python3 bench/pymilter_noop.py inet:PORT@127.0.0.1 [--exit-on-stdin-eof]
(the benchmark passes --exit-on-stdin-eof, so that the milter ends when the benchmark does).
Needs Debian's python3-milter (run it with the python3 that package is built for, /usr/bin/python3).
"""

import os
import sys
import threading

import Milter


class NoopMilter(Milter.Base):
    def connect(self, hostname, family, hostaddr):
        return Milter.CONTINUE

    def hello(self, hostname):
        return Milter.CONTINUE

    def envfrom(self, mailfrom, *params):
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *params):
        return Milter.CONTINUE

    def header(self, name, value):
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        return Milter.CONTINUE

    def eom(self):
        return Milter.CONTINUE

    def abort(self):
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE


def exit_on_stdin_eof():
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    args = sys.argv[1:]
    if "--exit-on-stdin-eof" in args:
        args.remove("--exit-on-stdin-eof")
        threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    if len(args) != 1:
        sys.stderr.write("usage: pymilter_noop.py inet:PORT@HOST [--exit-on-stdin-eof]\n")
        sys.exit(2)
    Milter.factory = NoopMilter
    Milter.set_flags(0)
    sys.stdout.write("starting pymilter %s on %s\n" % (Milter.__version__, args[0]))
    sys.stdout.flush()
    Milter.runmilter("pymilter-noop", args[0], 240)


if __name__ == "__main__":
    main()
