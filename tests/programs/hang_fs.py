# A one-file FUSE file system, spoken over /dev/fuse with no library, that stands in for a
# hung network file system: it serves FILE as MOUNTPOINT/prog, and once the file HANGFLAG
# exists it stops answering OPEN and READ (and ignores INTERRUPT), as a server that is gone
# does. tests/tests/why_slow.rs runs a program from it to check that a binary `record`
# cannot read never stops recording, nor `record` from exiting.
# With HANG_FS_SLOW_FLUSH=SECONDS in its environment, it answers each FLUSH (a close of the
# file) that much later, as a network file system writing back does: tests/tests/context.rs
# uses it for a close slower than the recorder's reorder window.
# With HANG_FS_GETATTR=1, attributes are never cached and GETATTR stops being answered too
# once HANGFLAG exists, as a stat of a file on a hung NFS mount waits: tests/tests/
# context.rs uses it for `record` attaching to a process holding such a file.
#   python3 hang_fs.py MOUNTPOINT FILE HANGFLAG   (root; unmount with umount -l)
import ctypes, os, struct, sys, errno, time
mnt, src, flag = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open('/dev/fuse', os.O_RDWR)
opts = 'fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other' % fd
if libc.mount(b'hangfs', mnt.encode(), b'fuse', 0x2 | 0x4, opts.encode()) != 0:  # NOSUID|NODEV
    e = ctypes.get_errno(); raise SystemExit('mount: ' + os.strerror(e))
print('mounted', flush=True)
now = int(time.time())
hang_getattr = bool(os.environ.get('HANG_FS_GETATTR'))
valid = 0 if hang_getattr else 3600
def attr(ino):
    if ino == 1:
        return struct.pack('<QQQQQQIIIIIIIIII', 1, 0, 0, now, now, now, 0, 0, 0, 0o40755, 2, 0, 0, 0, 4096, 0)
    return struct.pack('<QQQQQQIIIIIIIIII', 2, len(data), (len(data) + 511) // 512, now, now, now, 0, 0, 0, 0o100755, 1, 0, 0, 0, 4096, 0)
def reply(unique, err=0, body=b''):
    os.write(fd, struct.pack('<IiQ', 16 + len(body), -err, unique) + body)
hung = []
while True:
    try:
        req = os.read(fd, 1 << 20 | 4096)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN): continue
        print('read', e, flush=True); break
    ln, op, unique, node, uid, gid, pid, _ = struct.unpack_from('<IIQQIIIi', req)
    body = req[40:ln]
    hanging = os.path.exists(flag)
    if op == 26:  # INIT
        major, minor, ra, flags = struct.unpack_from('<IIII', body)
        out = struct.pack('<IIIIHHIIHHI', 7, 31, ra, 0, 16, 12, 131072, 1, 32, 0, 0) + b'\0' * 28
        reply(unique, 0, out)
    elif op == 1:  # LOOKUP
        name = body.split(b'\0')[0]
        if node == 1 and name == b'prog':
            reply(unique, 0, struct.pack('<QQQQII', 2, 0, valid, valid, 0, 0) + attr(2))
        else:
            reply(unique, errno.ENOENT)
    elif op == 3:  # GETATTR
        if hanging and hang_getattr:
            print('hanging GETATTR from pid', pid, flush=True); hung.append(unique); continue
        reply(unique, 0, struct.pack('<QII', valid, 0, 0) + attr(node))
    elif op in (14, 27):  # OPEN, OPENDIR
        if hanging and op == 14:
            print('hanging OPEN from pid', pid, flush=True); hung.append(unique); continue
        reply(unique, 0, struct.pack('<QIi', 1, 2 if op == 14 else 0, 0))  # FOPEN_KEEP_CACHE
    elif op == 15:  # READ
        fh, off, size = struct.unpack_from('<QQI', body)
        if hanging:
            print('hanging READ from pid', pid, flush=True); hung.append(unique); continue
        reply(unique, 0, data[off:off + size])
    elif op == 28:  # READDIR
        reply(unique, 0, b'')
    elif op in (2, 42):  # FORGET, BATCH_FORGET: no reply
        pass
    elif op == 36:  # INTERRUPT: ignore, as a hung server would
        print('INTERRUPT ignored', flush=True)
    elif op == 17:  # STATFS, which an overlay over this mount asks
        reply(unique, 0, struct.pack('<QQQQQIIII', 1000, 500, 500, 100, 50, 4096, 255, 4096, 0) + b'\0' * 24)
    elif op in (22, 23):  # GETXATTR LISTXATTR, likewise
        reply(unique, errno.ENODATA if op == 22 else 0, b'' if op == 22 else struct.pack('<II', 0, 0))
    elif op in (18, 25, 29, 34):  # RELEASE FLUSH RELEASEDIR ACCESS
        if op == 25 and os.environ.get('HANG_FS_SLOW_FLUSH'):
            time.sleep(float(os.environ['HANG_FS_SLOW_FLUSH']))
        reply(unique, 0)
    else:
        reply(unique, errno.ENOSYS)
