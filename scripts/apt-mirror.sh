# Sourced by scripts and tests that fetch from Debian: ep_apt_mirror SUITE prints the URI of
# this machine's own apt source for SUITE (the first enabled "deb" entry of
# /etc/apt/sources.list, sources.list.d/*.list or deb822 *.sources), or nothing. So no
# registry's host name is ever written into the repository.

# ep_uri_from_list FILE SUITE: one-line format, deb [options] URI SUITE [COMPONENT...].
ep_uri_from_list() {
  sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$1" |
    awk -v s="$2" '$1 == "deb" && $3 == s { print $2; exit }'
}

# ep_uri_from_sources FILE SUITE: deb822 format, stanzas of Field: value, blank-line
# separated, continuation lines indented.
ep_uri_from_sources() {
  awk -v s="$2" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && tolower(enabled) != "no" && uris != "") {
        split(uris, u, " "); print u[1]; found = 1; exit
      }
      types = suites = uris = enabled = ""; last = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (last != "") { sub(/^[ \t]+/, ""); val[last] = val[last] " " $0; assign(last) } next }
    {
      i = index($0, ":"); if (i == 0) next
      last = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v)
      val[last] = v; assign(last)
    }
    function assign(k) {
      if (k == "types") types = val[k]; else if (k == "suites") suites = val[k]
      else if (k == "uris") uris = val[k]; else if (k == "enabled") enabled = val[k]
    }
    END { if (!found) flush() }
  ' "$1"
}

ep_apt_mirror() {
  local f m=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case $f in
      *.sources) m=$(ep_uri_from_sources "$f" "$1") ;;
      *) m=$(ep_uri_from_list "$f" "$1") ;;
    esac
    [ -n "$m" ] && break
  done
  echo "$m"
}
