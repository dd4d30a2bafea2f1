# Two connects to loopback: a non-blocking one to a listening port (EINPROGRESS, its
# outcome learnt later through SO_ERROR) and a blocking one to a closed port
# (ECONNREFUSED). Prints the two ports.
import errno, socket
listening = socket.socket()
listening.bind(("127.0.0.1", 0))
listening.listen()
port = listening.getsockname()[1]
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
closed = probe.getsockname()[1]
probe.close()
pending = socket.socket()
pending.setblocking(False)
assert pending.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
refused = socket.socket()
assert refused.connect_ex(("127.0.0.1", closed)) == errno.ECONNREFUSED
print(port, closed)
