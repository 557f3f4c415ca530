# watch.py MEMFD_NAME ACTION PATH [DATA]: as the user (a lingering process), wait for the next
# pgsmb-userwork job of ours whose descriptor 5 or 6 is the memfd MEMFD_NAME, wait for it to end,
# then ACTION (write: PATH gets DATA; append: DATA appended; create: PATH made with DATA).
# Two actions act on the job itself: stop (SIGSTOP it at once; PATH unused) and map (open that
# memfd through /proc, map it shared and writable, and hold the mapping for DATA seconds).
import ctypes, os, signal, sys, time
name, action, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4] if len(sys.argv) > 4 else "x"
def find():
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        for fd in (5, 6):
            try:
                if os.readlink('/proc/%s/fd/%d' % (pid, fd)).startswith('/memfd:' + name):
                    return pid
            except OSError:
                pass
    return None
deadline = time.time() + 90
pid = None
while time.time() < deadline and not pid:
    pid = find()
if not pid:
    print("watch: no job seen", flush=True)
    sys.exit(2)
if action == 'stop':
    os.kill(int(pid), signal.SIGSTOP)
    print("watch: stopped job %s at %.6f" % (pid, time.time()), flush=True)
    sys.exit(0)
if action == 'map':
    for fd in (5, 6):
        if os.readlink('/proc/%s/fd/%d' % (pid, fd)).startswith('/memfd:' + name):
            mfd = os.open('/proc/%s/fd/%d' % (pid, fd), os.O_RDWR)
            break
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, 4096, 3, 1, mfd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
    if addr in (None, ctypes.c_void_p(-1).value):
        print("watch: mmap failed: %s" % os.strerror(ctypes.get_errno()), flush=True)
        sys.exit(2)
    print("watch: mapped the memfd of job %s for writing at %.6f" % (pid, time.time()), flush=True)
    time.sleep(float(data))
    sys.exit(0)
while os.path.exists('/proc/' + pid):
    time.sleep(0.0002)
with open(path, 'a' if action == 'append' else 'w') as f:
    f.write(data)
print("watch: %s %s after job %s ended at %.6f" % (action, path, pid, time.time()), flush=True)
