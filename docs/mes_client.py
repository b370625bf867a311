#!/usr/bin/env python3
"""mes_client.py -- a small client of ifpp-agent's MES socket (docs/mes-protocol.md), standard library only.

Examples:
  mes_client.py --socket /run/ifpp-station/mes.sock provision DUT-000123 --slot slot-01 --complete
  mes_client.py query station | query slot slot-01 | query dut DUT-000123
  mes_client.py stock
  mes_client.py recover slot-01   # the card in slot-01: its reserved or in-doubt BPPs resolved
  mes_client.py report --dir /media/qa-stick [--day 2026-11-25]   # the day's files; prints each SHA-256
  mes_client.py report --out /media/qa-stick/plr.der              # the signed report alone
  mes_client.py events            # prints every event, one JSON object a line, until interrupted

Exit codes follow ifppctl: 0 PASS/ok, 1 station failure, 2 usage, 3 refused, 4 DUT failure.
"""
import argparse
import itertools
import json
import os
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
    r = sub.add_parser("recover")
    r.add_argument("slot")
    w = sub.add_parser("report")
    dest = w.add_mutually_exclusive_group(required=True)
    dest.add_argument("--dir", help="removable media: the day's signed report, CSV and HTML summary")
    dest.add_argument("--out", help="a file on removable media: the signed report alone")
    w.add_argument("--day", help="YYYY-MM-DD (UTC)")
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
    if a.cmd == "recover":
        rid = c.send("recover", slot=a.slot)
        r = c.reply(rid)
        if r.get("ok"):
            r = c.reply(rid)  # accepted; now the recovery's end
        print(json.dumps(r, indent=1))
        if not r.get("ok"):
            return 3 if r.get("error") in ("refused", "busy", "not-found") else 2 if r.get("error") == "bad-request" else 1
        return EXIT.get(r.get("result"), 1)
    if a.cmd == "report":
        fields = {"dir": os.path.abspath(a.dir)} if a.dir else {"out": os.path.abspath(a.out)}
        if a.day:
            fields["day"] = a.day
        r = c.request("report", **fields)
        if r.get("ok"):
            for f in r.get("files", []):
                print("%s  %s" % (f["sha256"], f["name"]))  # as sha256sum prints them
            return 0
        print(json.dumps(r, indent=1))
        return 3 if r.get("error") in ("refused", "busy") else 2 if r.get("error") == "bad-request" else 1
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
