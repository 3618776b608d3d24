#!/bin/bash
# Doc-rot check: docs/api.md must agree with the public headers, and the
# relative links in README.md and docs/*.md must point at existing files.
#
#   - Every function declared with CREW_EXPORT in include/crew/*.h appears in
#     docs/api.md written as `name(` (the page writes functions as `name()`).
#   - Every `crew_...(` that docs/api.md names is such a declared function.
#   - Every public typedef (crew_*_t) and every CREW_* macro and enumerator of
#     the headers appears in docs/api.md (include guards are not API).
#   - Every link target `](target)` in README.md and docs/*.md that is not a
#     URL or an in-page anchor names an existing file or directory, relative
#     to the Markdown file (an #anchor after it is ignored).
#
# Usage: check_api_doc.sh SOURCE_DIR
# Exit status: 0 all good; 1 a check failed (each problem is named on
# stderr); 2 usage error or missing input.
# Needs bash and perl (perl-base is Essential on Debian).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 SOURCE_DIR" >&2
    exit 2
fi
src=$1
api=$src/docs/api.md
shopt -s nullglob
headers=("$src"/include/crew/*.h)
if [ ${#headers[@]} -eq 0 ] || [ ! -f "$api" ]; then
    echo "check_api_doc: need $src/include/crew/*.h and $api" >&2
    exit 2
fi

problems=0
problem() {
    echo "check_api_doc: $*" >&2
    problems=$((problems + 1))
}

# The headers with comments and string literals removed, all in one string,
# so that a declaration split over lines is still one match.
code=$(perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g; s{"(?:\\.|[^"\\])*"}{""}g' "${headers[@]}")

exported=$(perl -0777 -ne 'print "$1\n" while /\bCREW_EXPORT\b[^;{}()]*?\b(crew_\w+)\s*\(/g' <<<"$code" |
    sort -u)
if [ -z "$exported" ]; then
    echo "check_api_doc: found no CREW_EXPORT function in the headers" >&2
    exit 2
fi
guards=$(perl -ne 'print "$1\n" if /^\s*#\s*ifndef\s+(CREW_\w+_H)\b/' "${headers[@]}" | sort -u)
typedefs=$(perl -0777 -ne 'print "$1\n" while /\}\s*(crew_\w+_t)\s*;/g;
    print "$1\n" while /\btypedef\b[^;{]*?\b(crew_\w+_t)\s*;/g;
    print "$1\n" while /\(\s*\*\s*(crew_\w+_t)\s*\)/g' <<<"$code" | sort -u)
macros=$(perl -ne 'print "$1\n" if /^\s*#\s*define\s+(CREW_\w+)/' "${headers[@]}" | sort -u |
    comm -23 - <(printf '%s\n' "$guards"))
enumerators=$(perl -0777 -ne 'while (/\benum\b[^{;]*\{([^}]*)\}/g) {
    my $body = $1; print "$1\n" while $body =~ /\b(CREW_\w+)\s*(?:=|,|$)/g }' <<<"$code" | sort -u)

doc=$(cat "$api")
documented=$(perl -ne 'print "$1\n" while /(?<![\w.])(crew_\w+)\(/g' <<<"$doc" | sort -u)

for f in $exported; do
    grep -Eq "(^|[^A-Za-z0-9_.])$f\(" <<<"$doc" ||
        problem "docs/api.md does not document function $f (write it as \`$f()\`)"
done
for f in $documented; do
    grep -qx "$f" <<<"$exported" ||
        problem "docs/api.md names $f(), which no header in include/crew/ declares with CREW_EXPORT"
done
for n in $typedefs $macros $enumerators; do
    grep -Eq "(^|[^A-Za-z0-9_])$n([^A-Za-z0-9_]|$)" <<<"$doc" ||
        problem "docs/api.md does not mention $n"
done

for md in "$src"/README.md "$src"/docs/*.md; do
    dir=$(dirname "$md")
    rel=${md#"$src"/}
    while IFS= read -r target; do
        [ -n "$target" ] || continue
        case $target in
        http://* | https://* | mailto:* | '#'*) continue ;;
        esac
        path=${target%%#*}
        [ -e "$dir/$path" ] || problem "$rel links to $target, which does not exist"
    done < <(perl -ne 'print "$1\n" while /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g' "$md")
done

if [ "$problems" -ne 0 ]; then
    echo "check_api_doc: FAIL ($problems problem(s))" >&2
    exit 1
fi
echo "check_api_doc: OK ($(wc -w <<<"$exported") functions," \
    "$(wc -w <<<"$typedefs $macros $enumerators") types, macros and constants; links checked)"
