"""YAML read with line numbers, and problems told as people read them: the one loader of every
YAML file the project reads (matrices, suites, target files' checks, advisories)."""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import safeyaml
from ..safeyaml import format_path

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem, located in its file."""

    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        return f"{loc}: {self.where}: {self.message}" if self.where else f"{loc}: {self.message}"


class MatrixError(Exception):
    """A matrix could not be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Lines(safeyaml.Converter):
    """YAML -> Python values, remembering the line of every node and key; problems as Problems."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, line: int, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.file, line, format_path(path), message))


def compose(text: str, file: str, error: type[MatrixError] = MatrixError) -> yaml.Node | None:
    """The YAML node of ``text`` within the loader's limits; ``error`` (a MatrixError) otherwise."""
    try:
        return safeyaml.compose(text, file)
    except safeyaml.InputError as exc:
        raise error([Problem(file, exc.line, "", exc.message)]) from None


def read_text(path: str | Path, what: str, error: type[MatrixError] = MatrixError) -> str:
    """A matrix or suite file's text (regular file, size cap, UTF-8); ``error`` otherwise."""
    try:
        return safeyaml.read_text(path, what)
    except safeyaml.InputError as exc:
        raise error([Problem(exc.file, exc.line, "", exc.message)]) from None


_TYPE_WORDS = {"array": "a list", "object": "a mapping", "string": "a string", "number": "a number",
               "boolean": "true or false", "integer": "an integer"}


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def schema_problems(data: Any, ln: Lines, validator: Draft202012Validator,
                     what: str = "matrix") -> list[Problem]:
    """Schema errors as people read them (shared by matrices and suites)."""
    problems = []
    errors = validator.iter_errors(data)
    for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        if err.context:
            # oneOf/anyOf: blame the branch that fits the value's shape.
            want = "object" if isinstance(err.instance, dict) else None
            err = min(err.context, key=lambda e: (
                e.schema.get("type") != want if want else e.validator != "enum",
                -len(e.absolute_path)))
        path = tuple(err.absolute_path)
        if path in ln.nonfinite:
            continue  # already reported as "not a finite number"; a range error would only repeat it
        if err.validator == "additionalProperties":
            allowed = err.schema.get("properties", {})
            for extra in sorted(set(err.instance) - set(allowed)):
                key_path = path + (extra,)
                problems.append(Problem(ln.file, ln.key_lines.get(key_path, ln.line(path)),
                                        format_path(key_path),
                                        f"unknown key{suggest(extra, allowed)}"))
            continue
        if err.validator == "enum":
            choices = [str(c) for c in err.validator_value]
            if len(choices) > 8:
                hint = suggest(err.instance, choices) or f" (known: {', '.join(choices)})"
                msg = f"{err.instance!r} is not a known value{hint}"
            else:
                msg = f"{err.instance!r} is not one of: {', '.join(choices)}"
        elif err.validator == "required":
            # jsonschema reports one error per missing key, each naming it first in its message.
            key = err.message.split(" is a required property")[0].strip("'\"")
            msg = f"missing required key {key!r}"
        elif err.validator == "minItems" and path == ("checks",):
            msg = "the matrix has no checks"
        elif err.validator == "minItems":
            msg = f"the {what} names no {path[-1] if path else 'items'}"
        elif err.validator == "pattern" and path and path[-1] == "expires":
            msg = f"{err.instance!r} is not a date (YYYY-MM-DD)"
        elif err.validator == "minLength":
            msg = "must not be empty"
        elif err.validator == "pattern" and path and path[-1] == "id":
            msg = f"{err.instance!r} is not a valid check id (dotted lowercase, e.g. fs.read.symlink)"
        elif err.validator == "type" and path and path[-1] == "mode" and isinstance(err.instance, int):
            msg = f"the number {err.instance!r} is not a mode: write it as a quoted octal string, e.g. \"0600\""
        elif err.validator == "type":
            shown = "an empty value" if err.instance is None else repr(err.instance)
            kinds = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            msg = f"{shown} is not {' or '.join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds)}"
        elif err.validator in ("exclusiveMinimum", "minimum", "maximum"):
            bound = {"exclusiveMinimum": "greater than", "minimum": "at least", "maximum": "at most"}
            msg = f"{err.instance!r} is out of range: must be {bound[err.validator]} {err.validator_value}"
        elif err.validator == "const":
            msg = f"{err.instance!r} is not supported (only {err.validator_value!r})"
        else:
            msg = err.message
        problems.append(Problem(ln.file, ln.line(path), format_path(path), msg))
    return problems


#: Documents (by digest, with the schema's) that validated clean before: a process that
#: loads a matrix another one already checked skips the schema validator (importing
#: jsonschema and validating cost a few hundred ms of CPU in every process of a
#: sharded run). Semantic checks still run every time.
_VALID_FILE = "valid.json"
_VALID_KEPT = 512


def _valid_folder() -> Path | None:
    from ..targets.tools import state_dir

    return state_dir("schema-checked", create=False)


def checked_schema_problems(data: Any, ln: Lines, schema_text: str,
                            validator: Callable[[], Draft202012Validator], what: str = "matrix") -> list[Problem]:
    """``schema_problems``, skipped for a document that validated clean against the same schema."""
    import hashlib
    import json

    from .. import __version__

    try:
        doc = json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return schema_problems(data, ln, validator(), what)
    key = hashlib.sha256(f"{__version__}\0{schema_text}\0{doc}".encode()).hexdigest()
    folder = _valid_folder()
    known: list[str] = []
    if folder is not None:
        try:
            loaded = json.loads((folder / _VALID_FILE).read_text(encoding="utf-8"))
            known = [k for k in loaded if isinstance(k, str)] if isinstance(loaded, list) else []
        except (OSError, ValueError):
            known = []
        if key in known:
            return []
    problems = schema_problems(data, ln, validator(), what)
    if not problems:
        from ..targets.tools import state_dir

        folder = folder or state_dir("schema-checked")
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{_VALID_FILE}.{os.getpid()}"
                tmp.write_text(json.dumps([*known, key][-_VALID_KEPT:]), encoding="utf-8")
                os.replace(tmp, folder / _VALID_FILE)
            except OSError:
                pass
    return problems
