"""Where files go: the path map (IOC directory -> host directory), CreateDirectory
semantics, and the C-style FileTemplate."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

PATH_MAP_ENV = "SIMBEAMLINE_AD_PATH_MAP"


class PathMap:
    """Directories the IOC names (as the Docker IOC saw them) and where they live here.

    ``PathMap.parse("/tmp=/tmp/docker_ioc/iocad/tmp")`` makes the IOC's ``/tmp/a/b``
    the host's ``/tmp/docker_ioc/iocad/tmp/a/b``. The longest matching IOC
    directory wins; paths outside every mapped directory are used as they are.
    """

    def __init__(self, pairs: list[tuple[str, str]] | None = None):
        #: (IOC directory, host directory), normalized, in the order given
        self.pairs = [(os.path.normpath(i), os.path.normpath(h)) for i, h in pairs or []]
        self._longest_first = sorted(self.pairs, key=lambda pair: len(pair[0]), reverse=True)

    @classmethod
    def parse(cls, *specs: str) -> "PathMap":
        """From "IOCDIR=HOSTDIR" items, each possibly a comma-separated list."""
        pairs = []
        for spec in specs:
            for item in filter(None, (s.strip() for s in (spec or "").split(","))):
                ioc_dir, sep, host_dir = item.partition("=")
                if not sep or not ioc_dir.startswith("/") or not host_dir.startswith("/"):
                    raise ValueError(f"path map {item!r} is not IOCDIR=HOSTDIR with absolute paths")
                pairs.append((ioc_dir, host_dir))
        return cls(pairs)

    def _match(self, ioc_path: str):
        norm = os.path.normpath(ioc_path) if ioc_path else ioc_path
        for ioc_dir, host_dir in self._longest_first:
            if norm == ioc_dir or norm.startswith(ioc_dir.rstrip("/") + "/"):
                return norm, ioc_dir, host_dir
        return None

    def covers(self, ioc_path: str) -> bool:
        """True if *ioc_path* lies in a mapped IOC directory."""
        return self._match(ioc_path) is not None

    def to_host(self, ioc_path: str) -> str:
        """The host path of *ioc_path* (which the IOC reports to clients)."""
        match = self._match(ioc_path)
        if match is None:
            return ioc_path
        norm, ioc_dir, host_dir = match
        rest = norm[len(ioc_dir):].lstrip("/")
        mapped = os.path.join(host_dir, rest) if rest else host_dir
        return mapped + ("/" if ioc_path.endswith("/") and not mapped.endswith("/") else "")

    def ioc_roots(self) -> list[str]:
        """The mapped IOC directories, in the order given."""
        return [ioc for ioc, _ in self.pairs]

    def host_roots(self) -> list[str]:
        return [host for _, host in self.pairs]

    def __repr__(self):
        return f"PathMap({self.pairs!r})"


    def outside(self, ioc_path: str) -> str | None:
        """Why the IOC will not write in *ioc_path*, or None if it may.

        With a map, the IOC writes only inside its mapped directories (as a Docker
        IOC can reach only its mounts): '/tmp/../dev/shm/x/' is '/dev/shm/x/' and
        outside a map of '/tmp'. Without a map every absolute path is the host's."""
        norm = os.path.normpath(ioc_path) if ioc_path else ""
        if not norm.startswith("/") or norm == "/":
            return f"FilePath {ioc_path!r} is not a directory the IOC can write in"
        if self.pairs and not self.covers(norm):
            return (f"FilePath {ioc_path!r} is outside the directories this IOC writes in "
                    f"({', '.join(self.ioc_roots())}); use one of them or map another "
                    f"with --path-map")
        return None


def normalize_file_path(path: str) -> str:
    """FilePath as NDPluginFile stores it: a trailing '/' appended when missing."""
    path = path.strip()
    return path if not path or path.endswith("/") else path + "/"


