#!/bin/bash
# Peak resident memory of a running `iteralign run`, by stage (BENCHMARKS.md, "Memory by stage").
# Usage, beside a run that logs to LOG:  bash bench/rss_by_stage.sh LOG [PATTERN]   (Ctrl-C or the run's end stops it)
# Every 5 s: the summed RSS (MB) of the processes whose command line matches PATTERN (default "iteralign run"), put
# under the stage named by LOG's last progress line; at the end, each stage's peak, largest first.
log=$1; pattern=${2:-iteralign run}
samples=$(mktemp)
report() { sort -k2,2 -k1,1nr "$samples" | awk '!seen[$2]++' | sort -k1,1nr; rm -f "$samples"; }
trap 'report; exit' INT TERM
while pgrep -f -- "$pattern" > /dev/null; do
  rss=$(ps -eo rss,args | grep -F -- "$pattern" | grep -v -e grep -e rss_by_stage | awk '{s+=$1} END {print int(s/1024)}')
  stage=$(grep -o "progress: [a-z_ ()-]*:" "$log" 2>/dev/null | tail -1 | sed 's/progress: //; s/:$//; s/ /_/g')
  echo "$rss ${stage:-start}" >> "$samples"
  sleep 5
done
report
