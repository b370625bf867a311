#!/usr/bin/env python3
"""mes_client.py -- a small client of ifpp-agent's MES socket (docs/mes-protocol.md), standard library only.

Examples:
  mes_client.py --socket /run/ifpp-station/mes.sock provision DUT-000123 --slot slot-01 --complete
  mes_client.py query station | query slot slot-01 | query dut DUT-000123
  mes_client.py stock
  mes_client.py events            # prints every event, one JSON object a line, until interrupted

Exit codes follow ifppctl: 0 PASS/ok, 1 station failure, 2 usage, 3 refused, 4 DUT failure.
"""
import argparse
import itertools
import json
import socket
import sys

EXIT = {"PASS": 0, "STATION-FAILURE": 1, "REFUSED": 3, "FAIL": 4}


class MesClient:
    """One connection; requests get ids 1, 2, 3 ...; replies are matched by id, events set aside."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="ascii", newline="\n")
        self.ids = itertools.count(1)
        self.events = []

    def send(self, op, **fields):
        rid = str(next(self.ids))
        line = json.dumps(dict(id=rid, op=op, **fields), separators=(",", ":"))
        self.sock.sendall(line.encode("ascii") + b"\n")
        return rid

    def read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the station closed the connection")
        return json.loads(line)

    def reply(self, rid):
        while True:
            msg = self.read()
            if msg.get("id") == rid:
                return msg
            if "event" in msg:
                self.events.append(msg)

    def request(self, op, **fields):
        return self.reply(self.send(op, **fields))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", default="/run/ifpp-station/mes.sock")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("provision")
    p.add_argument("serial")
    p.add_argument("--slot")
    p.add_argument("--profile-type")
    p.add_argument("--complete", action="store_true")
    p.add_argument("--additional-profile", action="store_true")
    q = sub.add_parser("query")
    q.add_argument("what", choices=["station", "slot", "dut"])
    q.add_argument("name", nargs="?")
    sub.add_parser("stock")
    sub.add_parser("events")
    a = ap.parse_args()

    c = MesClient(a.socket)
    if a.cmd == "provision":
        fields = {"serial": a.serial}
        if a.slot:
            fields["slot"] = a.slot
        if a.profile_type:
            fields["profile_type"] = a.profile_type
        if a.complete:
            fields["complete"] = True
        if a.additional_profile:
            fields["additional_profile"] = True
        rid = c.send("provision", **fields)
        r = c.reply(rid)
        if not r.get("ok"):
            print(json.dumps(r))
            return 3 if r.get("error") in ("refused", "busy", "not-found", "bad-request") else 1
        print(json.dumps(r))  # accepted, with the slot
        r = c.reply(rid)      # completed
        print(json.dumps(r))
        return EXIT.get(r.get("result"), 1)
    if a.cmd == "query":
        fields = {"what": a.what}
        if a.what == "slot":
            fields["slot"] = a.name
        elif a.what == "dut":
            fields["serial"] = a.name
        if a.what != "station" and not a.name:
            ap.error("query %s needs a name" % a.what)
        r = c.request("query", **fields)
    elif a.cmd == "stock":
        r = c.request("stock")
    else:
        r = c.request("subscribe")
        try:
            while True:
                print(json.dumps(c.read()), flush=True)
        except (KeyboardInterrupt, ConnectionError):
            return 0
    print(json.dumps(r, indent=1))
    return 0 if r.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
