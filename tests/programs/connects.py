# Connects to loopback whose outcomes are known. Prints the ports: listening, closed,
# completed, refused_later, full.
# - listening: a non-blocking connect (EINPROGRESS) whose outcome is learnt later through
#   SO_ERROR, which a capture does not hold: one attempt, in progress;
# - closed: a blocking connect refused (ECONNREFUSED): one attempt, failed;
# - completed: a non-blocking connect, then once writable a second connect that returns 0:
#   one attempt, succeeded;
# - refused_later: the same to a closed port, the second connect ECONNREFUSED: one attempt,
#   failed;
# - full: a listener with a full accept queue drops the SYN. A blocking connect that
#   filled the queue (succeeded), a non-blocking one (EINPROGRESS then EALREADY) and, after
#   a close, another on the same fd number (EINPROGRESS): three attempts, two in progress.
import errno, select, socket


def listener(backlog=8):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s, s.getsockname()[1]


def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def nonblocking():
    s = socket.socket()
    s.setblocking(False)
    return s


listening, port = listener()
closed = closed_port()
pending = nonblocking()
assert pending.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
refused = socket.socket()
assert refused.connect_ex(("127.0.0.1", closed)) == errno.ECONNREFUSED

other, completed = listener()
c = nonblocking()
assert c.connect_ex(("127.0.0.1", completed)) == errno.EINPROGRESS
select.select([], [c], [], 5)
assert c.connect_ex(("127.0.0.1", completed)) == 0

refused_later = closed_port()
r = nonblocking()
assert r.connect_ex(("127.0.0.1", refused_later)) == errno.EINPROGRESS
select.select([], [r], [], 5)
assert r.connect_ex(("127.0.0.1", refused_later)) == errno.ECONNREFUSED

queue, full = listener(0)
filled = socket.socket()
filled.connect(("127.0.0.1", full))
w = nonblocking()
assert w.connect_ex(("127.0.0.1", full)) == errno.EINPROGRESS
assert w.connect_ex(("127.0.0.1", full)) == errno.EALREADY
number = w.fileno()
w.close()
again = nonblocking()
assert again.fileno() == number
assert again.connect_ex(("127.0.0.1", full)) == errno.EINPROGRESS
print(port, closed, completed, refused_later, full)
