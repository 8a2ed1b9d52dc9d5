#!/usr/bin/env bash
# appel_li.smoke: `appel-li --quick --json` writes valid JSON carrying the fields the issue
# names, measures exactly the available backends (the rest listed with a reason), and bad
# input fails with a one-line message and a non-zero status.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$SECONDS
"$bin" --quick --json "$tmp/out.json" >"$tmp/table.txt" 2>"$tmp/progress.txt"
echo "appel-li --quick took $((SECONDS - start)) s"

/usr/bin/python3 - "$tmp/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["platform"]
for k in ("id", "virt", "cpu_vendor", "cpu_model", "kernel", "ncpus", "backends"):
    assert k in p, "platform lacks " + k
assert p["virt"] in ("hw", "pvm", "tcg", "none"), p["virt"]
names = [b["name"] for b in p["backends"]]
assert names == ["mprotect", "uffd", "uffd-sigbus", "softdirty", "dune"], names
avail = {b["name"] for b in p["backends"] if b["available"]}
for b in p["backends"]:
    if b["available"]:
        assert all(("why" in f) != f["ok"] for f in b["features"].values()), b
    else:
        assert b["why"], b
res = d["results"]
assert {r["backend"] for r in res} == avail, ({r["backend"] for r in res}, avail)
for r in res:
    for k in ("primitive", "backend", "median_cycles", "p10_cycles", "p90_cycles", "reps", "unit"):
        assert k in r, (k, r)
    assert 0 <= r["p10_cycles"] <= r["median_cycles"] <= r["p90_cycles"], r
    assert r["reps"] >= 5, r
    # Only dune results carry a ratio: mprotect's median over dune's, where both measured it.
    ref = [m for m in res if m["backend"] == d["config"]["linux_reference"] and "variant" not in m
           and (m["primitive"], m["pages"]) == (r["primitive"], r["pages"])]
    if r["backend"] == "dune" and ref:
        assert abs(r["linux_dune_ratio"] - ref[0]["median_cycles"] / r["median_cycles"]) < 1e-9, r
    else:
        assert r["linux_dune_ratio"] is None, r  # never an invented ratio
for b in p["backends"]:
    if not b["available"]:
        continue
    f = b["features"]
    got = {(r["primitive"], r["pages"]) for r in res if r["backend"] == b["name"] and "variant" not in r}
    want = set()
    if f["trap"]["ok"]:
        want |= {("trap", 1), ("prot1", 1), ("unprot", 1), ("protN", 100), ("protN_batch", 100),
                 ("appel1", 100), ("appel2", 100)}
    if f["dirty"]["ok"]:
        want |= {(k, n) for k in ("dirty", "dirty_write") for n in (1024, 4096, 16384, 65536)}
    if f["accessed"]["ok"]:
        want |= {("accessed", n) for n in (1024, 4096, 16384, 65536)}
    if f["map2"]["ok"]:
        want.add(("map2", 100))
    assert got == want, (b["name"], sorted(got ^ want))
print("valid: %d results for %s; unavailable: %s" % (len(res), sorted(avail),
      [b["name"] for b in p["backends"] if not b["available"]]))
PY

# expect_error STATUS MESSAGE-PART ARGS...: fails with that status and a one-line message.
expect_error() {
  local want=$1 msg=$2 rc=0
  shift 2
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [[ $rc -ne $want ]] || ! grep -qF -- "$msg" "$tmp/err" || [[ $(wc -l <"$tmp/err") -ne 1 ]]; then
    echo "appel-li $*: want status $want and one line with '$msg'; got $rc:"
    cat "$tmp/err"
    exit 1
  fi
  echo "refused as expected: appel-li $* -> $(cat "$tmp/err")"
}
expect_error 2 "unknown option '--bogus'" --bogus
expect_error 2 "--json needs a file name" --json
expect_error 2 "--fraction must be a number in (0, 1], got '2'" --fraction 2
expect_error 2 "--fraction must be a number in (0, 1], got 'x'" --fraction x
expect_error 2 "unknown backend 'nope'" --backend nope
expect_error 1 "cannot write $tmp/no/such/dir/out.json" --quick --json "$tmp/no/such/dir/out.json"
unsupported=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(b["name"] for b in json.load(open(sys.argv[1]))["platform"]["backends"] if not b["available"]))' "$tmp/out.json")
for name in $unsupported; do
  expect_error 1 "backend '$name' is unsupported here:" --quick --backend "$name"
done
"$bin" --help | grep -q "usage: appel-li"
echo "appel_li.smoke: ok"
