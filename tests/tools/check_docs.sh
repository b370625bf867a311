#!/usr/bin/env bash
# tests/tools/check_docs.sh -- the man pages and the bash completion the build generates hold every
# command and option the binaries take (issue 9, item 14: one source, nothing left out).
#
#   check_docs.sh IFPPCTL MAN-DIR COMPLETION-FILE TOOL...
#
# IFPPCTL's commands and options come from `ifppctl --complete-words` (the parser's own tables); each
# must be in ifppctl.1 and be offered by the completion function, per command. For every TOOL, each
# --option its --help names must be in TOOL.1.
set -euo pipefail
ifppctl=$1 man=$2 completion=$3
shift 3
fails=0
bad() { echo "check_docs: $*" >&2; fails=$((fails + 1)); }

# man source with its escapes undone: help2man writes '-' as '\-'
text() { [ -s "$1" ] || { bad "$1: missing or empty"; return; }; sed -e 's/\\-/-/g' -e 's/\\(aq/'"'"'/g' "$1"; }

words=$("$ifppctl" --complete-words)
[ -n "$words" ] || bad "ifppctl --complete-words printed nothing"
page=$(text "$man/ifppctl.1")
for w in $(tr ' ' '\n' <<<"$words" | grep -v -e '^\*$' -e '^FILE$' | sed 's/=$//' | sort -u); do
  grep -qF -- "$w" <<<"$page" || bad "ifppctl.1 does not mention $w"
done

# the completion, as bash runs it
# shellcheck disable=SC1090
source "$completion"
offers() { # offers WORD... : COMPREPLY for the command line "ifppctl WORD..." (the last word is completed)
  COMP_WORDS=(ifppctl "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _ifppctl
  echo " ${COMPREPLY[*]} "
}
cmds=$(grep -v '^\*' <<<"$words" | cut -d' ' -f1)
globals=$(sed -n 's/^\* //p' <<<"$words" | tr ' ' '\n' | sed 's/=$//' | tr '\n' ' ')
got=$(offers "")
for c in $cmds; do
  [[ $got == *" $c "* ]] || bad "completion of 'ifppctl ' lacks $c (offers:$got)"
done
while read -r -a line; do # an array: the '*' is never a glob
  [ "${line[0]}" = '*' ] && continue
  c=${line[0]}
  first=1
  [ "${line[1]:-}" = FILE ] && first=2
  got=$(offers --store x.db "$c" --)
  for o in "${line[@]:first}" $globals; do
    o=${o%=}
    [[ $got == *" $o "* ]] || bad "completion of 'ifppctl $c --' lacks $o (offers:$got)"
  done
done <<<"$words"

# the test tools: every --option of their --help is in their man page
for tool in "$@"; do
  name=$(basename "$tool")
  page=$(text "$man/$name.1")
  for o in $("$tool" --help 2>&1 | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -qF -- "$o" <<<"$page" || bad "$name.1 does not mention $o"
  done
done

if [ "$fails" -ne 0 ]; then
  echo "check_docs: $fails word(s) missing" >&2
  exit 1
fi
echo "check_docs: every command and option is in the man pages and the completion"
