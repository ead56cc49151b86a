#!/bin/bash
# hook-timer.sh LOG LABEL CMD [ARGS...]: runs CMD as the hook (stdin passed through) and appends
# "LABEL START END RC" (epoch seconds) to LOG. Used by the concurrency run to time each hook.
log=$1 label=$2
shift 2
start=$EPOCHREALTIME
"$@"
rc=$?
end=$EPOCHREALTIME
echo "$label $start $end $rc" >>"$log"
exit $rc
