"""Serve a folder on 127.0.0.1 (a free port, printed on the first line of output) with a
fixed delay before every response: `python bench/serve.py FOLDER SECONDS`."""

from __future__ import annotations

import sys
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two sends: with Nagle's algorithm the body would wait for
    # the client's delayed ACK (40 ms on Linux), a latency that is not the one simulated.
    disable_nagle_algorithm = True
    delay = 0.0

    def do_GET(self) -> None:
        if self.delay:
            time.sleep(self.delay)  # the latency being simulated
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    folder, delay = Path(sys.argv[1]), float(sys.argv[2])
    Handler.delay = delay

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), lambda *a: Handler(*a, directory=str(folder)))
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
