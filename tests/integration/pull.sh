#!/bin/bash
# SPDX-License-Identifier: MIT
# slmctl pull, import --from-ollama and discover against slmd on a private bus and the test
# suite's own hub, registry and file server (fake-hub.py), with the models of ../shared/.
# Output is TAP: one line per check.
# Usage: tests/integration/pull.sh BUILD_DIR SHARED_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
models=$(cd "$2/models" && pwd)
# shellcheck source=../private-bus.sh
. "$here/../private-bus.sh"

n=0 failed=0
check() { # check DESCRIPTION COMMAND...: one TAP line for the command's status
        local desc=$1
        shift
        n=$((n + 1))
        if "$@"; then
                echo "ok $n - $desc"
        else
                echo "not ok $n - $desc"
                failed=$((failed + 1))
        fi
}
skip() {
        n=$((n + 1))
        echo "ok $n - $1 # SKIP $2"
}
diag() { sed 's/^/# /' "$@" >&2; }

hub_pid=
stop_hub() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null; }
small=
trap 'stop_hub; [ -n "$small" ] && umount "$small" 2>/dev/null; cleanup' EXIT

start_bus
start_slmd
mkdir -p "$tmp/hub" "$tmp/home"
/usr/bin/python3 "$here/fake-hub.py" "$models" "$tmp/hub" &
hub_pid=$!
for _ in $(seq 100); do
        [ -f "$tmp/hub/port" ] && break
        sleep 0.05
