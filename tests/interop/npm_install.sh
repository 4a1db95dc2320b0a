# Sourced by the interop tests: installs the npm packages of package.json once per build
# tree into $modules (under a lock, since ctest runs tests in parallel).
# Needs: src, build. Sets: modules.
modules=$build/interop
mkdir -p "$modules"
(
  flock 9
  if ! cmp -s "$src/tests/interop/package.json" "$modules/package.json" || [ ! -d "$modules/node_modules" ]; then
    cp "$src/tests/interop/package.json" "$modules/"
    (cd "$modules" && npm install --no-audit --no-fund --silent) || { echo "npm install failed"; exit 1; }
  fi
) 9>"$modules/.lock" || exit 1
