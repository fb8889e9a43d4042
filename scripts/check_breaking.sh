#!/usr/bin/env bash
# buf breaking: the working tree against main; on a clean checkout of main, main's
# newest proto change against the commit before it. Skips only before the first
# commit that has protos (nothing to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.venv/bin/buf}
if ! git rev-parse -q --verify main >/dev/null; then
  echo "buf breaking: no main branch here; nothing to compare with"; exit 0
fi
against="main"
if git diff --quiet main -- proto && [ -z "$(git ls-files --others --exclude-standard proto)" ]; then
  last=$(git log -n1 --format=%H main -- proto)
  if ! git cat-file -e "${last}~1:proto" 2>/dev/null; then
    echo "buf breaking: main's first protos; nothing earlier to compare with"; exit 0
  fi
  against="${last}~1"
fi
against=$(git rev-parse "${against}")
# buf clones the repository shallowly; the depth must reach the compared commit.
depth=$(( $(git rev-list --count HEAD) + 1 ))
echo "buf breaking against ${against}"
"$BUF" breaking --against ".git#ref=${against},depth=${depth}"
