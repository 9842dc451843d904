"""logsponge for Python's logging: records go into a logsponge spool.

    import logging, logsponge
    logging.getLogger().addHandler(logsponge.SpongeHandler(tag="feeds"))

The handler only writes to the spool (SQLite, through liblogsponge.so.0
with ctypes; nothing but the standard library).  It never touches the
network: `logsponge flush`, from cron or a systemd timer, decides by the
config's policy whether the records are worth a mail and sends them as
one digest.  It never raises into the application (a failure goes to
logging's handleError), is safe with threads, and after fork() the child
opens a spool handle of its own.  It never hangs or crashes its program:
a record logged from a signal handler while the same thread is writing
one is queued and written right after it, and a record logged at exit
(after logging.shutdown, from a __del__) is written at once.
"""
import atexit
import collections
import ctypes
import logging
import os
import weakref

__all__ = ["SpongeHandler", "LogspongeError", "syslog_level", "LEVELS"]

# syslog levels, as logsponge names them
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info",
          "debug")


def syslog_level(levelno):
    """The syslog level (0 emerg ... 7 debug) for a Python level number:
    CRITICAL crit, ERROR err, WARNING warning, INFO info, DEBUG debug;
    others by where they fall (above CRITICAL alert, between INFO and
    WARNING notice, below INFO debug)."""
    if levelno > logging.CRITICAL:
        return 1
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno > logging.INFO:
        return 5
    if levelno >= logging.INFO:
        return 6
    return 7


class LogspongeError(OSError):
    """liblogsponge could not be loaded, or a spool not opened."""


_lib = None


def _load():
    """liblogsponge.so.0: $LOGSPONGE_LIBRARY (a path) when set, else as
    the dynamic linker finds libraries (LD_LIBRARY_PATH, the ldconfig
    cache).  No lock: loading twice (two
    threads, or a signal handler while the first load runs) loads the
    same library twice, which the dynamic linker counts; a lock here
    would deadlock a signal handler that logs."""
    global _lib
    if _lib is not None:
        return _lib
    name = os.environ.get("LOGSPONGE_LIBRARY") or "liblogsponge.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise LogspongeError(
            "cannot load %s (%s): install logsponge's library (make "
            "install; ldconfig) or set LOGSPONGE_LIBRARY to its path"
            % (name, e))
    vp = ctypes.c_void_p
    lib.sponge_open.argtypes = [ctypes.POINTER(vp), ctypes.c_char_p,
                                ctypes.c_char_p, ctypes.c_uint]
    lib.sponge_open.restype = ctypes.c_int
    lib.sponge_close.argtypes = [vp]
    lib.sponge_close.restype = ctypes.c_int
    lib.sponge_errmsg.argtypes = [vp]
    lib.sponge_errmsg.restype = ctypes.c_char_p
    lib.sponge_strerror.argtypes = [ctypes.c_int]
    lib.sponge_strerror.restype = ctypes.c_char_p
    lib.sponge_append.argtypes = [vp, ctypes.c_int, ctypes.c_char_p,
                                  ctypes.c_int64, ctypes.c_char_p,
                                  ctypes.c_size_t]
    lib.sponge_append.restype = ctypes.c_int
    lib.sponge_set_batch.argtypes = [vp, ctypes.c_uint, ctypes.c_size_t,
                                     ctypes.c_uint]
    lib.sponge_set_batch.restype = ctypes.c_int
    lib.sponge_sync.argtypes = [vp]
    lib.sponge_sync.restype = ctypes.c_int
    _lib = lib
    return lib


def _encode(s):
    return None if s is None else os.fsencode(s) if isinstance(
        s, os.PathLike) else s.encode("utf-8", "surrogateescape")


# handlers alive, so that records they hold are written at exit
_live = weakref.WeakSet()
# set at exit: from then on every record is written when it is logged
_exiting = False


@atexit.register
def _write_all_at_exit():
    global _exiting
    _exiting = True
    for h in list(_live):
        h.flush()


