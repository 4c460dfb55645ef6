#!/usr/bin/env bash
# Fails if git tracks a file over 1 MiB (1,048,576 bytes), or a file with the
# executable bit (mode 100755) that is not a script (its content does not
# start with "#!"). Both are what a committed build output looks like (the
# controller and plugin binaries once were): it stays in every clone's
# history for good, and belongs in bin/ or hack/tools/bin/, which are ignored.
#
# It reads the index (git ls-files), not the working tree, so it checks what
# the next commit holds, and it runs from any directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly max_bytes=1048576
failed=0

# Each entry of `git ls-files -s -z` is "mode object stage<TAB>path", ended
# by a NUL so that any path, even one with a newline, is read whole.
while IFS= read -r -d '' entry; do
	path=${entry#*$'\t'}
	read -r mode object _ <<<"${entry%%$'\t'*}"
	# A submodule's entry names a commit of another repository, not a file.
	[[ $mode == 160000 ]] && continue
	size=$(git cat-file -s "$object")
	if ((size > max_bytes)); then
		echo "$path: $size bytes, over the limit of $max_bytes"
		failed=1
	fi
	if [[ $mode == 100755 ]]; then
		# Only the first two bytes are read, however large the blob; tr drops
		# NUL bytes, which a shell variable cannot hold.
		magic=$(head -c 2 < <(git cat-file blob "$object") | tr -d '\0')
		if [[ $magic != '#!' ]]; then
			echo "$path: executable (mode 100755) but not a script: it does not start with #!"
			failed=1
		fi
	fi
done < <(git ls-files -s -z)

if ((failed)); then
	echo "check-tree: the files above should not be tracked (build outputs go in bin/)" >&2
	exit 1
fi
