"""Files in and out: untrusted input read within limits, results written atomically.

Input (scenario TOML, traces, checkpoints, litmus files) is read as bytes up
to a size limit, decoded as strict UTF-8 and scanned for nesting depth before
any parser sees it, so a malformed file ends in one ``InputError`` line naming
the file and the position, never in a ``RecursionError`` or
``UnicodeDecodeError``.  JSON is parsed without ``NaN``/``Infinity`` and
without integers longer than :data:`MAX_INT_DIGITS` digits.

Output (traces, checkpoints, swarm traces) is written to a unique temporary
file in the target's folder and renamed over the target, so a reader never
sees half a file and two runs never write through each other's temporary
file.  Folders are created as needed; a folder that cannot be created or
written is one ``InputError`` line naming the option.

This module is at the bottom of the layering with ``errors``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from vcoresim.errors import InputError

#: Size limits (bytes) by kind of input.
MAX_SCENARIO_BYTES = 1 << 20  # 1 MiB: the built-in scenarios are under 4 KiB
MAX_LITMUS_BYTES = 1 << 20
MAX_TRACE_BYTES = 256 << 20  # a trace of a 4,000-step KVM run is about 5 MiB
#: Longest schedule a trace may hold (steps).
MAX_SCHEDULE = 10_000_000
MAX_CHECKPOINT_BYTES = 256 << 20
#: Nesting limits: arrays and tables / objects inside each other.
MAX_TOML_DEPTH = 32
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted in JSON (int64 needs 19 digits).
MAX_INT_DIGITS = 30
#: Longest excerpt of a bad value quoted in an error message.
EXCERPT_CHARS = 40


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short quotation of a bad value for a one-line message: ``repr``, cut to
    about ``limit`` characters (``...`` marks the cut), non-printables escaped."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[: limit - 3] + "...")
    text = printable(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_path(path: str | Path) -> str:
    """A file name for a message: as is when short and printable, else an excerpt."""
    text = str(path)
    return text if len(text) <= 160 and text.isprintable() else excerpt(text, 160)


def printable(text: str) -> str:
    """``text`` with every non-printable character (newlines, U+2028, escapes) as ``\\x..``/``\\u....``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def one_line(message: str, limit: int = 400) -> str:
    """A message as one printable line of at most ``limit`` characters."""
    text = printable(message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | Path, what: str, max_bytes: int) -> str:
    """The file's text: at most ``max_bytes`` bytes of strict UTF-8, else an ``InputError``
    naming the file (and the offset of the first byte that is not UTF-8)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{show_path(path)}: cannot read: no such {what} file") from None
    except IsADirectoryError:
        raise InputError(f"{show_path(path)}: cannot read: a folder, not a {what} file") from None
    except OSError as e:
        raise InputError(f"{show_path(path)}: cannot read the {what} file: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise InputError(f"{show_path(path)}: larger than {max_bytes >> 20} MiB; not a {what} file vcoresim wrote")
    return decode(data, f"{show_path(path)}")


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{source}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


_JSON_SKIP = re.compile(r'"(?:[^"\\]|\\.)*"?', re.S)


def check_depth(text: str, max_depth: int, source: str, *, toml: bool = False) -> None:
    """Reject nesting of arrays and tables/objects deeper than ``max_depth`` (before a
    recursive parser overflows the stack), naming the line where it goes too deep.
    Strings (and, for TOML, comments) are skipped."""
    depth = 0
    i = 0
    n = len(text)
    opens = "[{"
    closes = "]}"
    while i < n:
        c = text[i]
        if c in opens:
            depth += 1
            if depth > max_depth:
                raise InputError(f"{source}:{text.count(chr(10), 0, i) + 1}: nested more than {max_depth} levels deep")
        elif c in closes:
            depth = max(0, depth - 1)
        elif c == '"' or (toml and c == "'"):
            i = _skip_string(text, i, toml)
            continue
        elif toml and c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        i += 1


def _skip_string(text: str, i: int, toml: bool) -> int:
    """Index just past the string starting at ``i`` (an unterminated one runs to the end)."""
    q = text[i]
    if toml and text.startswith(q * 3, i):
        j = text.find(q * 3, i + 3)
        return len(text) if j < 0 else j + 3
    if q == "'":  # TOML literal string: no escapes, one line
        j = text.find("'", i + 1)
        k = text.find("\n", i + 1)
        return len(text) if j < 0 else (j + 1 if k < 0 or j < k else k)
    m = _JSON_SKIP.match(text, i)
    assert m is not None
    return m.end()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(s: str) -> int:
    digits = len(s.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(s)


def load_json(text: str, source: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from untrusted text; every failure is one ``InputError`` naming ``source``."""
    check_depth(text, max_depth, source)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}:{e.lineno}: not valid JSON ({e.msg}); truncated?") from None
    except (ValueError, RecursionError) as e:
        raise InputError(f"{source}: not valid JSON ({one_line(str(e), 120)})") from None


# ------------------------------------------------------------------- output
def ensure_folder(path: Path, option: str) -> None:
    """Create the folder ``path`` will be written in, or raise one line naming ``option``."""
    try:
        _ensure_folder(path, option)
    except OSError as e:  # a name too long, a loop of links, ...
        raise InputError(f"{option}: cannot write {show_path(path)}: {e.strerror or e}") from None


def _ensure_folder(path: Path, option: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not str(path) or path.name in ("", ".", ".."):
        raise InputError(f"{option}: {show_path(path)} is not a file name")
    if path.is_dir():
        raise InputError(f"{option}: {show_path(path)} is a folder; give a file name")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{option}: cannot create folder {show_path(parent)}: a file of that name is in the way") from None
    except OSError as e:
        raise InputError(f"{option}: cannot create folder {show_path(parent)}: {e.strerror or e}") from None
    if not parent.is_dir():
        raise InputError(f"{option}: cannot create folder {show_path(parent)}: a file of that name is in the way")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write in folder {show_path(parent)}: permission denied")


def write_atomic(path: Path, data: str | bytes, option: str = "output") -> Path:
    """Write ``data`` to ``path`` through a unique temporary file in the same folder,
    renamed over ``path`` (readers see the old file or the new one, never half of
    one; concurrent writers never share a temporary file).  Returns ``path``."""
    ensure_folder(path, option)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"{option}: cannot write {show_path(path)}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise InputError(f"{option}: cannot write {show_path(path)}: {e.strerror or e}") from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