def _after_fork_in_child():
    # the parent's queue and its writer are the parent's
    for h in list(_live):
        h._pending.clear()
        h._writing = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SpongeHandler(logging.Handler):
    """A logging.Handler that records each log record in a logsponge
    spool as one record: its level mapped to syslog's (syslog_level), its
    tag the given tag or the logger's name, its text the formatted
    message with the traceback (exc_info) and stack (stack_info), several
    lines kept together.

    spool and config: paths, or None for logsponge's own choice
    ($LOGSPONGE_SPOOL, the config's spool.path, ~/.local/state/...; the
    config from $LOGSPONGE_CONFIG, ~/.config/logsponge/config or
    /etc/logsponge.conf).

    batch: 0 (default) commits every record when it is logged; N > 0
    keeps up to N records in memory and writes them in one transaction
    when N are held, on flush() and close(), and at exit (records held
    are lost if the process is killed)."""

    def __init__(self, spool=None, config=None, tag=None,
                 level=logging.NOTSET, batch=0):
        super().__init__(level)
        self.spool = spool
        self.config = config
        self.tag = tag
        self.batch = int(batch)
        self._sp = None
        self._pid = None
        self._closed = False
        # records waiting for the writer of this thread (see emit)
        self._pending = collections.deque()
        self._writing = False
        _live.add(self)

    # ---- the spool handle ------------------------------------------------

    def _handle(self):
        """The open handle of this process (after fork() the child's own:
        the parent's SQLite connection must not be used in the child, nor
        its queued records written twice)."""
        if self._sp is not None and self._pid == os.getpid():
            return self._sp
        self._sp = None  # the parent's: left alone, never closed here
        lib = _load()
        sp = ctypes.c_void_p()
        rc = lib.sponge_open(ctypes.byref(sp), _encode(self.spool),
                             _encode(self.config), 0)
        if rc != 0:
            why = (lib.sponge_errmsg(sp) or b"").decode("utf-8", "replace")
            what = lib.sponge_strerror(rc).decode()
            lib.sponge_close(sp)
            raise LogspongeError("logsponge: spool: %s%s" % (
                what, ": " + why if why else ""))
        if self.batch > 1 and not (_exiting or self._closed):
            lib.sponge_set_batch(sp, self.batch, 0, 0)
        self._sp, self._pid = sp, os.getpid()
        return sp

    def _check(self, rc, what):
        if rc != 0:
            lib = _load()
            why = (lib.sponge_errmsg(self._sp) or b"").decode(
                "utf-8", "replace")
            raise LogspongeError("logsponge: %s: %s%s" % (
                what, lib.sponge_strerror(rc).decode(),
                ": " + why if why else ""))

    # ---- logging.Handler -------------------------------------------------

    def emit(self, record):
        """logging calls this with the handler's lock held, so only one
        thread is here; the same thread can come back from a signal
        handler at any point.  Such a record is queued, and whoever is
        writing writes it next: nothing waits on a lock, and the library
        is never entered twice."""
        try:
            msg = self.format(record).encode("utf-8", "surrogateescape")
            tag = _encode(self.tag if self.tag is not None else record.name)
            self._pending.append((record, syslog_level(record.levelno), tag,
                                  int(record.created * 1e6), msg))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        while self._pending and not self._writing:
            self._writing = True
            try:
                while self._pending:
                    self._write(self._pending.popleft())
            finally:
                self._writing = False

    def _write(self, item):
        record, level, tag, time_us, msg = item
        try:
            sp = self._handle()
            lib = _load()
            self._check(lib.sponge_append(sp, level, tag, time_us, msg,
                                          len(msg)), "recording")
            if _exiting or self._closed:  # nobody would write it later
                self._check(lib.sponge_sync(sp), "writing")
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self):
        """Write the records held (batch > 0) and make them durable."""
        self.acquire()
        try:
            if self._sp is not None and self._pid == os.getpid():
                self._check(_load().sponge_sync(self._sp), "writing")
        except Exception:
            self.handleError(None)
        finally:
            self.release()

    def close(self):
        self.acquire()
        try:
            self._closed = True
            if self._sp is not None and self._pid == os.getpid():
                self._check(_load().sponge_close(self._sp), "closing")
            self._sp = None
        except Exception:
            self._sp = None
            self.handleError(None)
        finally:
            self.release()
            _live.discard(self)
            super().close()
