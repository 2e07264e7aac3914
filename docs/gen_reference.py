"""Write one API reference page per public module of ``starlight_sequences`` (run by the
mkdocs-gen-files plugin at build time; nothing is written to the source tree).

Public means: no part of the dotted name starts with an underscore. A new public module or
package is picked up without editing ``mkdocs.yml``.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "starlight_sequences"

navigation = mkdocs_gen_files.Nav()
for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    elif parts[-1] == "__main__":
        continue
    if any(part.startswith("_") for part in parts):
        continue
    module = ".".join(parts)
    page = Path("reference", *parts, "index.md")
    navigation[tuple(parts)] = Path(*parts, "index.md").as_posix()
    with mkdocs_gen_files.open(page, "w") as handle:
        handle.write(f"# `{module}`\n\n::: {module}\n")
    mkdocs_gen_files.set_edit_path(page, path.relative_to(SOURCE.parent))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as handle:
    handle.writelines(navigation.build_literate_nav())
