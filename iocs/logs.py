"""Bounded log lines: no client can make an IOC write a huge line.

caproto logs a refused put with the request itself (a 10 kB FilePath, a frame);
the ADSim IOC's FileTemplate error quotes the template. Every IOC's ``serve``
installs the bound. Every record this process logs is cut
to :data:`MAX_MESSAGE` characters (its traceback, of bounded depth, is kept), so
one bad input cannot rotate the log and wipe its history.
"""

from __future__ import annotations

import logging

#: characters of one log message
MAX_MESSAGE = 2000

_installed = False


def bound_log_records(limit: int = MAX_MESSAGE) -> None:
    """Cut every log record's message to *limit* characters (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def bounded(*args, **kwargs):
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:   # a bad format is logging's to report, as before
            return record
        if len(message) > limit:
            record.msg = f"{message[:limit]}... [{len(message) - limit} more characters cut]"
            record.args = None
        return record

    logging.setLogRecordFactory(bounded)
