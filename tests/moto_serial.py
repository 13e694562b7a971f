"""moto's DynamoDB API server, handling one request at a time.

DynamoDB serialises conditional writes and transactions on an item; moto's threaded server does
not (two concurrent TransactWriteItems on one item can both pass their conditions inside moto).
Serving requests one by one gives moto the per-request atomicity the real service has, so the
storage contract's concurrency tests check our code, not moto's thread safety. Clients still
send concurrently; the requests interleave at request granularity, as on DynamoDB.

    python tests/moto_serial.py 127.0.0.1 5000

A whole test run stores gigabytes of Python objects in moto; a full garbage collection over them
stalls this single-threaded server for seconds, and every request queued behind it times out
(the servers' DynamoDB client gives up after 4 s, as it should). So what survives a request is
frozen out of the collector's reach (`gc.freeze`): only objects made while serving the current
request are ever scanned.
"""

import gc
import sys

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        try:
            return moto_app(environ, start_response)
        finally:
            gc.freeze()

    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
