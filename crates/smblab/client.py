#!/usr/bin/env python3
"""A user-space SMB client for mamori's Samba lab: named workloads against one share.

Run inside a client network namespace by `mamori-smblab`:

    python3 client.py --server IP --share NAME --user U --password P WORKLOAD [options]

Every workload prints one JSON summary on stdout (last line) and exits 0 when it
finished, 1 when a request failed and it stopped (the summary says when and why),
2 on bad usage, 3 when an attack refused an unmarked share.

The attacks write random bytes over real files. They refuse to run unless the
share's root holds the simulator's marker file, checked over SMB before anything
else, so they can never encrypt a share nobody marked as a test target.
"""

import argparse
import faulthandler
import io
import json
import os
import random
import signal
import sys
import time
import zipfile

import smbclient
from smbprotocol.open import CreateOptions, FilePipePrinterAccessMask

# The simulator's marker (mamori_sim::MARKER). Fixed here, not an option: a
# caller must not be able to name some file every share has as "consent".
MARKER = ".mamori-test-target"

ATTACKS = ("overwrite", "rename-then-encrypt", "copy-then-delete", "notes", "slow")
BENIGN = ("copy-in", "office-save", "backup-read", "bulk-rename", "honest")

NOTE_TEXT = (
    "YOUR FILES ARE ENCRYPTED\r\n\r\n"
    "This is a mamori lab test: nothing here was ever sent anywhere.\r\n"
    "Contact: restore@example.invalid  ID: LAB-0000\r\n"
)


# A long honest run would otherwise print an endless summary.
MAX_OPS = 20000


class OpTimeout(Exception):
    pass


class Stop(Exception):
    pass


class Run:
    """What the workload did: every operation with its time, and the first failure."""

    def __init__(self, args):
        self.args = args
        self.root = "\\\\%s\\%s" % (args.server, args.share)
        self.started = time.time()
        self.ops = []
        self.touched = []
        self.first_failure = None
        self.extra = {}
        self.stopping = False

    def unc(self, rel):
        return self.root if not rel else self.root + "\\" + rel.replace("/", "\\")

    def op(self, name, rel, fn, *a, **kw):
        """Runs one request with a deadline: a client cut off by a firewall
        never gets an answer, and the summary must still be printed."""
        signal.setitimer(signal.ITIMER_REAL, self.args.op_timeout)
        try:
            result = fn(*a, **kw)
        except Exception as err:
            self.fail(name, rel, err)
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if len(self.ops) < MAX_OPS:
            self.ops.append({"t": time.time(), "op": name, "path": rel})
        return result

    def fail(self, name, rel, err):
        if self.first_failure is None:
            self.first_failure = {
                "t": time.time(),
                "op": name,
                "path": rel,
                "error": "%s: %s" % (type(err).__name__, err),
            }

    def check_stop(self):
        if self.stopping or (self.args.stop_file and os.path.exists(self.args.stop_file)):
            raise Stop()

    def summary(self, workload):
        out = {
            "workload": workload,
            "server": self.args.server,
            "share": self.args.share,
            "started": self.started,
            "ended": time.time(),
            "touched": len(self.touched),
            "files": self.touched,
            "first_failure": self.first_failure,
            "ops": self.ops,
        }
        out.update(self.extra)
        return out


def on_alarm(signum, frame):
    raise OpTimeout("no answer within the deadline")


def connect(run):
    smbclient.ClientConfig(require_secure_negotiate=False)
    # Encryption stays off: with it on, this Samba build refuses the tree connect.
    smbclient.register_session(
        run.args.server,
        username=run.args.user,
        password=run.args.password,
        encrypt=False,
        connection_timeout=max(1, int(run.args.op_timeout)),
    )


def marked(run):
    try:
        st = run.op("stat", MARKER, smbclient.stat, run.unc(MARKER))
    except Exception:
        return False
    # A directory of that name is not consent.
    return (st.st_mode & 0o170000) == 0o100000


def walk(run, rel="", out=None):
    """Every regular file under `rel`, sorted, except the marker at the root."""
    out = [] if out is None else out
    entries = run.op("list", rel, lambda: sorted(smbclient.scandir(run.unc(rel)), key=lambda e: e.name))
    for entry in entries:
        child = entry.name if not rel else rel + "/" + entry.name
        if entry.is_dir():
            walk(run, child, out)
        elif entry.is_file() and child != MARKER:
            out.append(child)
    return out


def folders(files):
    seen = {""}
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            seen.add("/".join(parts[:i]))
    return sorted(seen)


def read(run, rel):
    def go():
        with smbclient.open_file(run.unc(rel), mode="rb") as f:
            return f.read()

    return run.op("read", rel, go)