done
port=$(cat "$tmp/hub/port") || { echo "Bail out! the test server did not start"; exit 1; }
web=http://127.0.0.1:$port
export HF_ENDPOINT=$web SLM_OLLAMA_REGISTRY=$web XDG_CACHE_HOME=$tmp/cache HOME=$tmp/home
unset HF_TOKEN HF_HUB_CACHE HF_HOME LLAMA_CACHE OLLAMA_MODELS
downloads=$tmp/cache/slm/downloads
set_mode() { echo "$1" >"$tmp/hub/mode"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
# stored_sha NAME: the digest the store holds for NAME (empty when there is none)
stored_sha() {
        "${slmctl[@]}" --json list | /usr/bin/python3 -c '
import json, sys
print(next((m["sha256"] for m in json.load(sys.stdin) if m["name"] == sys.argv[1]), ""))' "$1"
}
n_models() { "${slmctl[@]}" --json list | /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
downloads_empty() { [ -z "$(ls -A "$downloads" 2>/dev/null)" ]; }

# run_ok CMD...: exit 0; run_fails STATUS TEXT CMD...: that exit status and TEXT in the output
run_ok() {
        "$@" >"$tmp/out" 2>&1 && return 0
        diag "$tmp/out"
        return 1
}
run_fails() {
        local want=$1 text=$2 status=0
        shift 2
        "$@" >"$tmp/out" 2>&1 || status=$?
        if [ "$status" -eq "$want" ] && grep -qF -- "$text" "$tmp/out"; then
                return 0
        fi
        echo "exit status $status, expected $want with '$text':" >&2
        diag "$tmp/out"
        return 1
}
pulled() { # pulled NAME FILE: NAME is stored with FILE's digest and no download is left
        [ "$(stored_sha "$1")" = "$(sha "$models/$2")" ] && downloads_empty
}

# ---- the three kinds of source --------------------------------------------------------------
check "pull hf:ORG/REPO:QUANT finds the file through the model API" \
        run_ok "${slmctl[@]}" pull hf:test-org/stories-GGUF:q8_0
check "  stored under the file's name with the file's digest, nothing left in the cache" \
        pulled stories260K-Q8_0 stories260K-q8_0.gguf
check "  the resolve answer's X-Linked-Etag was used (HEAD without following, then GET)" \
        grep -q "^HEAD /test-org/stories-GGUF/resolve/main/gguf/stories260K-Q8_0.gguf" \
        "$tmp/hub/requests.log"
already_stored() {
        : >"$tmp/hub/requests.log"
        "${slmctl[@]}" pull hf:test-org/stories-GGUF:Q8_0 | grep -q "already in the store" &&
                ! grep -q "^GET /cdn" "$tmp/hub/requests.log"
}
check "pull of a model the store has with that digest says so and downloads nothing" already_stored
check "pull hf:ORG/REPO/FILE.gguf --name NAME" \
        run_ok "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f16.gguf --name story-f16
check "  stored as NAME with the file's digest" pulled story-f16 stories260K-f16.gguf
check "pull ollama:NAME takes the model layer of the 'latest' manifest" \
        run_ok "${slmctl[@]}" pull ollama:stories
check "  stored as NAME-latest with the layer's digest" pulled stories-latest stories260K-f32.gguf
check "pull of a plain http:// URL" \
        run_ok "${slmctl[@]}" pull "$web/files/llama-2-tiny-random.gguf"
check "  stored under the URL's file name" pulled llama-2-tiny-random llama-2-tiny-random.gguf

# ---- HF_TOKEN goes to the hub only, not to the host its redirect leads to ---------------------
token_to_hub_only() {
        : >"$tmp/hub/requests.log"
        HF_TOKEN=secret run_ok "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f32.gguf \
                --name with-token &&
                grep -q "^HEAD /test-org/stories-GGUF/resolve/main/stories260K-f32.gguf - auth" \
                        "$tmp/hub/requests.log" &&
                grep -q "^GET /cdn/.* - -$" "$tmp/hub/requests.log" &&
                ! grep -q "^GET /cdn/.* auth$" "$tmp/hub/requests.log" &&
                pulled with-token stories260K-f32.gguf
}
check "HF_TOKEN is sent to the hub and not to the host a redirect leads to" token_to_hub_only
token_not_to_urls() {
        : >"$tmp/hub/requests.log"
        HF_TOKEN=secret run_ok "${slmctl[@]}" pull \
                "http://localhost:$port/files/stories260K-q8_0.gguf" --name token-url &&
                grep -q "^GET /files/" "$tmp/hub/requests.log" &&
                ! grep -q " auth$" "$tmp/hub/requests.log"
}
check "  nor to a URL on another host" token_not_to_urls

# ---- --json: one object per line -------------------------------------------------------------
json_lines() {
        "${slmctl[@]}" --json pull ollama:stories:tied >"$tmp/json.out" &&
                /usr/bin/python3 - "$tmp/json.out" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) >= 2 and all(l["event"] == "progress" for l in lines[:-1]), lines
assert lines[-2]["bytes"] == lines[-2]["total"] > 0, lines[-2]
assert lines[-1]["name"] == "stories-tied" and len(lines[-1]["sha256"]) == 64, lines[-1]
PY
}
check "pull --json prints one JSON object per line: progress, then the result" json_lines
check "  stored with the layer's digest" pulled stories-tied stories260K-f32-tied.gguf

# ---- not found, not a model file, not a source ----------------------------------------------
count=$(n_models)
check "an unknown repository says not found" \
        run_fails 1 "not found" "${slmctl[@]}" pull hf:nobody/nothing-GGUF:Q4_0
check "an unknown file of a repository says not found" \
        run_fails 1 "not found" "${slmctl[@]}" pull hf:test-org/stories-GGUF/missing.gguf
check "an unknown Ollama tag says not found" \
        run_fails 1 "not found" "${slmctl[@]}" pull ollama:stories:nope
check "a URL the server does not have says not found" \
        run_fails 1 "not found" "${slmctl[@]}" pull "$web/files/none.gguf"
check "a repository without that quantization says so and lists its files" \
        run_fails 1 "no GGUF file of quantization Q2_K; it has: stories260K-f32.gguf" \
        "${slmctl[@]}" pull hf:test-org/stories-GGUF:Q2_K
check "a quantization only split in parts is refused" \
        run_fails 1 "only as a split model" "${slmctl[@]}" pull hf:test-org/stories-GGUF:Q4_0
check "a split part named by file is refused" \
        run_fails 1 "one part of a split model" \
        "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-Q4_0-00001-of-00002.gguf
check "a URL that is not HTTP is a usage error" \
        run_fails 2 "only http:// and https://" "${slmctl[@]}" pull ftp://127.0.0.1/x.gguf
check "file:// is not pulled either" \
        run_fails 2 "only http:// and https://" "${slmctl[@]}" pull file:///etc/passwd
check "a word that is no source is a usage error" \
        run_fails 2 "is not a source" "${slmctl[@]}" pull stories
check "a hub source without a quantization or file is a usage error" \
        run_fails 2 "not a hub source" "${slmctl[@]}" pull hf:test-org/stories-GGUF
check "an invalid --name is refused before anything is fetched" \
        run_fails 2 "invalid model name" "${slmctl[@]}" pull ollama:stories --name ../x
check "a name the store holds with another digest is refused" \
        run_fails 1 "exists" "${slmctl[@]}" pull ollama:stories --name story-f16
unchanged() { [ "$(n_models)" = "$count" ] && downloads_empty; }
check "  none of that changed the store or left a download" unchanged

# ---- wrong bytes ----------------------------------------------------------------------------
set_mode corrupt
check "a server sending other bytes than its digest: refused, removed, nothing imported" \
        run_fails 1 "SHA-256" "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f32.gguf
check "  the store is unchanged and the cache is empty" unchanged
set_mode normal

# ---- interrupted downloads resume with Range -------------------------------------------------
# wait_part MIN: until the partial download holds at least MIN bytes
wait_part() {
        for _ in $(seq 200); do
                local f
                f=$(ls "$downloads"/*.part 2>/dev/null | head -n1)
                [ -n "$f" ] && [ "$(stat -c %s "$f")" -ge "$1" ] && return 0
                sleep 0.02
        done
        return 1
}
resumed_from_middle() { # a Range request for the rest was sent for PATH
        grep "^GET $1" "$tmp/hub/requests.log" | grep -qE 'bytes=[1-9][0-9]*- '
}
set_mode slow
: >"$tmp/hub/requests.log"
"${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f32.gguf --name killed \
        >"$tmp/out" 2>&1 &
pull_pid=$!
wait_part 200000
kill -KILL "$pull_pid"
wait "$pull_pid" 2>/dev/null
part=$(ls "$downloads"/*.part 2>/dev/null | head -n1)
left_partial() {
        [ -f "$part" ] && [ -f "${part%.gguf.part}.json" ] &&
                [ "$(stat -c %s "$part")" -lt "$(stat -c %s "$models/stories260K-f32.gguf")" ]
}
check "a pull killed halfway leaves its partial file and metadata" left_partial
set_mode normal
check "  the same command again resumes it" \
        run_ok "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f32.gguf --name killed
check "  with a Range request for the rest" resumed_from_middle /cdn/
check "  and imports the right digest" pulled killed stories260K-f32.gguf

set_mode slow
: >"$tmp/hub/requests.log"
"${slmctl[@]}" pull "$web/files/stories260K-f32.gguf" --name interrupted >"$tmp/out" 2>&1 &
pull_pid=$!
wait_part 200000
kill -INT "$pull_pid"
status=0
wait "$pull_pid" || status=$?
said_resume() { [ "$status" = 1 ] && grep -q "interrupted.*the same command resumes" "$tmp/out"; }
check "Ctrl-C stops a pull with exit status 1 and says how to resume" said_resume
set_mode normal
check "  the same command resumes with a Range request" \
        run_ok "${slmctl[@]}" pull "$web/files/stories260K-f32.gguf" --name interrupted
check "  from the middle" resumed_from_middle /files/
check "  and imports the right digest" pulled interrupted stories260K-f32.gguf

set_mode drop
: >"$tmp/hub/requests.log"
check "a connection dropped halfway is resumed in the same run" \
        run_ok "${slmctl[@]}" pull "$web/files/stories260K-f16.gguf" --name dropped
dropped_ok() { resumed_from_middle /files/ && pulled dropped stories260K-f16.gguf; }
check "  with a Range request, to the right digest" dropped_ok
set_mode ignore-range
"${slmctl[@]}" pull "$web/files/stories260K-f16.gguf" --name restarted >"$tmp/out" 2>&1 &
pull_pid=$!
set_mode slow
wait_part 100000
kill -KILL "$pull_pid"
wait "$pull_pid" 2>/dev/null
set_mode ignore-range
restarted_ok() {
        run_ok "${slmctl[@]}" pull "$web/files/stories260K-f16.gguf" --name restarted &&
                pulled restarted stories260K-f16.gguf
}
check "a server that ignores Range is downloaded again from the start" restarted_ok
set_mode close
check "a server that closes every connection: tried again, then a clear error" \
        run_fails 1 "transfer closed" "${slmctl[@]}" pull "$web/files/stories260K-f16.gguf" --name closed
closed_clean() { [ -z "$(stored_sha closed)" ] && downloads_empty; }
check "  nothing stored, nothing left" closed_clean
set_mode normal

# ---- a full disk ------------------------------------------------------------------------------
small=$tmp/small
mkdir -p "$small"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=256k tmpfs "$small" 2>/dev/null; then
        check "a download larger than the free space is refused before it starts" \
                run_fails 1 "not enough space" env XDG_CACHE_HOME="$small" \
                "${slmctl[@]}" pull hf:test-org/stories-GGUF/stories260K-f16.gguf --name big
        small_empty() { [ -z "$(ls -A "$small/slm/downloads")" ] && [ -z "$(stored_sha big)" ]; }
        check "  nothing left on the disk" small_empty
        check "a download of unannounced size that fills the disk stops with a clear error" \
                run_fails 1 "No space left on device" env XDG_CACHE_HOME="$small" \
                "${slmctl[@]}" pull "$web/chunked/stories260K-f16.gguf" --name big
        check "  nothing left on the disk, nothing stored" small_empty
        umount "$small"
        small=
else
        for _ in 1 2 3 4; do skip "full disk" "needs root to mount a small tmpfs"; done
fi

# ---- the daemon's own digest check ------------------------------------------------------------
check "import --sha256 of the wrong length is refused by the daemon" \
        run_fails 1 "64 hexadecimal digits" "${slmctl[@]}" import "$models/stories260K-f16.gguf" \
        --name digest --sha256 abc123
check "import --sha256 with other characters is refused" \
        run_fails 1 "64 hexadecimal digits" "${slmctl[@]}" import "$models/stories260K-f16.gguf" \
        --name digest --sha256 "$(printf 'g%.0s' $(seq 64))"
check "import --sha256 of another file is refused naming both digests" \
        run_fails 1 "$(sha "$models/stories260K-f16.gguf")" "${slmctl[@]}" import \
        "$models/stories260K-f16.gguf" --name digest --sha256 "$(sha "$models/stories260K-f32.gguf")"
digest_ok() {
        run_ok "${slmctl[@]}" import "$models/stories260K-f16.gguf" --name digest \
                --sha256 "$(sha "$models/stories260K-f16.gguf" | tr a-f A-F)" &&
                pulled digest stories260K-f16.gguf
}
check "import --sha256 of the file itself (upper case) is stored" digest_ok

# ---- models users already have -----------------------------------------------------------------
ollama=$tmp/ollama
make_ollama_model() { # make_ollama_model NAME TAG FILE [BLOB_FILE]: a manifest and its blob
        local digest
        digest=$(sha "$models/$3")
        mkdir -p "$ollama/manifests/registry.ollama.ai/library/$1" "$ollama/blobs"
        cp "$models/${4:-$3}" "$ollama/blobs/sha256-$digest"
        cat >"$ollama/manifests/registry.ollama.ai/library/$1/$2" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
 "layers":[{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:$(printf '2%.0s' $(seq 64))","size":5},
           {"mediaType":"application/vnd.ollama.image.model","digest":"sha256:$digest","size":$(stat -c %s "$models/$3")}]}
EOF
}
make_ollama_model tiny latest llama-2-tiny-random.gguf
make_ollama_model broken latest stories260K-f16.gguf stories260K-q8_0.gguf
check "import --from-ollama NAME reads Ollama's store (OLLAMA_MODELS)" \
        run_ok env OLLAMA_MODELS="$ollama" "${slmctl[@]}" import --from-ollama tiny --name tiny-ollama
check "  with the layer's digest" pulled tiny-ollama llama-2-tiny-random.gguf
check "import --from-ollama of a blob that is not its digest: the daemon refuses it" \
        run_fails 1 "SHA-256" env OLLAMA_MODELS="$ollama" "${slmctl[@]}" import --from-ollama broken
broken_absent() { [ -z "$(stored_sha broken-latest)" ]; }
check "  and stores nothing" broken_absent
check "import --from-ollama of a model Ollama does not have says not found" \
        run_fails 1 "not found" env OLLAMA_MODELS="$ollama" "${slmctl[@]}" import --from-ollama none:7b
home_store() {
        mkdir -p "$HOME/.ollama" && ln -s "$ollama" "$HOME/.ollama/models" &&
                run_ok "${slmctl[@]}" import --from-ollama tiny:latest --name tiny-home
}
check "~/.ollama/models is Ollama's store without OLLAMA_MODELS" home_store

# discover over fake caches of every kind, with files slmd cannot run among them
gguf_header() { # gguf_header FILE ARCH [SPLIT_COUNT]: a GGUF with metadata and no tensors
        /usr/bin/python3 - "$@" <<'PY'
import struct, sys
path, arch = sys.argv[1], sys.argv[2].encode()
kv = [struct.pack("<Q", 20) + b"general.architecture" + struct.pack("<IQ", 8, len(arch)) + arch]
if len(sys.argv) > 3:
    kv.append(struct.pack("<Q", 11) + b"split.count" + struct.pack("<IH", 2, int(sys.argv[3])))
with open(path, "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))
PY
}
hf=$HOME/.cache/huggingface/hub/models--test-org--stories-GGUF
mkdir -p "$hf/blobs" "$hf/snapshots/0123abc" "$HOME/.cache/llama.cpp" \
        "$HOME/.lmstudio/models/test-org/stories-GGUF" "$HOME/.cache/lm-studio/models/other"
cp "$models/stories260K-q8_0.gguf" "$hf/blobs/$(sha "$models/stories260K-q8_0.gguf")"
ln -s "../../blobs/$(sha "$models/stories260K-q8_0.gguf")" "$hf/snapshots/0123abc/stories260K-Q8_0.gguf"
cp "$models/stories260K-f16.gguf" "$HOME/.cache/llama.cpp/test-org_stories-GGUF_stories260K-f16.gguf"
cp "$models/stories260K-f32.gguf" "$HOME/.lmstudio/models/test-org/stories-GGUF/"
gguf_header "$HOME/.cache/lm-studio/models/other/vision-mmproj.gguf" clip
gguf_header "$HOME/.cache/lm-studio/models/other/big-00001-of-00003.gguf" llama 3
head -c 100 "$models/stories260K-f32.gguf" >"$HOME/.cache/lm-studio/models/other/cut.gguf"
discover_json() {
        "${slmctl[@]}" --json discover >"$tmp/discover.json" &&
                /usr/bin/python3 - "$tmp/discover.json" <<'PY'
import json, sys
found = {f["model"]: f for f in json.load(open(sys.argv[1]))}
def want(model, frm, arch, quant, runs, why=""):
    f = found.get(model)
    assert f, (model, sorted(found))
    assert (f["from"], f["architecture"], f["quantization"], f["runs"]) == (frm, arch, quant, runs), f
    assert why in f["why_not"], f
    return f
want("tiny:latest", "ollama", "llama", "F16", True)
want("test-org/stories-GGUF/stories260K-Q8_0.gguf", "huggingface", "llama", "Q8_0", True)
want("test-org_stories-GGUF_stories260K-f16.gguf", "llama.cpp", "llama", "F16", True)
f = want("test-org/stories-GGUF/stories260K-f32.gguf", "lm-studio", "llama", "F32", True)
assert f["import"].startswith("slmctl import ") and f["size"] == 1185504, f
want("other/vision-mmproj.gguf", "lm-studio", "clip", "unknown", False, "architecture clip")
want("other/big-00001-of-00003.gguf", "lm-studio", "llama", "unknown", False, "split into 3")
want("other/cut.gguf", "lm-studio", "", "", False, "truncated")
assert found["broken:latest"]["runs"] is True  # its header is fine; the digest is checked on import
assert len(found) == 8, sorted(found)
PY
}
check "discover --json lists every cache's files, with what slmd runs and why not" discover_json
discover_import() {
        local cmd
        cmd=$("${slmctl[@]}" discover | grep -A1 "^lm-studio *test-org" | tail -n1) || return 1
        eval "set -- $cmd"
        [ "$1 $2" = "slmctl import" ] && run_ok "${slmctl[@]}" "${@:2}" --name from-discover
}
check "discover prints the command that imports each file, and it works" discover_import
check "  stored with the file's digest" pulled from-discover stories260K-f32.gguf

# ---- the README's main command on a machine without ../shared/ -------------------------------
quickstart_pulls() {
        : >"$tmp/hub/requests.log"
        SLM_QUICKSTART_STORE=$tmp/qs-store run_ok "$here/../quickstart.sh" "$build" \
                hf:test-org/stories-GGUF:q8_0 && grep -q "^GET /cdn/" "$tmp/hub/requests.log" &&
                grep -q "slmd stopped cleanly" "$tmp/out"
}
check "the quick start pulls a model, chats with it and stops slmd" quickstart_pulls
quickstart_again() {
        : >"$tmp/hub/requests.log"
        SLM_QUICKSTART_STORE=$tmp/qs-store run_ok "$here/../quickstart.sh" "$build" \
                hf:test-org/stories-GGUF:q8_0 && grep -q "already in the store" "$tmp/out" &&
                ! grep -q "^GET /cdn/" "$tmp/hub/requests.log"
}
check "  a second run finds it in its store and downloads nothing" quickstart_again

echo "1..$n"
[ "$failed" -eq 0 ]