def create_file_path(ioc_path: str, depth: int, path_map: PathMap) -> None:
    """Create the directories of *ioc_path* as asynNDArrayDriver::createFilePath does.

    *depth* is CreateDirectory: 0 creates nothing; a negative value allows the
    last ``abs(depth)`` directories of the path to be created; a positive value
    requires the first *depth* directories (counting the root's child as 1) to
    exist and allows everything below them to be created. Depths count the path
    as the IOC names it; the directories are made on the host through the map.
    Raises OSError when the path cannot be made under these rules.
    """
    parts = [p for p in PurePosixPath(ioc_path).parts if p != "/"]
    if depth == 0 or not parts:
        raise FileNotFoundError(f"directory {ioc_path} does not exist (CreateDirectory=0)")
    if depth < 0:
        must_exist = max(len(parts) + depth, 0)
    else:
        must_exist = min(depth, len(parts))
    for i in range(1, len(parts) + 1):
        ioc_dir = "/" + "/".join(parts[:i])
        host_dir = path_map.to_host(ioc_dir)
        if os.path.isdir(host_dir):
            continue
        if i <= must_exist:
            raise FileNotFoundError(
                f"cannot create {ioc_path}: {ioc_dir} does not exist and "
                f"CreateDirectory={depth} allows creating only the last "
                f"{len(parts) - must_exist} level(s)")
        os.mkdir(host_dir)


#: characters of a file name the plugins make (NDPluginFile's MAX_FILENAME_LEN, with its NUL)
MAX_FILENAME_CHARS = 255
#: one C conversion specification: flags, width, precision, length modifier, conversion
_C_SPEC = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?"
                     r"(?P<length>hh|h|ll|l|L|q|j|z|t)?(?P<conv>[diouxXeEfFgGaAcsp%])")


def c_format(template: str, *args) -> str:
    """*template* applied to *args* as C's snprintf does (epicsSnprintf, in the
    plugins): conversions take the arguments in order, arguments left over are
    ignored ('%s%s.h5' with path, name, number). A conversion with no argument
    left, a %s given a number or a %d given text, '*' widths, or a width or
    precision that makes the name longer than MAX_FILENAME_CHARS are refused with
    ValueError (C would read garbage or build a name it then cuts)."""
    out = []
    pos = 0
    used = 0
    for m in _C_SPEC.finditer(template):
        out.append(template[pos:m.start()])
        pos = m.end()
        conv = m["conv"]
        if conv == "%":
            out.append("%")
            continue
        if "*" in (m["width"] or "") + (m["prec"] or ""):
            raise ValueError(f"FileTemplate {template!r}: '*' widths are not supported")
        for part in (m["width"], m["prec"]):
            if part and int(part) > MAX_FILENAME_CHARS:
                raise ValueError(f"FileTemplate {template!r}: width {part} makes a file name "
                                 f"longer than {MAX_FILENAME_CHARS} characters")
        if used >= len(args):
            raise ValueError(f"FileTemplate {template!r} has more conversions than the "
                             f"{len(args)} values (path, name, number) it is given")
        arg = args[used]
        used += 1
        if conv == "s" and not isinstance(arg, str) or conv != "s" and isinstance(arg, str):
            raise ValueError(f"FileTemplate {template!r}: conversion %{conv} number {used} "
                             f"does not take {type(arg).__name__} {arg!r}")
        spec = "%" + m["flags"] + (m["width"] or "") + \
            ("." + m["prec"] if m["prec"] is not None else "") + ("d" if conv in "iu" else conv)
        if conv == "p":
            raise ValueError(f"FileTemplate {template!r}: %p is not a file name conversion")
        out.append(spec % arg)
    out.append(template[pos:])
    return "".join(out)


def format_file_name(template: str, path: str, name: str, number: int) -> str:
    """FileTemplate as the C plugin applies it: ``epicsSnprintf(template, path,
    name, number)`` (see :func:`c_format`). The name must stay inside *path*:
    a FileName or template that leads elsewhere ('../x') is refused."""
    full = c_format(template, path, name, number)
    if len(full) > MAX_FILENAME_CHARS:
        raise ValueError(f"file name {full[:60]!r}... is longer than {MAX_FILENAME_CHARS} "
                         "characters (NDPluginFile's limit)")
    if path:
        base = os.path.normpath(path)
        if not os.path.normpath(full).startswith(base.rstrip("/") + "/"):
            raise ValueError(f"file name {full!r} (FileTemplate {template!r}, FileName "
                             f"{name!r}) is not inside FilePath {path!r}")
    return full
