"""One overwrite rule for everything that writes a folder: ``run``, ``demo``, ``generate``, ``train``, ``evaluate``.

- An output path that is a file is refused before any work starts.
- A folder holding finished work (its ``finished`` marker files) is never replaced without ``overwrite``.
- A folder holding another run's unfinished work is resumed only when the saved settings equal the
  current ones; otherwise the differing settings are named and nothing is touched.
- A non-empty folder that holds none of our work is refused (unless ``overwrite``, which then writes
  beside what is there and deletes nothing it did not write).

Every check is side-effect free, so the CLI runs them all before any expensive stage;
:func:`clear` deletes only the named outputs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from llama_index_bge_finetune.errors import OutputExistsError

def check_not_file(path: Path, option: str = "--output") -> None:
    """Refuse an output path that is an existing file (or a path below a file)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputExistsError(
                    f"The output path {path} is {'a file' if p == path else f'below the file {p}'}, not a folder. "
                    f"Pass a folder path with {option} (a new or empty folder, or one this command wrote before)."
                )
            return


def folder_state(path: Path, owned: Iterable[str], finished: Iterable[str]) -> str:
    """``"new"`` (missing or empty), ``"finished"``, ``"unfinished"`` (some of ``owned`` exist) or ``"foreign"``."""
    path = Path(path)
    if not path.is_dir() or not any(path.iterdir()):
        return "new"
    if any((path / name).exists() for name in finished):
        return "finished"
    if any((path / name).exists() for name in owned):
        return "unfinished"
    return "foreign"


def check_folder(
    path: Path,
    *,
    overwrite: bool,
    owned: Sequence[str],
    finished: Sequence[str],
    what: str,
    option: str = "--output",
    overwrite_flag: str = "--overwrite",
    allow_foreign: bool = False,
) -> str:
    """Apply the rule to ``path`` without changing anything; returns :func:`folder_state`.

    Args:
        owned: names (files or folders) this command writes; any of them marks the folder as ours.
        finished: names whose presence means the work is finished.
        what: what the folder holds, for messages (e.g. ``"a finished run (report.json, model/)"``).
        allow_foreign: accept a non-empty folder holding none of ``owned`` (the command only adds files).
    """
    check_not_file(path, option)
    state = folder_state(path, owned, finished)
    if state == "finished" and not overwrite:
        raise OutputExistsError(
            f"The output folder {path} already holds {what}. Pass {overwrite_flag} to replace it, "
            f"or choose another {option}; nothing was changed."
        )
    if state == "foreign" and not overwrite and not allow_foreign:
        entries = sorted(p.name for p in Path(path).iterdir())
        raise OutputExistsError(
            f"The output folder {path} is not empty and does not hold a previous run "
            f"({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}). Choose an empty or new folder "
            f"with {option}, or pass {overwrite_flag} to write beside those files."
        )
    return state


def clear(path: Path, names: Iterable[str]) -> None:
    """Delete the outputs ``names`` in ``path`` (files or folders); nothing else."""
    for name in names:
        target = Path(path) / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def normalise(value: Any) -> Any:
    """A value as it reads back from JSON (tuples become lists), for comparing saved and current settings."""
    return json.loads(json.dumps(value, default=str))


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> List[str]:
    """``"chunk_size: 512 before, 256 now"`` for every key present in both that differs."""
    diffs = []
    for key, now in current.items():
        if key in saved and normalise(saved[key]) != normalise(now):
            diffs.append(f"{key}: {saved[key]!r} before, {normalise(now)!r} now")
    return diffs


def load_settings(path: Path) -> Optional[Dict[str, Any]]:
    """The settings saved at ``path``, or ``None`` when there are none (or the file is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_same_settings(files: Iterable[Path], current: Mapping[str, Any], folder: Path,
                        option: str = "--output", overwrite_flag: str = "--overwrite") -> None:
    """Refuse to resume unfinished work in ``folder`` that was started with other settings.

    Every settings file in ``files`` that exists is compared on the keys it shares with ``current``.
    """
    diffs: List[str] = []
    for f in files:
        saved = load_settings(f)
        if saved is not None:
            diffs += [d for d in settings_differences(saved, current) if d not in diffs]
    if diffs:
        raise OutputExistsError(
            f"The output folder {folder} holds an unfinished run started with other settings "
            f"({'; '.join(diffs)}). Rerun with the earlier settings to resume it, pass {overwrite_flag} to "
            f"start over with the new ones, or choose another {option}; nothing was changed."
        )


def write_settings(path: Path, settings: Mapping[str, Any]) -> None:
    """Write ``settings`` as JSON atomically (never secrets: callers pass settings, not credentials)."""
    write_text(path, json.dumps(dict(settings), indent=2, default=str))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
