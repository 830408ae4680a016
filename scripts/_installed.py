"""What scripts/_venv.sh installed into .venv, so that rerunning demo.sh or test.sh skips pip
when nothing changed (and works without a network once installed).

  python scripts/_installed.py check requirements.txt   # exit 0: installed, nothing changed
  python scripts/_installed.py mark requirements-test.txt

A file counts as installed when it, or a file that includes it (`-r`), was installed by this
Python while every requirements*.txt was byte for byte what it is now. Standard library only.
"""
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD = os.path.join(ROOT, '.venv', '.installed.json')


def digest() -> str:
  h = hashlib.sha256(sys.version.encode())
  for path in sorted(glob.glob(os.path.join(ROOT, 'requirements*.txt'))):
    with open(path, 'rb') as f:
      h.update(os.path.basename(path).encode() + b'\0' + f.read())
  return h.hexdigest()


def included(name: str) -> set[str]:
  """name and every requirements file it includes with -r, transitively."""
  found, todo = set(), [name]
  while todo:
    current = todo.pop()
    if current in found or not os.path.exists(os.path.join(ROOT, current)):
      continue
    found.add(current)
    with open(os.path.join(ROOT, current)) as f:
      todo += [line.split(None, 1)[1].strip() for line in f
               if line.startswith(('-r ', '--requirement '))]
  return found


def main(verb: str, name: str) -> int:
  try:
    with open(RECORD) as f:
      record = json.load(f)
  except (OSError, ValueError):
    record = {}
  if record.get('digest') != digest():
    record = {'digest': digest(), 'files': []}
  if verb == 'check':
    return 0 if name in record['files'] else 1
  record['files'] = sorted(set(record['files']) | included(name))
  with open(RECORD + '.tmp', 'w') as f:
    json.dump(record, f)
  os.replace(RECORD + '.tmp', RECORD)
  return 0


if __name__ == '__main__':
  sys.exit(main(*sys.argv[1:]))
