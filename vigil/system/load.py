"""Reading a system file: YAML in, a validated ``System`` out, or one error listing every problem by path."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from vigil.system.model import System


class SystemFileError(Exception):
    """The system file cannot be used; the message names the file and each problem's place in it.

    Not a ValueError: it must pass through pydantic (which turns ValueErrors into its own) unchanged.
    """


def error_path(location: tuple[int | str, ...]) -> str:
    """``("services", 2, "calls", 0)`` -> ``services[2].calls[0]``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def problems(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["loc"]:
            lines.append(f"{error_path(item['loc'])}: {message}")
        else:  # cross-reference problems carry their own paths, one per line
            lines.extend(message.splitlines())
    return lines


def parse_system(text: str, source: str = "<system>") -> System:
    try:
        raw = yaml.safe_load(text)
    # ValueError: an integer of more than 4300 digits; RecursionError: too deeply nested.
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise SystemFileError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise SystemFileError(f"{source}: expected a mapping with name, services, ... at the top level")
    try:
        return System.model_validate(raw)
    except ValidationError as error:
        listed = "\n".join(f"  {line}" for line in problems(error))
        raise SystemFileError(f"{source} is not a valid system file:\n{listed}") from error


def load_system(path: Path) -> System:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SystemFileError(f"{path}: no such file") from None
    except OSError as error:
        raise SystemFileError(f"{path}: cannot read it: {error}") from error
    except UnicodeDecodeError as error:
        raise SystemFileError(f"{path}: not UTF-8 text: {error}") from error
    except ValueError as error:  # a NUL byte in the path
        raise SystemFileError(f"{path}: cannot read it: {error}") from error
    return parse_system(text, str(path))
