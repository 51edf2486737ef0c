"""File names for exported frames: a template filled from a run's documents, kept
inside the export directory.

A template is a ``str.format`` string whose fields name the documents of the run,
as in the seed recipe: ``"{start.scan_id}_step{event.seq_num:04d}.tif"``. Any key
of the start, descriptor or event document can be used, nested keys with dots
(``{event.data.motor_spotx:.2f}``, ``{descriptor.name}``) or brackets
(``{start[sample name]}``), with the usual format specs.

Two things go wrong with user templates, and both must be caught before a file is
written: a field that the run does not have (the error names it and lists the
fields that do exist), and a value that moves the file outside the export
directory (a sample name ``'../../x'``, an absolute path). :func:`render_path`
checks both and returns an absolute path inside the export directory.
"""

from __future__ import annotations

import os
import string
from pathlib import Path


class TemplateError(ValueError):
    """The template cannot be filled from this run (unknown field, bad spec)."""


class PathEscapeError(ValueError):
    """The filled template points outside the export directory."""


#: Names a template may use; each maps to one document.
DOCUMENT_NAMES = ("start", "descriptor", "event")


class _Fields:
    """Attribute and item access to a document for ``str.format``, with errors that
    name the missing field and the fields that exist."""

    __slots__ = ("_doc", "_path")

    def __init__(self, doc: dict, path: str):
        self._doc = doc
        self._path = path

    def _get(self, key):
        try:
            value = self._doc[key]
        except (KeyError, TypeError, IndexError):
            available = ", ".join(sorted(map(str, self._doc))) if isinstance(self._doc, dict) else ""
            raise TemplateError(
                f"template field '{self._path}.{key}' is not in this run; "
                f"'{self._path}' has: {available or '(nothing)'}"
            ) from None
        if isinstance(value, dict):
            return _Fields(value, f"{self._path}.{key}")
        return value

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return self._get(key)

    def __getitem__(self, key):
        return self._get(key)

    def __format__(self, spec):
        return format(self._doc, spec)

    def __str__(self):
        return str(self._doc)


class _Anything:
    """Stands for a document not seen yet: any field, any format spec, one safe
    path component. Lets :func:`check_template` test the start fields early."""

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return self

    def __getitem__(self, key):
        return self

    def __format__(self, spec):
        return "0"


def template_fields(template: str) -> list[str]:
    """The field names used by *template* (``'start.scan_id'``, ...)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise TemplateError(f"template {template!r} is not a valid format string: {err}") from None
    return [field for _, field, _, _ in parsed if field is not None]


def _check_names(template: str) -> None:
    for field in template_fields(template):
        root = field.split(".", 1)[0].split("[", 1)[0]
        if root not in DOCUMENT_NAMES:
            raise TemplateError(
                f"template field '{{{field}}}' must start with one of "
                f"{', '.join(DOCUMENT_NAMES)} (for example '{{start.scan_id}}' or "
                f"'{{event.seq_num:04d}}')"
            )


def export_root(template: str, directory: str | os.PathLike | None) -> tuple[Path, str]:
    """Split *template* into the export directory and the template below it.

    With *directory* given, a relative template is placed below it. With no
    directory, the fixed leading part of the template (up to the last separator
    before the first field) is the export directory, so the seed's absolute
    templates ``/home/user/tiff_base/{start.sa_name}_....tif`` work as written.
    """
    text = os.fspath(template)
    fixed = text.split("{", 1)[0]
    head = os.path.dirname(fixed)
    rest = text[len(head):].lstrip("/") if head else text
    if directory is None:
        return Path(head or ".").expanduser().resolve(), rest
    root = Path(directory).expanduser().resolve()
    if not os.path.isabs(text):
        return root, text
    head_dir = Path(head).resolve()
    if not head_dir.is_relative_to(root):
        raise PathEscapeError(
            f"template {template!r} is an absolute path outside the export "
            f"directory {str(root)!r}: use a template relative to it"
        )
    below = head_dir.relative_to(root)
    return root, rest if str(below) == "." else os.path.join(below, rest)


def render_path(template: str, root: Path, start: dict, descriptor: dict | None = None,
                event: dict | None = None) -> Path:
    """Fill *template* (relative to *root*) from the documents; return the absolute
    file path, refusing any that leaves *root*.

    Documents passed as None stand for "not known yet": their fields format as
    ``0`` so the start fields can be checked before the first event.
    """
    _check_names(template)
    values = {
        "start": _Fields(start, "start"),
        "descriptor": _Anything() if descriptor is None else _Fields(descriptor, "descriptor"),
        "event": _Anything() if event is None else _Fields(event, "event"),
    }
    try:
        name = template.format(**values)
    except TemplateError:
        raise
    except (ValueError, TypeError) as err:
        raise TemplateError(f"template {template!r} cannot be filled from this run: {err}") from None
    except (IndexError, KeyError) as err:
        raise TemplateError(f"template {template!r} uses an unknown field: {err}") from None
    if not name or name.endswith(("/", os.sep)):
        raise TemplateError(f"template {template!r} gives {name!r}, which is not a file name")
    if "\x00" in name:
        raise PathEscapeError(f"template {template!r} gives a file name with a NUL byte")
    root = Path(root).resolve()
    candidate = Path(os.path.normpath(os.path.join(root, name)))
    # resolve symlinks of the parts that exist, so a link out of the directory is caught too
    resolved = candidate.resolve()
    if os.path.isabs(name) or not resolved.is_relative_to(root) or resolved == root:
        raise PathEscapeError(
            f"template {template!r} gives {name!r}, which is outside the export "
            f"directory {str(root)!r}; nothing was written. Change the run's metadata "
            "or the template so that the file name stays inside it"
        )
    return resolved
