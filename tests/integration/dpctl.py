"""Talks to fulcrum-dataplane's control socket directly (protocol in
dataplane/control.h), as the tests' stand-in for a control process.

    dpctl.py SOCKET REQUEST_JSON...   prints each response line
    dpctl.py SOCKET --churn N STATE_JSON
        applies N changes derived from STATE_JSON (weights, drain and
        return, a backend added, drained and removed), each checked
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s.makefile("rw")


def call(f, req):
    f.write(json.dumps(req) + "\n")
    f.flush()
    return json.loads(f.readline())


def churn(f, n, state):
    """The sequence cycles so that a backend is only removed after it was
    drained, as an operator would do it."""
    web = next(s for s in state if s["name"] == "web")
    base = [dict(b) for b in web["backends"]]
    extra = web.pop("extra")
    version = 100
    for i in range(n):
        step = i % 5
        backends = [dict(b) for b in base]
        backends[i % len(backends)]["weight"] = 1 + i % 4
        if step == 1:
            backends[(i // 5) % len(backends)]["state"] = "draining"
        if step == 2:
            backends.append({"addr": extra})
        if step == 3:
            backends.append({"addr": extra, "state": "draining"})
        if step == 3 or step == 4:
            time.sleep(0.2)     # the drained backend's flows finish
        web["backends"] = backends
        version += 1
        r = call(f, {"cmd": "apply", "version": version, "services": state})
        if not r.get("ok"):
            sys.exit(f"change {i} refused: {r}")
    print(f"{n} changes applied")


def main():
    f = connect(sys.argv[1])
    if sys.argv[2] == "--churn":
        churn(f, int(sys.argv[3]), json.loads(sys.argv[4]))
        return
    for req in sys.argv[2:]:
        print(json.dumps(call(f, json.loads(req))))


main()