def write(run, rel, data, op="write"):
    def go():
        with smbclient.open_file(run.unc(rel), mode="wb") as f:
            f.write(data)

    run.op(op, rel, go)


def overwrite_in_place(run, rel, data):
    """Ransomware's commonest write: the same handle, the same size, no truncate."""

    def go():
        with smbclient.open_file(run.unc(rel), mode="r+b") as f:
            f.seek(0)
            f.write(data)

    run.op("write", rel, go)


def cipher(data):
    return os.urandom(len(data))


def limited(run, files):
    return files[: run.args.limit] if run.args.limit is not None else files


def attack(run, workload):
    files = [f for f in walk(run) if not f.endswith(".locked") and f.split("/")[-1] != run.args.note_name]
    if workload == "notes":
        for folder in folders(files):
            run.check_stop()
            note = run.args.note_name if not folder else folder + "/" + run.args.note_name
            write(run, note, NOTE_TEXT.encode(), op="note")
    for i, rel in enumerate(limited(run, files)):
        run.check_stop()
        if workload == "slow" and i > 0:
            time.sleep(run.args.interval)
        data = read(run, rel)
        if workload == "rename-then-encrypt":
            locked = rel + ".locked"
            run.op("rename", rel, smbclient.rename, run.unc(rel), run.unc(locked))
            overwrite_in_place(run, locked, cipher(data))
        elif workload == "copy-then-delete":
            copy_then_delete(run, rel, data)
        else:
            overwrite_in_place(run, rel, cipher(data))
        run.touched.append(rel)


def copy_then_delete(run, rel, data):
    """Holds the original open with delete-on-close while the copy is written,
    so the original vanishes the moment its handle closes."""
    access = (
        FilePipePrinterAccessMask.FILE_READ_DATA
        | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
        | FilePipePrinterAccessMask.DELETE
    )
    original = run.op(
        "open-delete-on-close",
        rel,
        smbclient.open_file,
        run.unc(rel),
        mode="rb",
        share_access="rwd",
        desired_access=access,
        create_options=CreateOptions.FILE_DELETE_ON_CLOSE,
    )
    try:
        write(run, rel + ".locked", cipher(data))
    finally:
        run.op("delete", rel, original.close)


def copy_in(run):
    source = run.args.source
    if not source or not os.path.isdir(source):
        raise SystemExit(usage("copy-in needs --source DIR (a local folder of documents)"))
    dest = run.args.dir or os.path.basename(os.path.normpath(source))
    local = []
    for top, dirs, names in os.walk(source):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(top, name)
            rel = os.path.relpath(path, source).replace(os.sep, "/")
            if rel != MARKER:
                local.append(rel)
    made = set()
    for rel in limited(run, local):
        run.check_stop()
        target = dest + "/" + rel
        parent = target.rsplit("/", 1)[0]
        if parent not in made:
            run.op("mkdir", parent, smbclient.makedirs, run.unc(parent), exist_ok=True)
            made.add(parent)
        path = os.path.join(source, rel)
        with open(path, "rb") as f:
            data = f.read()
        write(run, target, data, op="create")
        st = os.stat(path)
        # Explorer keeps the source's modification time.
        run.op("utime", target, smbclient.utime, run.unc(target), (st.st_atime, st.st_mtime))
        run.touched.append(target)


def edited_docx(data):
    """The document as Word would save it after an edit: the same package,
    one more paragraph. Anything not a package gets a line of text appended."""
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                body = src.read(item.filename)
                if item.filename == "word/document.xml":
                    para = b"<w:p><w:r><w:t>Edited in the lab.</w:t></w:r></w:p>"
                    at = body.rfind(b"</w:body>")
                    body = body[:at] + para + body[at:] if at >= 0 else body
                dst.writestr(item, body)
        return out.getvalue()
    except zipfile.BadZipFile:
        return data + b"\nEdited in the lab.\n"


def office_save(run):
    docs = [f for f in walk(run) if f.lower().endswith(".docx") and not f.split("/")[-1].startswith("~")]
    for n, rel in enumerate(limited(run, docs)):
        run.check_stop()
        folder, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
        prefix = folder + "/" if folder else ""
        lock = prefix + "~$" + name[2:] if len(name) > 2 else prefix + "~$" + name
        temp = prefix + "~WRL%04d.tmp" % (n + 1)
        backup = prefix + "~WRD%04d.tmp" % (n + 1)
        write(run, lock, (run.args.user.encode() + b" " * 54)[:54] + b"\0" * 108, op="lock")
        data = read(run, rel)
        write(run, temp, edited_docx(data), op="create")
        run.op("rename", rel, smbclient.rename, run.unc(rel), run.unc(backup))
        run.op("rename", temp, smbclient.rename, run.unc(temp), run.unc(rel))
        run.op("delete", backup, smbclient.remove, run.unc(backup))
        run.op("delete", lock, smbclient.remove, run.unc(lock))
        run.touched.append(rel)


