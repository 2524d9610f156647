# A listening socket that accepts only when told to, so connections can be held in the kernel's accept
# queue (Node's net.Server always accepts at once). Used by kernel-connections.test.ts.
#
#   python3 listener.py tcp HOST     -> prints the bound port
#   python3 listener.py tcp6 HOST    -> same, IPv6 (HOST '::' is dual-stack: IPV6_V6ONLY off)
#   python3 listener.py unix PATH    -> PATH starting with '@' is an abstract name; prints 'ok'
#   python3 listener.py fd N         -> the listening socket inherited as fd N (the test holds it too); prints 'ok'
#
# Then reads commands on stdin, one per line, answering each with one line:
#   accept N  -> accepts N connections and holds them open; prints 'accepted N'
#   close     -> closes every accepted connection; prints 'closed'
#   connect N -> opens N client connections to the listener itself; prints 'connected N'
#                (Node 20 cannot connect to abstract unix names: libuv cuts the name at the NUL)
#   hangup    -> closes those client connections; prints 'hungup'
# Exits when stdin closes.
import socket
import sys

kind, addr = sys.argv[1], sys.argv[2]
if kind == 'fd':
    s = socket.socket(fileno=int(addr))
    print('ok', flush=True)
elif kind == 'unix':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind('\0' + addr[1:] if addr.startswith('@') else addr)
    s.listen(64)
    print('ok', flush=True)
else:
    family = socket.AF_INET6 if kind == 'tcp6' else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, 0))
    s.listen(64)
    print(s.getsockname()[1], flush=True)

held = []
clients = []
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == 'accept':
        n = int(words[1])
        for _ in range(n):
            held.append(s.accept()[0])
        print('accepted', n, flush=True)
    elif words[0] == 'close':
        for c in held:
            c.close()
        held = []
        print('closed', flush=True)
    elif words[0] == 'connect':
        n = int(words[1])
        for _ in range(n):
            c = socket.socket(s.family, socket.SOCK_STREAM)
            c.connect(s.getsockname())
            clients.append(c)
        print('connected', n, flush=True)
    elif words[0] == 'hangup':
        for c in clients:
            c.close()
        clients = []
        print('hungup', flush=True)
