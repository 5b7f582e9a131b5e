"""Ray, imported only when asked for, and a connection to a local or a remote Ray cluster.

``connect(None)`` starts a local Ray (or reuses the one this process already holds); ``"auto"`` joins the
cluster that ``ray start`` left on this machine; ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins a remote one.
An address that does not answer is refused within ``timeout`` seconds: ``ray.init`` itself would keep
retrying for minutes.
"""

from __future__ import annotations

import os
import socket
from typing import Any

INSTALL_HINT = "pip install 'design-workbench[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"executor='ray' needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def split_address(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"ray://HOST:PORT"`` -> (host, port); a clear ValueError otherwise."""
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = target.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Ray address {address!r} is not None, 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    return host, int(port)


def probe(address: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError unless a Ray cluster answers at the address within ``timeout`` s (twice at most:
    a TCP connection, then a gRPC health check, which tells Ray from any other server or proxy on that port)."""
    import grpc  # a dependency of Ray

    host, port = split_address(address)
    default = 10001 if address.startswith("ray://") else 6379
    advice = (f"check the host and the port ({default} by default), start a cluster there with `ray start --head`, "
              "or give address=None to start a local Ray")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ConnectionError(f"no Ray cluster at {address!r}: nothing answers ({reason} within {timeout:g} s); "
                              f"{advice}") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS cluster: a plain-text health check cannot tell; ray.init's own checks follow
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                    response_deserializer=None)
        try:
            check(b"", timeout=timeout)
            return
        except grpc.RpcError as err:
            code, details = err.code(), err.details() or ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        raise ConnectionError(f"no Ray cluster at {address!r}: the port is open but nothing answers as Ray "
                              f"within {timeout:g} s ({code.name}: {details}); {advice}")
    if "http2 header with status" in details or code == grpc.StatusCode.INTERNAL:
        raise ConnectionError(f"no Ray cluster at {address!r}: something else answers on that port ({details}); "
                              f"{advice}")
    # any other gRPC status came from a gRPC server (a Ray that does not offer the health service, or wants a token)


def connect(address: str | None = None, timeout: float = 5.0, num_cpus: int | None = None,
            num_gpus: int | None = None) -> bool:
    """Make sure this process is connected to Ray; returns True when this call started the connection
    (the caller then calls ``ray.shutdown()`` when done), False when one was already open.

    ``address``: None starts a local Ray (with ``num_cpus`` / ``num_gpus`` when given; ``$RAY_ADDRESS``,
    when set, is joined instead, as Ray itself does); ``"auto"`` joins the cluster started on this machine
    by ``ray start``; ``"HOST:PORT"`` / ``"ray://HOST:PORT"`` joins that cluster.
    """
    ray = import_ray()
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    if address is not None and not isinstance(address, str):
        raise TypeError(f"Ray address must be a string or None, got {type(address).__name__}")
    if address not in (None, "auto"):
        probe(address, timeout)
    if ray.is_initialized():
        if address not in (None, "auto") and not address.startswith("ray://"):
            held = ray.get_runtime_context().gcs_address
            if held and split_address(held)[1] != split_address(address)[1]:
                raise RuntimeError(f"this process is already connected to the Ray cluster at {held!r}, not "
                                   f"{address!r}; call ray.shutdown() first")
        return False
    options: dict[str, Any] = {"include_dashboard": False}
    if address is None:
        options.update(num_cpus=num_cpus, num_gpus=num_gpus)
    try:
        ray.init(address=address, **options)
    except ConnectionError as err:
        hint = " (start one with `ray start --head`, or give address=None for a local Ray)" if address == "auto" else ""
        raise ConnectionError(f"cannot join the Ray cluster at {address!r}{hint}: {err}") from None
    return True