def backup_read(run):
    total = 0
    for rel in limited(run, walk(run)):
        run.check_stop()
        total += len(read(run, rel))
        run.touched.append(rel)
    run.extra["bytes"] = total


def bulk_rename(run):
    photos = [f for f in walk(run, run.args.dir or "") if f.lower().endswith((".jpg", ".jpeg"))]
    by_folder = {}
    for rel in limited(run, photos):
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        by_folder.setdefault(folder, []).append(rel)
    for folder, rels in sorted(by_folder.items()):
        for n, rel in enumerate(rels, 1):
            run.check_stop()
            new = ("%s/" % folder if folder else "") + "Trip 2024 - %03d.jpg" % n
            run.op("rename", rel, smbclient.rename, run.unc(rel), run.unc(new))
            run.touched.append(new)


def honest(run):
    """A user at work: writes and reads back its own files until told to stop.
    A failure is counted, not fatal: the point is to see what it suffered."""
    folder = run.args.dir or "honest-%d" % os.getpid()
    successes = failures = 0
    errors = []
    try:
        run.op("mkdir", folder, smbclient.makedirs, run.unc(folder), exist_ok=True)
    except Exception as err:
        run.fail("mkdir", folder, err)
    i = 0
    while run.args.limit is None or i < run.args.limit:
        try:
            run.check_stop()
        except Stop:
            break
        rel = "%s/note-%04d.txt" % (folder, i % 20)
        body = ("Meeting notes %d, written at %f.\n" % (i, time.time())).encode() * 20
        try:
            write(run, rel, body)
            if read(run, rel) != body:
                raise IOError("read back something else")
            successes += 1
            if rel not in run.touched:
                run.touched.append(rel)
        except Stop:
            break
        except Exception as err:
            failures += 1
            run.fail("write-read", rel, err)
            if len(errors) < 10:
                errors.append({"t": time.time(), "path": rel, "error": "%s: %s" % (type(err).__name__, err)})
        i += 1
        time.sleep(run.args.interval)
    run.extra.update({"successes": successes, "failures": failures, "errors": errors})


def usage(msg):
    print(json.dumps({"error": msg}))
    return 2


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--share", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--note-name", default="README_RESTORE_FILES.txt")
    p.add_argument("--limit", type=int, default=None, help="at most this many files")
    p.add_argument("--interval", type=float, default=None, help="seconds between files (slow, honest)")
    p.add_argument("--op-timeout", type=float, default=20.0, help="seconds one request may take")
    p.add_argument("--stop-file", default=None, help="stop once this local file exists")
    p.add_argument("--source", default=None, help="copy-in: the local folder to copy")
    p.add_argument("--dir", default=None, help="the folder in the share to work in")
    p.add_argument("workload", choices=ATTACKS + BENIGN)
    args = p.parse_args()
    if args.interval is None:
        args.interval = 2.0 if args.workload == "slow" else 0.1
    run = Run(args)

    def on_term(signum, frame):
        run.stopping = True

    # `kill -USR1 PID` prints every thread's stack: where a hung client waits.
    faulthandler.register(signal.SIGUSR1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    code = 0
    try:
        connect(run)
        if args.workload in ATTACKS and not marked(run):
            run.extra["refused"] = "the share's root holds no %s: not a test target" % MARKER
            print(json.dumps(run.summary(args.workload)))
            return 3
        {
            "copy-in": copy_in,
            "office-save": office_save,
            "backup-read": backup_read,
            "bulk-rename": bulk_rename,
            "honest": honest,
        }.get(args.workload, lambda r: attack(r, args.workload))(run)
    except Stop:
        pass
    except SystemExit as exit:
        return exit.code
    except Exception as err:
        run.fail("connect" if not run.ops else "workload", "", err)
        code = 1
    if run.first_failure is not None and args.workload != "honest":
        code = 1
    print(json.dumps(run.summary(args.workload)))
    return code


def close_quietly(seconds):
    """Logs off within `seconds`. smbclient would otherwise log off at exit
    with no deadline, and a client whose packets a firewall drops (what a
    defence does to an attacker) would never exit."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        smbclient.reset_connection_cache(fail_on_error=False)
    except BaseException:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


if __name__ == "__main__":
    code = main()
    close_quietly(2.0)
    sys.stdout.flush()
    sys.stderr.flush()
    # No atexit handlers: the connection cache was closed above, or cannot be.
    os._exit(code if isinstance(code, int) else 2)
