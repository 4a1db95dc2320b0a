# Sourced by the interop tests: installs the npm packages of package.json once per build
# tree into $modules (under a lock, since ctest runs tests in parallel).
# Needs: src, build. Sets: modules (with node_wire.mjs, the node clients' shared helper).
modules=$build/interop
mkdir -p "$modules"
(
  flock 9
  if ! cmp -s "$src/tests/interop/package.json" "$modules/package.json" || [ ! -d "$modules/node_modules" ]; then
    cp "$src/tests/interop/package.json" "$modules/"
    (cd "$modules" && npm install --no-audit --no-fund --silent) || { echo "npm install failed"; exit 1; }
  fi
) 9>"$modules/.lock" || exit 1
# The shared helper of the hand-encoding node clients; replaced atomically (rename), since a
# test running in parallel may be importing it.
cp "$src/tests/interop/node_wire.mjs" "$modules/.node_wire.mjs.$$" && mv -f "$modules/.node_wire.mjs.$$" "$modules/node_wire.mjs"
