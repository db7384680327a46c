#!/bin/bash
# Pilot for issue #25 (a layer that learns): the msi layer's options against concat at the study's weakest level
# (audio -15 dB, image -5 dB), the study's recipe (demo network, 6 epochs, lr x0.1 at 5), seeds 0-1; 12 runs,
# about 8 min on 2 cores. Two seeds give no interval: it only says which options to run in the study proper.
# Results in $OUT (default runs/msi_pilot), one folder per run (results.json).
cd "$(dirname "$0")/.."
for s in 0 1; do
  for v in "concat:" "msi:" "msi:--fusion-arg learn_exponent=true" "msi:--fusion-arg bias=true" "msi:--fusion-arg dominance=true" "msi:--fusion-arg pool=8"; do
    f=${v%%:*}; a=${v#*:}; name=$(echo "$f $a" | tr -c 'a-z0-9' '_' | sed 's/__*/_/g; s/_$//')
    OMP_NUM_THREADS=1 snn-msi train --demo --epochs 6 --set "milestones=[5]" --set data.preset=clean \
      --audio-snr -15 --image-snr -5 --fusion $f $a --seed $s --quiet --out ${OUT:-runs/msi_pilot}/${name}_s$s > /dev/null 2>&1
  done
done
