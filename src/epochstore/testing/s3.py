"""A real S3 endpoint for tests and benchmarks: moto's server in a child process, counting requests.

:class:`MotoS3Server` starts ``moto``'s S3 server (``pip install "moto[server]"``) on
``127.0.0.1`` and a free port, in its own process, and counts every HTTP request it serves by
S3 operation (``GetObject``, ``HeadObject``, ``ListObjectsV2``, ...). Counts are what an object
store bills and what costs latency; they are stable where timings are not.

Examples
--------
>>> with MotoS3Server() as server:  # doctest: +SKIP
...     server.create_bucket("runs")
...     store = ArtifactStore("s3://runs/p113", storage_options=server.storage_options)
...     server.reset_requests()
...     store.get_epochs("neuron_activations")
...     server.requests()
Counter({'ListObjectsV2': 1})
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import parse_qs

__all__ = ["MotoS3Server", "TEST_CREDENTIALS", "s3_operation", "stores_opened_here"]

#: Credentials moto accepts (it does not check signatures).
TEST_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never ask the EC2 metadata service (a network call) for credentials or a region.
    "AWS_EC2_METADATA_DISABLED": "true",
}

_CONTROL = "/_epochstore/requests"


def stores_opened_here(url: str) -> int:
    """How many artifact stores of ``url`` this process's analysis worker has opened.

    Sent to Dask workers with ``client.run``: it lives in an importable module because a worker
    cannot import a test module.
    """
    from epochstore.pipeline import worker

    return sum(url in key for key in worker._STORES)


def s3_operation(method: str, path: str, query: str, headers: Mapping[str, str]) -> str:
    """Name the S3 operation of a path-style request (``ListObjectsV2``, ``GetObject``, ...)."""
    params = parse_qs(query, keep_blank_values=True)
    parts = path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    if not has_key:
        if method == "GET":
            if "list-type" in params:
                return "ListObjectsV2"
            if "location" in params:
                return "GetBucketLocation"
            return "ListObjects"
        if method == "POST" and "delete" in params:
            return "DeleteObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
            method, f"{method} bucket"
        )
    if "uploadId" in params or "uploads" in params:
        return f"Multipart{method.title()}"
    if method == "GET":
        return "GetObject (range)" if "range" in {k.lower() for k in headers} else "GetObject"
    if method == "PUT":
        lowered = {k.lower() for k in headers}
        return "CopyObject" if "x-amz-copy-source" in lowered else "PutObject"
    return {"HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{method} object")


def _counting_app(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == _CONTROL:
            with lock:
                body = json.dumps(dict(counts)).encode()
                if method == "DELETE":
                    counts.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        headers = {
            k[5:].replace("_", "-"): str(v) for k, v in environ.items() if k.startswith("HTTP_")
        }
        operation = s3_operation(method, path, environ.get("QUERY_STRING", ""), headers)
        with lock:
            counts[operation] += 1
        return app(environ, start_response)

    return wrapped


def _serve(port: int) -> None:  # pragma: no cover - runs in the child process
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    app = _counting_app(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


class MotoS3Server:
    """moto's S3 server in a child process on ``127.0.0.1`` and a free port.

    Parameters
    ----------
    startup_timeout
        Seconds to wait for the server to listen before failing loudly.

    Attributes
    ----------
    endpoint_url
        ``http://127.0.0.1:<port>`` once started.
    """

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.endpoint_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self) -> Self:
        """Start the server and wait until it answers.

        Raises
        ------
        RuntimeError
            If moto's server cannot start (``moto[server]`` not installed, ...).
        """
        env = {**os.environ, **TEST_CREDENTIALS}
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "epochstore.testing.s3", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self.startup_timeout)
        line = self._proc.stdout.readline() if ready else ""
        if not line.startswith("port "):
            log = self.log()
            self.stop()
            raise RuntimeError(
                f"moto's S3 server did not start within {self.startup_timeout} s "
                f"(is moto[server] installed?): {line!r}\n{log}"
            )
        self.endpoint_url = f"http://127.0.0.1:{int(line.split()[1])}"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                self.requests()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto's S3 server does not answer: {exc}") from exc
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (its buckets are gone)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        """Return what the server wrote to stderr (errors only)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def storage_options(self) -> dict[str, Any]:
        """s3fs options for this endpoint (pass as ``storage_options=``)."""
        return {
            "key": TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret": TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }

    def _control(self, method: str) -> Counter[str]:
        request = urllib.request.Request(self.endpoint_url + _CONTROL, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return Counter(json.loads(response.read()))

    def requests(self) -> Counter[str]:
        """Return the requests served since the last reset, by S3 operation."""
        return self._control("GET")

    def reset_requests(self) -> Counter[str]:
        """Return the counts and set them back to zero."""
        return self._control("DELETE")

    def create_bucket(self, name: str) -> str:
        """Create a bucket (moto checks no signature); return ``s3://<name>``."""
        request = urllib.request.Request(f"{self.endpoint_url}/{name}", method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already exists
                raise
        return f"s3://{name}"

    def obstore_location(self, bucket: str, prefix: str) -> Any:
        """A zarr ``ObjectStore`` (obstore) on ``bucket`` of this server, rooted at ``prefix``."""
        from obstore.store import S3Store
        from zarr.storage import ObjectStore

        return ObjectStore(
            S3Store(
                bucket,
                prefix=prefix,
                endpoint=self.endpoint_url,
                access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region="us-east-1",
                client_options={"allow_http": True},
                virtual_hosted_style_request=False,
            )
        )


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - child process
    """Serve moto's S3 with request counting: ``python -m epochstore.testing.s3 --port 0``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    _serve(args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
