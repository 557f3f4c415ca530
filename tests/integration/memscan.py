#!/usr/bin/python3
"""Search the memory of processes for secret strings (run as root), for the tests that prove a
process holds no password it should not.
    memscan.py PID...     the needles come from the environment, MEMSCAN_NEEDLES: one per line
                          (never on the command line, which any user can read)
Every readable mapping of each PID (/proc/PID/maps, read through /proc/PID/mem) is searched.
Prints one line per process scanned, "scanned PID UID BYTES comm", and one per hit,
"found PID NEEDLE_INDEX ADDRESS PATHNAME". Exit status: 0 nothing found, 1 something found,
2 a PID could not be scanned at all (gone, or no access).
"""
import os
import sys

CHUNK = 1 << 20
REGION_MAX = 1 << 30  # skip a sanitizer's shadow reservations: never-touched terabytes


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return -1


def scan(pid, needles):
    hits, total = [], 0
    longest = max(len(n) for n in needles)
    with open("/proc/%d/maps" % pid) as maps:
        regions = [line.split() for line in maps]
    mem = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for r in regions:
            start, end = (int(x, 16) for x in r[0].split("-"))
            name = r[5] if len(r) > 5 else ""
            if r[1][0] != "r" or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            if end - start > REGION_MAX:
                continue
            tail, addr = b"", start
            while addr < end:
                try:
                    data = os.pread(mem, min(CHUNK, end - addr), addr)
                except OSError:
                    break
                if not data:
                    break
                total += len(data)
                buf = tail + data
                for i, n in enumerate(needles):
                    k = buf.find(n)
                    if k >= 0:
                        hits.append((i, addr - len(tail) + k, name))
                tail = buf[-(longest - 1):] if longest > 1 else b""
                addr += len(data)
    finally:
        os.close(mem)
    return hits, total


def main(argv):
    needles = [n.encode() for n in os.environ.get("MEMSCAN_NEEDLES", "").split("\n") if n]
    if not needles or not argv:
        print("usage: MEMSCAN_NEEDLES=... memscan.py PID...", file=sys.stderr)
        return 2
    found, missing = False, False
    for a in argv:
        pid = int(a)
        try:
            comm = open("/proc/%d/comm" % pid).read().strip()
            uid = uid_of(pid)
            hits, total = scan(pid, needles)
        except OSError as e:
            print("cannot scan %d: %s" % (pid, e))
            missing = True
            continue
        print("scanned %d %d %d %s" % (pid, uid, total, comm))
        for i, addr, name in hits:
            print("found %d %d 0x%x %s" % (pid, i, addr, name))
            found = True
    return 1 if found else 2 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
