#!/usr/bin/env bash
# Every GPU figure the README and bench/README.md ask for, in one command for one GPU lease
# (the device tool: 15 minutes a session, start-up included; one command at most 10):
#
#   here:       bash ../shared/gpu/wheels.sh .whl     # once; .whl ignored in .git/info/exclude
#   on the GPU: COMMIT=<short sha> bash bench/gpu_session.sh        (carry: .whl)
#   on CPU:     OUT=/tmp/gpu COMMIT=$(git rev-parse --short HEAD) bash bench/gpu_session.sh --smoke
#
# Steps, most important first, each under its own time limit so that a slow one cannot eat the
# lease: bench/gpu.py --course-scale (the architecture rows, then the homework grid at course
# scale), then --packing. Logs and the machine's description go to $OUT (default
# bench/out/gpu): machine.txt, course.log, packing.log. Extra arguments go to every bench/gpu.py
# call. Runs without Ray, as the GPU machine has none.
set -uo pipefail
out=${OUT:-bench/out/gpu}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    | sed 's/^/gpu: /' || echo "gpu: none"
  python3 -c "import torch; print('torch:', torch.__version__, 'cuda:', torch.version.cuda)"
  echo "cpus: $(nproc)"
} | tee "$out/machine.txt"

step() {  # step NAME SECONDS ARGS...: bench/gpu.py ARGS under a time limit, logged
  local name=$1 seconds=$2
  shift 2
  echo "== $name (at most ${seconds} s): python3 bench/gpu.py $*"
  timeout "$seconds" python3 bench/gpu.py "$@" >"$out/$name.log" 2>&1
  local code=$?
  grep '^|' "$out/$name.log" || tail -20 "$out/$name.log"
  echo "== $name: exit $code$([ $code = 124 ] && echo ' (time limit: the rows above are all it printed)')"
  return $code
}

status=0
step course 330 --course-scale "$@" || status=1
step packing 150 --packing --packing-seconds 5 "$@" || status=1
exit $status
