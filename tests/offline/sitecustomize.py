"""Block network access in every Python process started with this folder on PYTHONPATH.

``make test-notebooks`` puts this folder on PYTHONPATH, so the Jupyter kernels
nbval starts, and the joblib workers they start, all run with it: any attempt
to reach a host other than this machine raises ``OfflineError`` and fails the
notebook.  Loopback stays open because Jupyter talks to its kernels over it
(through ZeroMQ, which does not use Python's socket module anyway).
tests/test_offline.py checks that the guard blocks and that loopback works.
"""

import ipaddress
import socket

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class OfflineError(RuntimeError):
    pass


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if not isinstance(host, str):
        return True
    if host in _LOOPBACK_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost


def _refuse(what: str, target) -> None:
    raise OfflineError(
        f"{what} attempted: {target!r} (the book must run offline)"
    )


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self, address):
    if not _is_local(address):
        _refuse("network access", address)
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        _refuse("network access", address)
    return _connect_ex(self, address)


def _guarded_sendto(self, data, *args):
    if not _is_local(args[-1]):
        _refuse("network access", args[-1])
    return _sendto(self, data, *args)


def _guarded_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not _is_local((name,)):
        _refuse("name lookup", name)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
socket.socket.sendto = _guarded_sendto
socket.getaddrinfo = _guarded_getaddrinfo
socket.OFFLINE_GUARD = True
