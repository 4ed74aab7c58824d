#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM: load ummunotify.ko, run CMD with /dev/ummunotify
# present, then unload it (the unload must succeed too).  For the library's
# device-backend tests, e.g. from the host:
#
#   kmod/ummunotify/test.sh build
#   tests/vm/run.sh --check-dmesg -- kmod/ummunotify/with-module.sh deno test -A tests/kernel/
#   tests/vm/run.sh --debug --check-dmesg -- kmod/ummunotify/with-module.sh bun test tests/kernel/
#
# The module is taken from <repo>/.cache/ummunotify/{release,debug}/ by the
# running kernel's release string (set UMN_KO to override).  Exit status:
# CMD's, or 1 if the module did not load or unload.

set -u
here=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -P -- "$here/../.." && pwd)
case $(uname -r) in *-debug) variant=debug ;; *) variant=release ;; esac
ko=${UMN_KO:-$repo/.cache/ummunotify/$variant/ummunotify.ko}

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
[ -r "$ko" ] || { echo "with-module: $ko not built (run kmod/ummunotify/test.sh build on the host)" >&2; exit 1; }
insmod "$ko" || { echo "with-module: insmod $ko failed" >&2; exit 1; }
"$@"
st=$?
rmmod ummunotify || { echo "with-module: rmmod failed (a file still open?)" >&2; st=1; }
exit $st
