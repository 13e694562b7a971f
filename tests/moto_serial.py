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

import copy
import gc
import sys

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

# moto (5.2) backs up every table a TransactWriteItems names with a deep copy before applying
# it, so that a cancelled transaction can be rolled back. A test session's long-lived tables hold
# thousands of items, and copying them makes each transaction take seconds late in a run:
# concurrent transactions then queue past the servers' 4 s DynamoDB timeout and answer 503 (a
# slowdown of the emulator, not a behaviour of the code under test). Below, the backup keeps only
# the items the transaction touches, which is all a rollback needs: requests are served one at
# a time, so nothing else can have changed them in between.


class _TablesAreNotCopied:
    """`copy` as moto's DynamoDB backend sees it: tables are not copied (the item-level backup
    below replaces that), everything else is."""

    @staticmethod
    def deepcopy(obj, memo=None):
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


dynamodb_models.copy = _TablesAreNotCopied
_apply_transaction = DynamoDBBackend.transact_write_items


def _touched_items(backend, transact_items):
    """(table, key, the item's attributes before, or None) for every item the transaction names."""
    out = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        if "Item" in op:
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            if not all(n in op["Item"] for n in names):
                continue
            key = {n: op["Item"][n] for n in names}
        else:
            key = op.get("Key")
        try:
            current = backend.get_item(table.name, key)
        except Exception:  # a malformed key: moto's own validation answers it
            continue
        before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
        out.append((table.name, key, before))
    return out


def _transact_write_items(self, transact_items):
    touched = _touched_items(self, transact_items)
    try:
        return _apply_transaction(self, transact_items)
    except (TransactionCanceledException, MultipleTransactionsException, MockValidationException):
        for table_name, key, before in reversed(touched):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        try:
            return moto_app(environ, start_response)
        finally:
            gc.freeze()

    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
